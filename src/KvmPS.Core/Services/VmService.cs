using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>Reads VMs from a connection. Listing is bulk: a constant number of libvirt calls for any number of VMs.</summary>
public static class VmService
{
    private const DomainStatsTypes ListStats = DomainStatsTypes.State | DomainStatsTypes.CpuTotal | DomainStatsTypes.Balloon | DomainStatsTypes.Vcpu;

    /// <summary>
    /// All VMs of the connection: one virConnectGetAllDomainStats call plus three filtered
    /// virConnectListAllDomains calls (autostart, transient, managed save) — O(1) round trips.
    /// Drivers whose statistics lack memory/vCPU figures (the test driver) get virDomainGetInfo per VM,
    /// which is in-process for them.
    /// </summary>
    public static IReadOnlyList<KvmVm> List(KvmConnection connection, CancellationToken cancel = default)
    {
        return connection.Invoke(c =>
        {
            IReadOnlyList<DomainStatsRecord> stats = c.GetAllDomainStats(ListStats, ListDomainsFlags.None);
            cancel.ThrowIfCancellationRequested();
            HashSet<Guid> autostart = Uuids(c.ListAllDomains(ListDomainsFlags.Autostart));
            HashSet<Guid> transient = Uuids(c.ListAllDomains(ListDomainsFlags.Transient));
            HashSet<Guid> managedSave = Uuids(c.ListAllDomains(ListDomainsFlags.ManagedSave));
            var result = new List<KvmVm>(stats.Count);
            foreach (DomainStatsRecord r in stats)
            {
                cancel.ThrowIfCancellationRequested();
                var vm = new KvmVm(connection, r.Domain)
                {
                    Autostart = autostart.Contains(r.Domain.Uuid),
                    Persistent = !transient.Contains(r.Domain.Uuid),
                    HasManagedSave = managedSave.Contains(r.Domain.Uuid),
                };
                int state = (int)(r.GetUInt64("state.state") ?? 0);
                int reason = (int)(r.GetUInt64("state.reason") ?? 0);
                ulong? max = r.GetUInt64("balloon.maximum");
                ulong? cur = r.GetUInt64("balloon.current");
                ulong? vcpus = r.GetUInt64("vcpu.current");
                if (max is null || cur is null || vcpus is null)
                {
                    try
                    {
                        DomainInfo info = c.GetDomainInfo(r.Domain);
                        (max, cur, vcpus) = (info.MaxMemoryKiB, info.MemoryKiB, (ulong)info.VirtualCpuCount);
                        vm.CpuTime = TimeSpan.FromTicks((long)(info.CpuTimeNs / 100));
                    }
                    catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomain)
                    {
                        continue;   // undefined between the two calls
                    }
                }
                else
                {
                    vm.CpuTime = TimeSpan.FromTicks((long)((r.GetUInt64("cpu.time") ?? 0) / 100));
                }

                Fill(vm, state, reason, max.Value, cur.Value, (int)vcpus.Value);
                result.Add(vm);
            }

            connection.CachedVmNames = result.Select(v => v.Name).ToArray();
            return result;
        });
    }

    /// <summary>One VM by exact name; null when there is none.</summary>
    public static KvmVm? GetByName(KvmConnection connection, string name)
        => Find(connection, c => c.LookupDomainByName(name));

    /// <summary>One VM by UUID; null when there is none.</summary>
    public static KvmVm? GetByUuid(KvmConnection connection, Guid uuid)
        => Find(connection, c => c.LookupDomainByUuid(uuid));

    /// <summary>One running VM by id; null when there is none.</summary>
    public static KvmVm? GetById(KvmConnection connection, int id)
        => Find(connection, c => c.LookupDomainById(id));

    /// <summary>Reads the VM again (state, memory, CPUs) from its connection.</summary>
    public static KvmVm Refresh(KvmVm vm)
        => GetByUuid(vm.Connection, vm.Uuid)
           ?? throw new LibvirtException(LibvirtErrorCode.NoDomain, LibvirtErrorDomain.Domain, $"The VM '{vm.Name}' ({vm.Uuid}) no longer exists on {vm.Connection.Uri}.");

    /// <summary>A friendly name for libvirt's state reason code.</summary>
    public static string ReasonName(KvmVmState state, int reason)
    {
        string[] names = state switch
        {
            KvmVmState.Running => ["Unknown", "Booted", "Migrated", "Restored", "FromSnapshot", "Unpaused", "MigrationCanceled", "SaveCanceled", "Wakeup", "Crashed", "PostCopy", "PostCopyFailed"],
            KvmVmState.Paused => ["Unknown", "User", "Migration", "Save", "Dump", "IOError", "Watchdog", "FromSnapshot", "ShuttingDown", "Snapshot", "Crashed", "StartingUp", "PostCopy", "PostCopyFailed", "ApiError"],
            KvmVmState.ShuttingDown => ["Unknown", "User"],
            KvmVmState.ShutOff => ["Unknown", "Shutdown", "Destroyed", "Crashed", "Migrated", "Saved", "Failed", "FromSnapshot", "Daemon"],
            KvmVmState.Crashed => ["Unknown", "Panicked"],
            KvmVmState.PMSuspended => ["Unknown", "Suspended"],
            _ => ["Unknown"],
        };
        return reason >= 0 && reason < names.Length ? names[reason] : $"Reason{reason}";
    }

    private static KvmVm? Find(KvmConnection connection, Func<ILibvirtConnection, DomainRef> lookup)
    {
        return connection.Invoke(c =>
        {
            DomainRef d;
            try
            {
                d = lookup(c);
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomain)
            {
                return null;
            }

            DomainInfo info = c.GetDomainInfo(d);
            (int state, int reason) = c.GetDomainState(d);
            var vm = new KvmVm(connection, d)
            {
                Autostart = c.GetDomainAutostart(d),
                Persistent = c.IsDomainPersistent(d),
                HasManagedSave = SafeHasManagedSave(c, d),
                CpuTime = TimeSpan.FromTicks((long)(info.CpuTimeNs / 100)),
            };
            Fill(vm, state, reason, info.MaxMemoryKiB, info.MemoryKiB, info.VirtualCpuCount);
            return vm;
        });
    }

    private static bool SafeHasManagedSave(ILibvirtConnection c, DomainRef d)
    {
        try
        {
            return c.HasManagedSaveImage(d);
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoSupport or LibvirtErrorCode.OperationInvalid)
        {
            return false;   // transient domains cannot have one
        }
    }

    private static void Fill(KvmVm vm, int state, int reason, ulong maxKiB, ulong curKiB, int vcpus)
    {
        vm.State = Enum.IsDefined(typeof(KvmVmState), state) ? (KvmVmState)state : KvmVmState.NoState;
        vm.StateReason = ReasonName(vm.State, reason);
        vm.MaxMemoryBytes = maxKiB * 1024;
        vm.MemoryBytes = curKiB * 1024;
        vm.CpuCount = vcpus;
    }

    private static HashSet<Guid> Uuids(IReadOnlyList<DomainRef> list)
    {
        var set = new HashSet<Guid>(list.Count);
        foreach (DomainRef d in list)
        {
            set.Add(d.Uuid);
        }

        return set;
    }
}
