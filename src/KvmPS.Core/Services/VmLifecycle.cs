using System.Diagnostics;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>Start, stop, pause, wait, rename, change and remove VMs. Every method re-reads the VM's state first.</summary>
public static class VmLifecycle
{
    public static void Start(KvmVm vm, IKvmLog log)
    {
        KvmVm now = VmService.Refresh(vm);
        RequireState(now, "start", KvmVmState.ShutOff, KvmVmState.Crashed);
        log.Verbose(now.HasManagedSave ? $"Starting VM '{vm.Name}' from its saved state" : $"Starting VM '{vm.Name}'");
        try
        {
            vm.Connection.Invoke(c => c.CreateDomain(vm.Ref, 0));
        }
        catch (LibvirtException e) when (NetworkReadiness.ExplainStartFailure(vm, e) is { } explained)
        {
            throw explained;
        }

        SettleAfterStart(vm, log);
    }

    /// <summary>QEMU reports Paused (StartingUp) for a moment after a start (UEFI guests); wait that out, briefly.</summary>
    internal static void SettleAfterStart(KvmVm vm, IKvmLog log)
    {
        (int state, int reason) = vm.Connection.Invoke(c => c.GetDomainState(vm.Ref));
        if ((KvmVmState)state == KvmVmState.Paused && VmService.ReasonName(KvmVmState.Paused, reason) == "StartingUp")
        {
            _ = WaitForState(vm, [KvmVmState.Running], TimeSpan.FromSeconds(15), log, CancellationToken.None, $"Starting {vm.Name}");
        }
    }

    public static void TurnOff(KvmVm vm, IKvmLog log)
    {
        KvmVm now = VmService.Refresh(vm);
        RequireState(now, "turn off", KvmVmState.Running, KvmVmState.Paused, KvmVmState.Blocked, KvmVmState.ShuttingDown, KvmVmState.Crashed, KvmVmState.PMSuspended);
        log.Verbose($"Powering off VM '{vm.Name}' (virDomainDestroy)");
        vm.Connection.Invoke(c => c.DestroyDomain(vm.Ref, 0));
    }

    public static void Save(KvmVm vm, IKvmLog log)
    {
        KvmVm now = VmService.Refresh(vm);
        RequireState(now, "save", KvmVmState.Running, KvmVmState.Paused);
        log.Verbose($"Saving VM '{vm.Name}' (managed save): the next start resumes it");
        vm.Connection.Invoke(c => c.ManagedSaveDomain(vm.Ref, 0));
    }

    /// <summary>Graceful ACPI shutdown, then waits; on timeout powers off when <paramref name="force"/>, else StopTimeout.</summary>
    public static void Shutdown(KvmVm vm, TimeSpan timeout, bool force, IKvmLog log, CancellationToken cancel)
    {
        KvmVm now = VmService.Refresh(vm);
        if (now.State == KvmVmState.Paused)
        {
            throw new KvmOperationException("VmStateInvalid", $"Cannot shut down VM '{vm.Name}' gracefully: it is Paused and cannot answer the request.", vm.Name)
            {
                Hint = "Resume it first (Resume-KvmVm), or power it off with -TurnOff.",
            };
        }

        RequireState(now, "shut down", KvmVmState.Running, KvmVmState.Blocked, KvmVmState.ShuttingDown);
        log.Verbose($"Sending an ACPI shutdown request to VM '{vm.Name}'");
        vm.Connection.Invoke(c => c.ShutdownDomain(vm.Ref, 0));
        if (WaitForState(vm, [KvmVmState.ShutOff], timeout, log, cancel, $"Shutting down {vm.Name}"))
        {
            return;
        }

        if (!force)
        {
            throw new KvmOperationException("StopTimeout",
                $"VM '{vm.Name}' did not shut down within {timeout.TotalSeconds:0} s (the guest ignored the ACPI request or is still shutting down).", vm.Name)
            {
                Hint = "Use -Force to power it off after the timeout, -TurnOff to power it off at once, or a longer -TimeoutSec.",
            };
        }

        log.Warning($"VM '{vm.Name}' did not shut down within {timeout.TotalSeconds:0} s; powering it off (-Force).");
        try
        {
            vm.Connection.Invoke(c => c.DestroyDomain(vm.Ref, 0));
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.OperationInvalid)
        {
            // it stopped just now
        }
    }

