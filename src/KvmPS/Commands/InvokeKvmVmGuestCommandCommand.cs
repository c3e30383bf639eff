using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Runs a command inside VMs through the guest agent (guest-exec) and returns its exit code and output.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "KvmVmGuestCommand", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmGuestCommandResult))]
public sealed class InvokeKvmVmGuestCommandCommand : KvmVmCmdlet
{
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Command { get; set; } = string.Empty;

    [Parameter(Position = 2)]
    [AllowEmptyCollection]
    public string[]? Arguments { get; set; }

    [Parameter]
    [ValidateRange(1, 86400)]
    public int TimeoutSec { get; set; } = 60;

    protected override void ProcessVm(KvmVm vm)
    {
        // Without -Arguments the command is a shell line for the guest's /bin/sh; with them, a program and its arguments.
        (string path, string[] args) = Arguments is null ? ("/bin/sh", new[] { "-c", Command }) : (Command, Arguments);
        if (!ShouldProcess(Describe(vm), $"Run '{Command}' in the guest"))
        {
            return;
        }

        KvmGuestCommandResult result = GuestService.Exec(vm, path, args, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken);
        if (result.TimedOut)
        {
            WriteError(ErrorRecords.FromOperation(new KvmOperationException("GuestCommandTimeout",
                $"'{Command}' did not finish in VM '{vm.Name}' within {TimeoutSec} s (it keeps running in the guest).", vm.Name) { Kind = KvmErrorKind.Timeout }, vm.Name));
        }

        WriteObject(result);
    }
}
