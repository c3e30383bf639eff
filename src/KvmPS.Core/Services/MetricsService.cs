using System.Diagnostics;
using System.Globalization;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// Measures VMs from libvirt's bulk domain statistics: one virConnectGetAllDomainStats call per sample
/// returns the counters of every VM of the host, whatever their number; two samples give the rates.
/// </summary>
public static class MetricsService
{
    /// <summary>The statistics groups one sample asks for.</summary>
    internal const DomainStatsTypes Groups = DomainStatsTypes.State | DomainStatsTypes.CpuTotal | DomainStatsTypes.Balloon
        | DomainStatsTypes.Vcpu | DomainStatsTypes.Interface | DomainStatsTypes.Block;

    /// <summary>
    /// One sample of every VM of the host (one libvirt call). <paramref name="activeOnly"/> leaves the
    /// inactive VMs out (the second sample needs only the running ones); a full sample also refreshes
    /// the VM names cached for tab completion. Statistics a busy VM cannot give at once are left out.
    /// </summary>
    public static MetricsSample Sample(KvmConnection connection, bool activeOnly)
    {
        ListDomainsFlags filter = activeOnly ? ListDomainsFlags.Active : ListDomainsFlags.None;
        return connection.Invoke(c =>
        {
            long before = Stopwatch.GetTimestamp();
            IReadOnlyList<DomainStatsRecord> records = VmService.GetStatsNoWait(c, Groups, filter, () => before = Stopwatch.GetTimestamp());

            long after = Stopwatch.GetTimestamp();
            var domains = new DomainCounters[records.Count];
            for (int i = 0; i < domains.Length; i++)
            {
                domains[i] = DomainCounters.From(records[i]);
            }

            RereadBusy(c, domains);

            if (!activeOnly)
            {
                connection.CachedVmNames = domains.Select(d => d.Domain.Name).ToArray();
            }

            // The records are gathered while the call runs: its midpoint is the best time stamp for all of them.
            return new MetricsSample(connection, before + ((after - before) / 2), DateTime.Now, domains);
        });
    }

    /// <summary>
    /// NOWAIT leaves out the disk counters of a running VM whose monitor was taken by another short query at that
    /// moment (a listing, another sample); such VMs alone are asked again, still without waiting, a few times a
    /// moment apart. A VM held by a long job (backup, save, migration) stays without them rather than stall the sample.
    /// </summary>
    private static void RereadBusy(ILibvirtConnection c, DomainCounters[] domains)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            List<int> busy = [];
            for (int i = 0; i < domains.Length; i++)
            {
                if (domains[i].Domain.Id >= 0 && domains[i].DiskCount > 0 && domains[i].DiskReadBytes is null)
                {
                    busy.Add(i);
                }
            }

            if (busy.Count == 0)
            {
                return;
            }

