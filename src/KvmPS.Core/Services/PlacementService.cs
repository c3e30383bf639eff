using System.Globalization;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// Where a new VM fits: ranks hosts by the headroom they keep after taking it (memory not committed to VMs, the vCPU:CPU
/// ratio, the pool space for its disk, the networks it needs). <see cref="Rank"/> is pure (host facts in, answers out);
/// <see cref="Read"/> gathers one host's facts from libvirt.
/// </summary>
public static class PlacementService
{
    /// <summary>The vCPU:CPU ratio a host may reach by default (a common consolidation limit for general workloads).</summary>
    public const double DefaultMaxCpuRatio = 4.0;

    /// <summary>One host's facts: node size, every VM's size, pools, networks (four libvirt listings).</summary>
    public static KvmPlacementHost Read(KvmConnection connection, CancellationToken cancel = default)
    {
        NodeInfo node = connection.Invoke(c => c.GetNodeInfo());
        IReadOnlyList<KvmVm> vms = VmService.List(connection, cancel);
        cancel.ThrowIfCancellationRequested();
        IReadOnlyList<KvmStoragePool> pools = StorageService.ListPools(connection);
        IReadOnlyList<KvmNetwork> networks = NetworkService.List(connection);
        return new KvmPlacementHost
        {
            Uri = connection.Uri,
            HostName = connection.HostName,
            CpuCount = node.Cpus,
            MemoryBytes = node.MemoryKiB * 1024,
            Vms = vms.Select(v => (v.CpuCount, v.MemoryBytes, Math.Max(v.MaxMemoryBytes, v.MemoryBytes), v.Id is not null)).ToList(),
            Pools = pools.Select(p => (p.Name, p.State == KvmStoragePoolState.Running, p.AvailableBytes)).ToList(),
            Networks = networks.Select(n => (n.Name, n.Active)).ToList(),
            Connection = connection,
        };
    }

    /// <summary>
    /// Every host's answer for <paramref name="request"/>: hosts that fit first, best (highest <see cref="KvmHostPlacement.Score"/>,
    /// then most memory left) ranked 1; ties keep the order given. Hosts that do not fit follow in the order given, rank 0,
    /// with the reasons.
    /// </summary>
    public static IReadOnlyList<KvmHostPlacement> Rank(IEnumerable<KvmPlacementHost> hosts, KvmPlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        ArgumentNullException.ThrowIfNull(request);
        List<KvmHostPlacement> answers = hosts.Select(h => Evaluate(h, request)).ToList();
        List<KvmHostPlacement> fit = answers.Where(a => a.Fits).OrderByDescending(a => a.Score).ThenByDescending(a => a.FreeMemoryAfterBytes).ToList();
        var result = new List<KvmHostPlacement>(answers.Count);
        for (int i = 0; i < fit.Count; i++)
        {
            result.Add(With(fit[i], i + 1));
        }

        result.AddRange(answers.Where(a => !a.Fits));
        return result;
    }

