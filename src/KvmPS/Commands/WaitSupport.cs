using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>The waits shared by Wait-KvmVm, Start-KvmVm -Wait and Restart-KvmVm -Wait.</summary>
internal static class WaitSupport
{
    /// <summary>Waits for the VM; returns it refreshed (with IPAddresses for -For IPAddress). Throws WaitTimeout.</summary>
    public static KvmVm? Wait(KvmVm vm, KvmWaitFor waitFor, KvmVmState[]? states, KvmAddressFamily family, TimeSpan timeout, IKvmLog log, CancellationToken cancel)
    {
        switch (waitFor)
        {
            case KvmWaitFor.State:
                KvmVmState[] wanted = states is { Length: > 0 } ? states : [KvmVmState.Running];
                if (!VmLifecycle.WaitForState(vm, wanted, timeout, log, cancel, $"Waiting for {vm.Name} to be {string.Join(" or ", wanted)}"))
                {
                    throw Timeout(vm, string.Join(" or ", wanted), $"it is {VmService.Refresh(vm).State}", timeout);
                }

                return null;
            case KvmWaitFor.GuestAgent:
                if (!GuestService.WaitUntil(vm, () => GuestService.Ping(vm), "the guest agent", timeout, log, cancel))
                {
                    throw Timeout(vm, "its guest agent to answer", "no agent answered", timeout);
                }

                return null;
            default:
                System.Net.Sockets.AddressFamily? af = family switch
                {
                    KvmAddressFamily.IPv4 => System.Net.Sockets.AddressFamily.InterNetwork,
                    KvmAddressFamily.IPv6 => System.Net.Sockets.AddressFamily.InterNetworkV6,
                    _ => null,
                };
                IReadOnlyList<string> addresses = [];
                string? source = null;
                if (!GuestService.WaitUntil(vm, () => (addresses = GuestService.Addresses(vm, af, out source)).Count > 0, "an IP address", timeout, log, cancel))
                {
                    throw Timeout(vm, "an IP address", "neither the guest agent nor a DHCP lease reported one", timeout);
                }

                log.Verbose($"VM '{vm.Name}' has {string.Join(", ", addresses)} (from the {source?.ToLowerInvariant()})");
                KvmVm now = VmService.Refresh(vm);
                now.IPAddresses = addresses;
                return now;
        }
    }

    private static KvmOperationException Timeout(KvmVm vm, string what, string why, TimeSpan timeout)
        => new("WaitTimeout", $"VM '{vm.Name}' did not get {what} within {timeout.TotalSeconds:0} s: {why}.", vm.Name) { Kind = KvmErrorKind.Timeout };
}