            Thread.Sleep(50 * (attempt + 1));
            IReadOnlyList<DomainStatsRecord> again;
            try
            {
                again = c.GetDomainListStats(busy.Select(i => domains[i].Domain).ToArray(), Groups, ListDomainsFlags.StatsNoWait);
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
            {
                return;   // a VM went away, or the daemon refuses: the first answer stands
            }

            foreach (DomainStatsRecord r in again)
            {
                DomainCounters fresh = DomainCounters.From(r);
                int at = Array.FindIndex(domains, d => d.Domain.Uuid == fresh.Domain.Uuid);
                if (at >= 0 && fresh.Domain.Id == domains[at].Domain.Id)
                {
                    domains[at] = fresh;
                }
            }
        }
    }

    /// <summary>
    /// Waits until <paramref name="interval"/> has passed since <paramref name="since"/> (the time stamp of
    /// the last first sample, so every host's two samples end up at least the interval apart), showing
    /// progress for waits of a few seconds; Ctrl+C (<paramref name="cancel"/>) ends the wait with
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    public static void Wait(long since, TimeSpan interval, IKvmLog log, CancellationToken cancel)
    {
        const string activity = "Measuring VMs";
        bool showProgress = interval >= TimeSpan.FromSeconds(2);
        try
        {
            while (true)
            {
                cancel.ThrowIfCancellationRequested();
                TimeSpan elapsed = Stopwatch.GetElapsedTime(since);
                TimeSpan left = interval - elapsed;
                if (left <= TimeSpan.Zero)
                {
                    return;
                }

                if (showProgress)
                {
                    log.Progress(activity, $"Sampling, {Math.Ceiling(left.TotalSeconds).ToString(CultureInfo.InvariantCulture)} s left",
                        (int)(100 * elapsed.TotalMilliseconds / interval.TotalMilliseconds));
                }

                _ = cancel.WaitHandle.WaitOne(left < TimeSpan.FromMilliseconds(500) ? left : TimeSpan.FromMilliseconds(500));
            }
        }
        finally
        {
            if (showProgress)
            {
                log.Progress(activity, "Done", 100, completed: true);
            }
        }
    }

    /// <summary>
    /// The VM's metrics over the two samples; null when it is not active in <paramref name="second"/>
    /// (it stopped, or was undefined, during the interval).
    /// </summary>
    public static KvmVmMetrics? Measure(MetricsSample first, MetricsSample second, Guid uuid)
    {
        DomainCounters? b = second.Find(uuid);
        if (b is null || b.Domain.Id < 0)
        {
            return null;
        }

        TimeSpan elapsed = Stopwatch.GetElapsedTime(first.Timestamp, second.Timestamp);
        return Compute(second.Connection, first.Find(uuid), b, elapsed, second.TakenAt);
    }

    /// <summary>
    /// Rates and totals from two counter sets of one VM taken <paramref name="elapsed"/> apart. Rates are
    /// null when a counter is missing from either sample, went backwards (the VM restarted: its domain id
    /// changed), or no time passed.
    /// </summary>
    public static KvmVmMetrics Compute(KvmConnection connection, DomainCounters? first, DomainCounters second, TimeSpan elapsed, DateTime timestamp)
    {
        // A different domain id means the VM was stopped and started again: its counters began anew.
        DomainCounters? a = first is not null && first.Domain.Id == second.Domain.Id ? first : null;
        double seconds = elapsed.TotalSeconds;
        double? cpu = Rate(a?.CpuTimeNs, second.CpuTimeNs, seconds);
        double? vcpu = a is not null && a.VcpuTimeCount == second.VcpuTimeCount && second.VcpuTimeCount > 0
            ? Rate(a.VcpuTimeNs, second.VcpuTimeNs, seconds) / second.VcpuTimeCount
            : null;
        return new KvmVmMetrics
        {
            HostName = connection.HostName,
            Uri = connection.Uri,
            VMName = second.Domain.Name,
            Uuid = second.Domain.Uuid,
            Id = second.Domain.Id >= 0 ? second.Domain.Id : null,
            State = Enum.IsDefined(typeof(KvmVmState), second.State) ? (KvmVmState)second.State : KvmVmState.NoState,
            VirtualCpuCount = second.VcpuCount,
            Timestamp = timestamp,
            SampleInterval = elapsed,
            // ns per s → percent of one CPU (/ 1e9 * 100); capped at what the VM can use: QEMU's own threads and
            // the moment libvirt reads the counters can push a fully busy VM a fraction over
            CpuUsagePercent = cpu / 1e7 is { } pct ? Math.Min(pct, 100.0 * Math.Max(1, second.VcpuCount)) : null,
            VcpuUsagePercent = vcpu / 1e7 is { } vpct ? Math.Min(vpct, 100.0) : null,
            MemoryAssignedBytes = second.BalloonCurrentKiB * 1024,
            MemoryMaximumBytes = second.BalloonMaximumKiB * 1024,
            MemoryAvailableBytes = second.AvailableKiB * 1024,
            MemoryUnusedBytes = second.UnusedKiB * 1024,
            MemoryUsableBytes = second.UsableKiB * 1024,
            MemoryUsedBytes = second.AvailableKiB is { } avail && second.UnusedKiB is { } unused && avail >= unused ? (avail - unused) * 1024 : null,
            MemoryResidentBytes = second.RssKiB * 1024,
            DiskReadBytesPerSecond = Rate(a?.DiskReadBytes, second.DiskReadBytes, seconds),
            DiskWriteBytesPerSecond = Rate(a?.DiskWriteBytes, second.DiskWriteBytes, seconds),
            DiskReadOperationsPerSecond = Rate(a?.DiskReadRequests, second.DiskReadRequests, seconds),
            DiskWriteOperationsPerSecond = Rate(a?.DiskWriteRequests, second.DiskWriteRequests, seconds),
            NetworkReceiveBytesPerSecond = Rate(a?.NetworkReceiveBytes, second.NetworkReceiveBytes, seconds),
            NetworkTransmitBytesPerSecond = Rate(a?.NetworkTransmitBytes, second.NetworkTransmitBytes, seconds),
            CpuTime = second.CpuTimeNs is { } ns ? TimeSpan.FromTicks((long)(ns / 100)) : null,
            DiskCount = second.DiskCount,
            DiskReadBytesTotal = second.DiskReadBytes,
            DiskWriteBytesTotal = second.DiskWriteBytes,
            DiskReadOperationsTotal = second.DiskReadRequests,
            DiskWriteOperationsTotal = second.DiskWriteRequests,
            NetworkAdapterCount = second.NetworkAdapterCount,
            NetworkReceiveBytesTotal = second.NetworkReceiveBytes,
            NetworkTransmitBytesTotal = second.NetworkTransmitBytes,
            Connection = connection,
        };
    }

    /// <summary>(second − first) / seconds; null when either is missing, the counter went backwards or no time passed.</summary>
    public static double? Rate(ulong? first, ulong? second, double seconds)
        => first is { } a && second is { } b && b >= a && seconds > 0 ? (b - a) / seconds : null;
}

