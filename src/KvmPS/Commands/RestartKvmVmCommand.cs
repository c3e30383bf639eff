using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Reboots VMs through the guest, or resets them (-Force).</summary>
[Cmdlet(VerbsLifecycle.Restart, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class RestartKvmVmCommand : KvmVmStartingCmdlet
{
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
        => StartAndWait(vm, Force ? "Reset (hard)" : "Restart (guest reboot)", (v, log) => VmLifecycle.Restart(v, Force, log), context =>
        {
            if (For != KvmWaitFor.State)
            {
                // The agent of the guest that is going down still answers (with its old addresses) for a moment:
                // wait for it to go quiet first, so the answer comes from the restarted guest.
                _ = GuestService.WaitUntil(vm, () => !GuestService.Ping(vm), "the guest to go down", TimeSpan.FromSeconds(Math.Min(60, TimeoutSec)), context, context.Cancel);
            }
        });
}