    public static void Restart(KvmVm vm, bool force, IKvmLog log)
    {
        KvmVm now = VmService.Refresh(vm);
        RequireState(now, "restart", KvmVmState.Running, KvmVmState.Blocked);
        log.Verbose(force ? $"Resetting VM '{vm.Name}' (hard reset)" : $"Asking VM '{vm.Name}' to reboot");
        if (force)
        {
            vm.Connection.Invoke(c => c.ResetDomain(vm.Ref));
        }
        else
        {
            vm.Connection.Invoke(c => c.RebootDomain(vm.Ref, 0));
        }
    }

    public static void Suspend(KvmVm vm, IKvmLog log)
    {
        KvmVm now = VmService.Refresh(vm);
        RequireState(now, "suspend", KvmVmState.Running, KvmVmState.Blocked);
        log.Verbose($"Pausing VM '{vm.Name}'");
        vm.Connection.Invoke(c => c.SuspendDomain(vm.Ref));
    }

    public static void Resume(KvmVm vm, IKvmLog log)
    {
        KvmVm now = VmService.Refresh(vm);
        RequireState(now, "resume", KvmVmState.Paused);
        log.Verbose($"Resuming VM '{vm.Name}'");
        vm.Connection.Invoke(c => c.ResumeDomain(vm.Ref));
    }

    public static void Rename(KvmVm vm, string newName, IKvmLog log)
    {
        VmSpecValidator.ValidateName(newName);
        KvmVm now = VmService.Refresh(vm);
        RequireState(now, "rename", KvmVmState.ShutOff);
        if (VmService.GetByName(vm.Connection, newName) is not null)
        {
            throw new KvmOperationException("VmExists", $"A VM named '{newName}' already exists on {vm.Connection.Uri}.", newName);
        }

        log.Verbose($"Renaming VM '{vm.Name}' to '{newName}'");
        vm.Connection.Invoke(c => c.RenameDomain(vm.Ref, newName));
    }

    /// <summary>
    /// Waits until the VM is in one of <paramref name="states"/>: woken by libvirt lifecycle events, with a
    /// slow re-check as a safety net. False on timeout.
    /// </summary>
    public static bool WaitForState(KvmVm vm, KvmVmState[] states, TimeSpan timeout, IKvmLog log, CancellationToken cancel, string? activity = null)
    {
        activity ??= $"Waiting for {vm.Name}";
        string wanted = string.Join(" or ", states);
        using var signal = new AutoResetEvent(false);
        IDisposable? subscription = null;
        try
        {
            subscription = vm.Connection.SubscribeDomainEvents(vm.Ref, _ => signal.Set());
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoSupport or LibvirtErrorCode.ArgumentUnsupported)
        {
            log.Verbose($"No libvirt events on this connection ({e.Message}); checking the state every second instead");
        }

        var sw = Stopwatch.StartNew();
        try
        {
            while (true)
            {
                KvmVmState state = CurrentState(vm);
                if (states.Contains(state))
                {
                    return true;
                }

                TimeSpan left = timeout - sw.Elapsed;
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                int percent = timeout.TotalMilliseconds <= 0 ? 0 : (int)Math.Min(99, 100 * sw.Elapsed.TotalMilliseconds / timeout.TotalMilliseconds);
                log.Progress(activity, $"{state}; waiting for {wanted} ({left.TotalSeconds:0} s left)", percent);
                TimeSpan slice = subscription is null ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(5);
                WaitHandle.WaitAny([signal, cancel.WaitHandle], left < slice ? left : slice);
                cancel.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
            subscription?.Dispose();
        }
    }

    private static KvmVmState CurrentState(KvmVm vm)
    {
        try
        {
            (int state, _) = vm.Connection.Invoke(c => c.GetDomainState(vm.Ref));
            return (KvmVmState)state;
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomain)
        {
            throw new KvmOperationException("VmNotFound", $"VM '{vm.Name}' was removed while waiting for it.", vm.Name, e);
        }
    }

    /// <summary>Throws VmStateInvalid, naming the current state, when the VM is not in one of <paramref name="allowed"/>.</summary>
    public static void RequireState(KvmVm vm, string action, params KvmVmState[] allowed)
    {
        if (!allowed.Contains(vm.State))
        {
            throw new KvmOperationException("VmStateInvalid",
                $"Cannot {action} VM '{vm.Name}': it is {vm.State}{(vm.StateReason is "Unknown" ? string.Empty : $" ({vm.StateReason})")}; it must be {string.Join(" or ", allowed)}.", vm.Name);
        }
    }
}