/// <summary>One sample: the counters of every VM of a host, and when they were read.</summary>
public sealed class MetricsSample
{
    private readonly Dictionary<Guid, DomainCounters> _byUuid;

    public MetricsSample(KvmConnection connection, long timestamp, DateTime takenAt, IReadOnlyList<DomainCounters> domains)
    {
        Connection = connection;
        Timestamp = timestamp;
        TakenAt = takenAt;
        Domains = domains;
        _byUuid = new Dictionary<Guid, DomainCounters>(domains.Count);
        foreach (DomainCounters d in domains)
        {
            _byUuid[d.Domain.Uuid] = d;
        }
    }

    public KvmConnection Connection { get; }

    /// <summary>A <see cref="Stopwatch"/> time stamp: the midpoint of the libvirt call.</summary>
    public long Timestamp { get; }

    public DateTime TakenAt { get; }

    /// <summary>Every VM in the sample, in libvirt's order.</summary>
    public IReadOnlyList<DomainCounters> Domains { get; }

    public DomainCounters? Find(Guid uuid) => _byUuid.TryGetValue(uuid, out DomainCounters? d) ? d : null;
}

/// <summary>
/// The counters of one VM in one bulk-statistics record, summed over its disks and network adapters.
/// A group libvirt did not report (the VM is not running, or the driver lacks it) stays null.
/// </summary>
public sealed class DomainCounters
{
    public DomainRef Domain { get; init; }

    /// <summary>libvirt's virDomainState (state.state).</summary>
    public int State { get; init; }

    /// <summary>vcpu.current.</summary>
    public int VcpuCount { get; init; }

    public ulong? CpuTimeNs { get; init; }

    /// <summary>Sum of vcpu.N.time over the vCPUs that report it.</summary>
    public ulong? VcpuTimeNs { get; init; }

    /// <summary>How many vcpu.N.time values were summed.</summary>
    public int VcpuTimeCount { get; init; }

    public ulong? BalloonCurrentKiB { get; init; }

    public ulong? BalloonMaximumKiB { get; init; }

    public ulong? AvailableKiB { get; init; }

    public ulong? UnusedKiB { get; init; }

    public ulong? UsableKiB { get; init; }

    public ulong? RssKiB { get; init; }

    public int? DiskCount { get; init; }

    public ulong? DiskReadBytes { get; init; }

    public ulong? DiskWriteBytes { get; init; }

    public ulong? DiskReadRequests { get; init; }

    public ulong? DiskWriteRequests { get; init; }

    public int? NetworkAdapterCount { get; init; }

    public ulong? NetworkReceiveBytes { get; init; }

    public ulong? NetworkTransmitBytes { get; init; }

