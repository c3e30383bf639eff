using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>What Wait-KvmVm waits for.</summary>
public enum KvmWaitFor
{
    State = 0,
    GuestAgent = 1,
    IPAddress = 2,
}

/// <summary>The address family Wait-KvmVm -For IPAddress waits for.</summary>
public enum KvmAddressFamily
{
    Any = 0,
    IPv4 = 1,
    IPv6 = 2,
}

/// <summary>Waits until VMs reach a state (woken by libvirt events), their guest agent answers, or they have an IP address.</summary>
[Cmdlet(VerbsLifecycle.Wait, "KvmVm", DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class WaitKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    public KvmWaitFor For { get; set; } = KvmWaitFor.State;

    [Parameter]
    public KvmVmState[]? State { get; set; }

    [Parameter]
    public KvmAddressFamily AddressFamily { get; set; } = KvmAddressFamily.Any;

    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 120;

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void BeginProcessing()
    {
        if (For == KvmWaitFor.State && (State is null || State.Length == 0))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-For State needs -State (for example -State Running)."),
                "StateRequired", ErrorCategory.InvalidArgument, null));
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        KvmVm? now = WaitSupport.Wait(vm, For, State, AddressFamily, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken);
        if (Passthru || For == KvmWaitFor.IPAddress)
        {
            WriteObject(now ?? VmService.Refresh(vm));
        }
    }
}