    /// <summary>One host's answer, unranked (rank 0).</summary>
    public static KvmHostPlacement Evaluate(KvmPlacementHost host, KvmPlacementRequest request)
    {
        var reasons = new List<string>();
        bool active = request.Commitment == KvmPlacementCommitment.Active;
        int committedCpu = 0;
        decimal committedMem = 0;
        foreach ((int cpus, ulong mem, ulong maxMem, bool isActive) in host.Vms)
        {
            if (!active || isActive)
            {
                committedCpu += cpus;
                committedMem += active ? mem : maxMem;
            }
        }

        // Memory: what VMs may take (MaxMemoryRatio of the host) minus what they have, before and after the new VM.
        decimal usable = host.MemoryBytes * (decimal)request.MaxMemoryRatio;
        decimal freeMem = usable - committedMem;
        decimal freeAfter = freeMem - request.MemoryBytes;
        if (freeAfter < 0)
        {
            reasons.Add($"memory: needs {ByteSize.Format(request.MemoryBytes)}, {Size(freeMem)} left of {ByteSize.Format(host.MemoryBytes)} "
                + $"({ByteSize.Format((ulong)committedMem)} committed to {(active ? "active" : "defined")} VMs{(request.MaxMemoryRatio == 1.0 ? string.Empty : $", limit {F(request.MaxMemoryRatio)}x")})");
        }

        // CPU: the vCPU:CPU ratio with the new VM, against the limit; a VM wider than the host never fits.
        double ratioAfter = host.CpuCount == 0 ? double.PositiveInfinity : Math.Round((double)(committedCpu + request.CpuCount) / host.CpuCount, 3);
        if (request.CpuCount > host.CpuCount)
        {
            reasons.Add($"cpu: needs {request.CpuCount} vCPUs, the host has {host.CpuCount} CPUs");
        }
        else if (ratioAfter > request.MaxCpuRatio)
        {
            reasons.Add($"cpu: vCPU:CPU ratio would be {F(ratioAfter)} ({committedCpu} + {request.CpuCount} vCPUs on {host.CpuCount} CPUs), above the limit {F(request.MaxCpuRatio)}");
        }

        // Disk: the pool must run and have the space.
        ulong? poolFree = null;
        long? poolAfter = null;
        double diskShare = 1;
        if (request.DiskSizeBytes > 0)
        {
            (string Name, bool Active, ulong AvailableBytes)? pool = host.Pools.Where(p => p.Name == request.StoragePool).Select(p => ((string, bool, ulong)?)p).FirstOrDefault();
            if (pool is null)
            {
                reasons.Add($"storage: no storage pool '{request.StoragePool}'");
                diskShare = 0;
            }
            else if (!pool.Value.Active)
            {
                reasons.Add($"storage: pool '{request.StoragePool}' is not running");
                diskShare = 0;
            }
            else
            {
                poolFree = pool.Value.AvailableBytes;
                poolAfter = (long)Math.Clamp((decimal)pool.Value.AvailableBytes - request.DiskSizeBytes, long.MinValue, long.MaxValue);
                if (poolAfter < 0)
                {
                    reasons.Add($"storage: pool '{request.StoragePool}' has {ByteSize.Format(pool.Value.AvailableBytes)} free, the disk needs {ByteSize.Format(request.DiskSizeBytes)}");
                }

                diskShare = pool.Value.AvailableBytes == 0 ? 0 : (double)poolAfter.Value / pool.Value.AvailableBytes;
            }
        }

        foreach (string name in request.Networks.Distinct(StringComparer.Ordinal))
        {
            (string Name, bool Active)? network = host.Networks.Where(n => n.Name == name).Select(n => ((string, bool)?)n).FirstOrDefault();
            if (network is null)
            {
                reasons.Add($"network: no network '{name}'");
            }
            else if (!network.Value.Active)
            {
                reasons.Add($"network: '{name}' is not active");
            }
        }

        double memShare = usable <= 0 ? 0 : (double)(freeAfter / usable);
        double cpuShare = double.IsInfinity(ratioAfter) ? 0 : 1 - (ratioAfter / request.MaxCpuRatio);
        double score = Math.Round(Math.Clamp(Math.Min(memShare, Math.Min(cpuShare, diskShare)), 0, 1), 4);
        return new KvmHostPlacement
        {
            HostName = host.HostName,
            Uri = host.Uri,
            Fits = reasons.Count == 0,
            Score = reasons.Count == 0 ? score : 0,
            ExcludedBecause = reasons,
            CpuCount = host.CpuCount,
            CommittedCpuCount = committedCpu,
            CpuRatioAfter = ratioAfter,
            MemoryBytes = host.MemoryBytes,
            CommittedMemoryBytes = (ulong)committedMem,
            FreeMemoryBytes = ToLong(freeMem),
            FreeMemoryAfterBytes = ToLong(freeAfter),
            StoragePool = request.DiskSizeBytes > 0 ? request.StoragePool : null,
            FreeDiskBytes = poolFree,
            FreeDiskAfterBytes = poolAfter,
            Commitment = request.Commitment,
            Connection = host.Connection,
        };
    }

    private static KvmHostPlacement With(KvmHostPlacement a, int rank) => new()
    {
        PlacementRank = rank,
        HostName = a.HostName,
        Uri = a.Uri,
        Fits = a.Fits,
        Score = a.Score,
        ExcludedBecause = a.ExcludedBecause,
        CpuCount = a.CpuCount,
        CommittedCpuCount = a.CommittedCpuCount,
        CpuRatioAfter = a.CpuRatioAfter,
        MemoryBytes = a.MemoryBytes,
        CommittedMemoryBytes = a.CommittedMemoryBytes,
        FreeMemoryBytes = a.FreeMemoryBytes,
        FreeMemoryAfterBytes = a.FreeMemoryAfterBytes,
        StoragePool = a.StoragePool,
        FreeDiskBytes = a.FreeDiskBytes,
        FreeDiskAfterBytes = a.FreeDiskAfterBytes,
        Commitment = a.Commitment,
        Connection = a.Connection,
    };

    private static long ToLong(decimal d) => (long)Math.Clamp(d, long.MinValue, long.MaxValue);

    private static string Size(decimal d) => d <= 0 ? "none" : ByteSize.Format((ulong)d);

    private static string F(double d) => d.ToString("0.##", CultureInfo.InvariantCulture);
}