    /// <summary>Reads one record in a single pass over its parameters.</summary>
    public static DomainCounters From(DomainStatsRecord record)
    {
        int state = 0, vcpus = 0, vcpuTimes = 0;
        int? blockCount = null, netCount = null;
        ulong? cpu = null, vcpuTime = null, cur = null, max = null, avail = null, unused = null, usable = null, rss = null;
        ulong? rdBytes = null, wrBytes = null, rdReqs = null, wrReqs = null, rxBytes = null, txBytes = null;
        foreach (TypedParameter p in record.Parameters)
        {
            string n = p.Name;
            switch (n)
            {
                case "state.state": state = (int)p.AsUInt64(); continue;
                case "cpu.time": cpu = p.AsUInt64(); continue;
                case "vcpu.current": vcpus = (int)p.AsUInt64(); continue;
                case "balloon.current": cur = p.AsUInt64(); continue;
                case "balloon.maximum": max = p.AsUInt64(); continue;
                case "balloon.available": avail = p.AsUInt64(); continue;
                case "balloon.unused": unused = p.AsUInt64(); continue;
                case "balloon.usable": usable = p.AsUInt64(); continue;
                case "balloon.rss": rss = p.AsUInt64(); continue;
                case "block.count": blockCount = (int)p.AsUInt64(); continue;
                case "net.count": netCount = (int)p.AsUInt64(); continue;
            }

            // Indexed fields: vcpu.<n>.time, block.<n>.rd.bytes ..., net.<n>.rx.bytes ...
            if (n.StartsWith("vcpu.", StringComparison.Ordinal))
            {
                if (IsIndexed(n, 5, ".time"))
                {
                    vcpuTime = (vcpuTime ?? 0) + p.AsUInt64();
                    vcpuTimes++;
                }
            }
            else if (n.StartsWith("block.", StringComparison.Ordinal))
            {
                if (IsIndexed(n, 6, ".rd.bytes"))
                {
                    rdBytes = (rdBytes ?? 0) + p.AsUInt64();
                }
                else if (IsIndexed(n, 6, ".wr.bytes"))
                {
                    wrBytes = (wrBytes ?? 0) + p.AsUInt64();
                }
                else if (IsIndexed(n, 6, ".rd.reqs"))
                {
                    rdReqs = (rdReqs ?? 0) + p.AsUInt64();
                }
                else if (IsIndexed(n, 6, ".wr.reqs"))
                {
                    wrReqs = (wrReqs ?? 0) + p.AsUInt64();
                }
            }
            else if (n.StartsWith("net.", StringComparison.Ordinal))
            {
                if (IsIndexed(n, 4, ".rx.bytes"))
                {
                    rxBytes = (rxBytes ?? 0) + p.AsUInt64();
                }
                else if (IsIndexed(n, 4, ".tx.bytes"))
                {
                    txBytes = (txBytes ?? 0) + p.AsUInt64();
                }
            }
        }

        // A reported group with no device moved 0 bytes. Devices reported without any counter are a running VM whose
        // monitor was busy (NOWAIT gives the devices from the XML only): unknown, so RereadBusy asks again, never 0.
        return new DomainCounters
        {
            Domain = record.Domain,
            State = state,
            VcpuCount = vcpus,
            CpuTimeNs = cpu,
            VcpuTimeNs = vcpuTime,
            VcpuTimeCount = vcpuTimes,
            BalloonCurrentKiB = cur,
            BalloonMaximumKiB = max,
            AvailableKiB = avail,
            UnusedKiB = unused,
            UsableKiB = usable,
            RssKiB = rss,
            DiskCount = blockCount,
            DiskReadBytes = blockCount == 0 ? 0 : rdBytes,
            DiskWriteBytes = blockCount == 0 ? 0 : wrBytes,
            DiskReadRequests = blockCount == 0 ? 0 : rdReqs,
            DiskWriteRequests = blockCount == 0 ? 0 : wrReqs,
            NetworkAdapterCount = netCount,
            NetworkReceiveBytes = netCount is null ? rxBytes : rxBytes ?? 0,
            NetworkTransmitBytes = netCount is null ? txBytes : txBytes ?? 0,
        };
    }

    /// <summary>True for "&lt;prefix&gt;&lt;digits&gt;&lt;suffix&gt;", the prefix being <paramref name="start"/> characters long.</summary>
    private static bool IsIndexed(string name, int start, string suffix)
    {
        if (!name.EndsWith(suffix, StringComparison.Ordinal))
        {
            return false;
        }

        int end = name.Length - suffix.Length;
        if (end <= start)
        {
            return false;
        }

        for (int i = start; i < end; i++)
        {
            if (!char.IsAsciiDigit(name[i]))
            {
                return false;
            }
        }

        return true;
    }
}
