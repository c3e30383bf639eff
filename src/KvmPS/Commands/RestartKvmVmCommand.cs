using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Reboots VMs through the guest, or resets them (-Force).</summary>
[Cmdlet(VerbsLifecycle.Restart, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class RestartKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    public SwitchParameter Force { get; set; }

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
        Apply(vm, Force ? "Reset (hard)" : "Restart (guest reboot)", (v, log) => VmLifecycle.Restart(v, Force, log), Passthru && !Wait);
        if (Wait)
        {
            if (For != KvmWaitFor.State)
            {
                // The agent of the guest that is going down still answers (with its old addresses) for a moment:
                // wait for it to go quiet first, so the answer comes from the restarted guest.
                _ = GuestService.WaitUntil(vm, () => !GuestService.Ping(vm), "the guest to go down", TimeSpan.FromSeconds(Math.Min(60, TimeoutSec)), this, CancelToken);
            }

            WriteObject(WaitSupport.Wait(vm, For, [KvmVmState.Running], KvmAddressFamily.Any, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken) ?? VmService.Refresh(vm));
        }
    }
}
