using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Base of Start-KvmVm and Restart-KvmVm: -Passthru, and -Wait -For like Hyper-V's Restart-VM -Wait -For IPAddress.</summary>
public abstract class KvmVmStartingCmdlet : KvmVmCmdlet
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

    /// <summary>Runs the operation (asking first); with -Wait waits and writes the VM, else -Passthru writes it.</summary>
    protected void StartAndWait(KvmVm vm, string action, Action<KvmVm, IKvmLog> operation, Action? beforeWait = null)
    {
        Apply(vm, action, operation, Passthru && !Wait);
        if (Wait)
        {
            beforeWait?.Invoke();
            WriteObject(WaitSupport.Wait(vm, For, [KvmVmState.Running], KvmAddressFamily.Any, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken) ?? VmService.Refresh(vm));
        }
    }
}
