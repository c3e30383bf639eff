using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

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
[Cmdlet(VerbsLifecycle.Wait, "KvmVm", DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class WaitKvmVmCommand : KvmVmBatchCmdlet
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
        base.BeginProcessing();
        if (For == KvmWaitFor.State && (State is null || State.Length == 0))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-For State needs -State (for example -State Running)."),
                "StateRequired", ErrorCategory.InvalidArgument, null));
        }
    }

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
    {
        KvmWaitFor waitFor = For;
        KvmVmState[]? states = State;
        KvmAddressFamily family = AddressFamily;
        var timeout = TimeSpan.FromSeconds(TimeoutSec);
        bool write = Passthru || For == KvmWaitFor.IPAddress;
        return context =>
        {
            KvmVm? now = WaitSupport.Wait(vm, waitFor, states, family, timeout, context, context.Cancel);
            if (write)
            {
                context.Write(now ?? VmService.Refresh(vm));
            }
        };
    }
}
