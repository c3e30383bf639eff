using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Waits until VMs reach a state, woken by libvirt's lifecycle events.</summary>
[Cmdlet(VerbsLifecycle.Wait, "KvmVm", DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class WaitKvmVmCommand : KvmVmCmdlet
{
    [Parameter(Mandatory = true)]
    public KvmVmState[] State { get; set; } = [];

    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 120;

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessVm(KvmVm vm)
    {
        if (!VmLifecycle.WaitForState(vm, State, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken, $"Waiting for {vm.Name} to be {string.Join(" or ", State)}"))
        {
            throw new KvmOperationException("WaitTimeout",
                $"VM '{vm.Name}' did not reach {string.Join(" or ", State)} within {TimeoutSec} s; it is {VmService.Refresh(vm).State}.", vm.Name);
        }

        if (Passthru)
        {
            WriteVm(vm);
        }
    }
}
