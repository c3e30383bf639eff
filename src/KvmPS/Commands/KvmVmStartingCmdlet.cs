using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Base of Start-KvmVm and Restart-KvmVm: -Passthru, and -Wait -For like Hyper-V's Restart-VM -Wait -For IPAddress.</summary>
public abstract class KvmVmStartingCmdlet : KvmVmBatchCmdlet
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

    /// <summary>The operation (asked about first); with -Wait it waits and writes the VM, else -Passthru writes it.</summary>
    protected Action<VmWorkContext>? StartAndWait(KvmVm vm, string action, Action<KvmVm, IKvmLog> operation, Action<VmWorkContext>? beforeWait = null)
    {
        Action<VmWorkContext>? apply = Apply(vm, action, (v, context) => operation(v, context), Passthru && !Wait);
        if (apply is null || !Wait)
        {
            return apply;
        }

        KvmWaitFor waitFor = For;
        var timeout = TimeSpan.FromSeconds(TimeoutSec);
        return context =>
        {
            apply(context);
            beforeWait?.Invoke(context);
            context.Write(WaitSupport.Wait(vm, waitFor, [KvmVmState.Running], KvmAddressFamily.Any, timeout, context, context.Cancel) ?? VmService.Refresh(vm));
        };
    }
}
