using KvmPS.Core.Backend;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Services;

/// <summary>Reads VMs from a connection. Listing is bulk: a constant number of libvirt calls for any number of VMs.</summary>
public static class VmService
{
    private static readonly string[] s_runningReasons = ["Unknown", "Booted", "Migrated", "Restored", "FromSnapshot", "Unpaused", "MigrationCanceled", "SaveCanceled", "Wakeup", "Crashed", "PostCopy", "PostCopyFailed"];
    private static readonly string[] s_pausedReasons = ["Unknown", "User", "Migration", "Save", "Dump", "IOError", "Watchdog", "FromSnapshot", "ShuttingDown", "Snapshot", "Crashed", "StartingUp", "PostCopy", "PostCopyFailed", "ApiError"];
    private static readonly string[] s_shuttingDownReasons = ["Unknown", "User"];
    private static readonly string[] s_shutOffReasons = ["Unknown", "Shutdown", "Destroyed", "Crashed", "Migrated", "Saved", "Failed", "FromSnapshot", "Daemon"];
    private static readonly string[] s_crashedReasons = ["Unknown", "Panicked"];
    private static readonly string[] s_pmSuspendedReasons = ["Unknown", "Suspended"];
    private static readonly string[] s_unknownReasons = ["Unknown"];

    private const DomainStatsTypes ListStats = DomainStatsTypes.State | DomainStatsTypes.CpuTotal | DomainStatsTypes.Balloon | DomainStatsTypes.Vcpu;

    /// <summary>
    /// Bulk statistics with NOWAIT, so one VM busy with a job (backup, save, migration) gives what it can at once
    /// instead of stalling every other VM; a daemon older than libvirt 4.5 refuses the flag and is asked without
    /// it (<paramref name="retrying"/> runs just before).
    /// </summary>
    internal static IReadOnlyList<DomainStatsRecord> GetStatsNoWait(ILibvirtConnection c, DomainStatsTypes groups, ListDomainsFlags filter, Action? retrying = null)
    {
        try
        {
            return Bulk(c, groups, filter, ListDomainsFlags.StatsNoWait);
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.InvalidArg or LibvirtErrorCode.NoSupport)
        {
            retrying?.Invoke();
            return Bulk(c, groups, filter, ListDomainsFlags.None);
        }
    }

    /// <summary>
    /// The groups that grow with a VM's devices (one block of fields per disk, NIC or vCPU): what a VM too large
    /// for one stats record is read without, in that order.
    /// </summary>
    private static readonly DomainStatsTypes[] s_oversizedDrops =
    [
        DomainStatsTypes.Block | DomainStatsTypes.Interface,
        DomainStatsTypes.Block | DomainStatsTypes.Interface | DomainStatsTypes.Vcpu,
    ];

    /// <summary>
    /// One bulk call; when the daemon (or our decoder) refuses it because one VM has more fields than one record may
    /// carry, the VMs are read again in halves with virDomainListGetStats until the oversized one is alone, and that
    /// one is read without its per-device groups: every other VM still comes from bulk calls.
    /// </summary>
    private static IReadOnlyList<DomainStatsRecord> Bulk(ILibvirtConnection c, DomainStatsTypes groups, ListDomainsFlags filter, ListDomainsFlags statsFlags)
    {
        try
        {
            return c.GetAllDomainStats(groups, filter | statsFlags);
        }
        catch (LibvirtException e) when (IsTooLarge(e))
        {
            return InParts(c, c.ListAllDomains(filter), groups, statsFlags);
        }
    }

    private static IReadOnlyList<DomainStatsRecord> InParts(ILibvirtConnection c, IReadOnlyList<DomainRef> domains, DomainStatsTypes groups, ListDomainsFlags statsFlags)
    {
        try
        {
            return c.GetDomainListStats(domains, groups, statsFlags);
        }
        catch (LibvirtException e) when (IsTooLarge(e) && domains.Count > 1)
        {
            int half = domains.Count / 2;
            return [.. InParts(c, domains.Take(half).ToArray(), groups, statsFlags), .. InParts(c, domains.Skip(half).ToArray(), groups, statsFlags)];
        }
        catch (LibvirtException e) when (IsTooLarge(e))
        {
            foreach (DomainStatsTypes drop in s_oversizedDrops)
            {
                try
                {
                    return c.GetDomainListStats(domains, groups & ~drop, statsFlags);
                }
                catch (LibvirtException again) when (IsTooLarge(again))
                {
                    // still too large: drop more
                }
            }

            throw;
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomain)
        {
            // A VM went away since the listing: read the others again without it.
            return domains.Count == 1 ? [] : [.. domains.SelectMany(d => InParts(c, [d], groups, statsFlags))];
        }
    }

    /// <summary>A stats record larger than the protocol allows: libvirt's RPC error (encoding or decoding the payload) or our decoder's.</summary>
    private static bool IsTooLarge(LibvirtException e) => e.Code == LibvirtErrorCode.Rpc && !e.IsConnectionFailure;

    /// <summary>
    /// All VMs of the connection in one virConnectGetAllDomainStats call. Autostart, Persistent and
    /// HasManagedSave come from three filtered virConnectListAllDomains calls made together, once per
    /// listing, when one VM's flag is first read: O(1) round trips for any number of VMs either way.
    /// </summary>
    public static IReadOnlyList<KvmVm> List(KvmConnection connection, CancellationToken cancel = default)
    {
        return connection.Invoke(c =>
        {
            IReadOnlyList<DomainStatsRecord> stats = GetStatsNoWait(c, ListStats, ListDomainsFlags.None);

            cancel.ThrowIfCancellationRequested();
            var flags = new DomainListFlags(connection);
            var result = new List<KvmVm>(stats.Count);
            foreach (DomainStatsRecord r in stats)
            {
                cancel.ThrowIfCancellationRequested();
                var vm = new KvmVm(connection, r.Domain) { ListFlags = flags };
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
            KvmVmState.Running => s_runningReasons,
            KvmVmState.Paused => s_pausedReasons,
            KvmVmState.ShuttingDown => s_shuttingDownReasons,
            KvmVmState.ShutOff => s_shutOffReasons,
            KvmVmState.Crashed => s_crashedReasons,
            KvmVmState.PMSuspended => s_pmSuspendedReasons,
            _ => s_unknownReasons,
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
            vm.SetConfig(DomainXml.Parse(c.GetDomainXml(d, DomainXmlFlags.None)));   // one VM: a complete snapshot now
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

    internal static HashSet<Guid> Uuids(IReadOnlyList<DomainRef> list)
    {
        var set = new HashSet<Guid>(list.Count);
        foreach (DomainRef d in list)
        {
            set.Add(d.Uuid);
        }

        return set;
    }
}

/// <summary>The autostart, transient and managed-save sets of one listing, fetched together on first use.</summary>
internal sealed class DomainListFlags
{
    private readonly Lazy<(HashSet<Guid> Autostart, HashSet<Guid> Transient, HashSet<Guid> ManagedSave)> _sets;

    public DomainListFlags(KvmConnection connection)
        => _sets = new(() => connection.Invoke(c => (
            VmService.Uuids(c.ListAllDomains(ListDomainsFlags.Autostart)),
            VmService.Uuids(c.ListAllDomains(ListDomainsFlags.Transient)),
            VmService.Uuids(c.ListAllDomains(ListDomainsFlags.ManagedSave)))));

    public HashSet<Guid> Autostart => _sets.Value.Autostart;

    public HashSet<Guid> Transient => _sets.Value.Transient;

    public HashSet<Guid> ManagedSave => _sets.Value.ManagedSave;
}
