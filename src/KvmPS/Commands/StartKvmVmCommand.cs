using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Starts VMs (resuming from a managed save when there is one).</summary>
[Cmdlet(VerbsLifecycle.Start, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class StartKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    public SwitchParameter Passthru { get; set; }

    /// <summary>Wait after the operation, like Hyper-V's -Wait -For IPAddress.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    [Parameter]
    public KvmWaitFor For { get; set; } = KvmWaitFor.IPAddress;

    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 300;

    protected override void ProcessVm(KvmVm vm)
    {
        Apply(vm, "Start", VmLifecycle.Start, Passthru && !Wait);
        if (Wait)
        {
            WriteObject(WaitSupport.Wait(vm, For, [KvmVmState.Running], KvmAddressFamily.Any, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken) ?? VmService.Refresh(vm));
        }
    }
}
