using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>
/// Base of VM cmdlets that act on many VMs, with Hyper-V's -AsJob and a -ThrottleLimit. Each VM is asked
/// about (ShouldProcess) on the pipeline thread, then its work runs: inline (the default, one at a time, in
/// order), on up to -ThrottleLimit threads with the streams written back by the pipeline thread, or in a
/// <see cref="KvmPSJob"/>. Ctrl+C or Stop-Job cancels the work and waits for it to clean up.
/// </summary>
public abstract class KvmVmBatchCmdlet : KvmVmCmdlet
{
    /// <summary>How many VMs are worked on at once (1: one after the other, in order).</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 1;

    /// <summary>Runs the work as a background job and writes the job instead of waiting.</summary>
    [Parameter]
    public SwitchParameter AsJob { get; set; }

    /// <summary>Asks (ShouldProcess) on the pipeline thread and returns the VM's work, or null to skip it.</summary>
    protected abstract Action<VmWorkContext>? Plan(KvmVm vm);

    protected sealed override void ProcessVm(KvmVm vm)
    {
        if (Plan(vm) is { } work)
        {
            RunWork(vm.Name, vm.HostName ?? vm.Connection.Uri, vm.Uuid, work, ThrottleLimit, AsJob);
        }
    }

    protected override void EndProcessing() => EndWork();

    /// <summary>The common shape: ask, act, and with -Passthru write the VM as it is now.</summary>
    protected Action<VmWorkContext>? Apply(KvmVm vm, string action, Action<KvmVm, VmWorkContext> operation, bool passthru)
    {
        if (!ShouldProcess(Describe(vm), action))
        {
            return null;
        }

        return context =>
        {
            operation(vm, context);
            if (passthru)
            {
                context.Write(VmService.Refresh(vm));
            }
        };
    }
}
