using System.Diagnostics;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>PlacementService.Rank: the ranking, the exclusion reasons and the speed, over host facts made up here.</summary>
public sealed class PlacementTests
{
    private const ulong GiB = 1UL << 30;

    private static KvmPlacementHost Host(string name, int cpus, ulong memGiB, (int Cpu, ulong MemGiB, bool Active)[] vms,
        ulong poolFreeGiB = 500, bool poolActive = true, params (string Name, bool Active)[] networks)
        => new()
        {
            Uri = $"test:///{name}",
            HostName = name,
            CpuCount = cpus,
            MemoryBytes = memGiB * GiB,
            Vms = vms.Select(v => (v.Cpu, v.MemGiB * GiB, v.MemGiB * GiB, v.Active)).ToList(),
            Pools = [("default", poolActive, poolFreeGiB * GiB)],
            Networks = networks.Length == 0 ? [("default", true)] : networks,
        };

    private static readonly KvmPlacementRequest s_request = new() { CpuCount = 4, MemoryBytes = 8 * GiB, DiskSizeBytes = 40 * GiB };

    [Fact]
    public void Rank_PutsTheHostWithTheMostHeadroomFirst_AndKeepsInputOrderForTies()
    {
        KvmPlacementHost busy = Host("busy", 16, 64, [(8, 40, true)]);        // 24 GiB left after: 16/64
        KvmPlacementHost idle = Host("idle", 16, 64, []);                      // 56 GiB left after
        KvmPlacementHost idle2 = Host("idle2", 16, 64, []);                    // same as idle: keeps input order
        IReadOnlyList<KvmHostPlacement> r = PlacementService.Rank([busy, idle, idle2], s_request);
        Assert.Equal(["idle", "idle2", "busy"], r.Select(p => p.HostName));
        Assert.Equal([1, 2, 3], r.Select(p => p.PlacementRank));
        Assert.All(r, p => Assert.True(p.Fits));
        Assert.Equal(0.875, r[0].Score);                                        // memory is the tightest: 56 of 64 GiB left
        Assert.Equal(0.25, r[2].Score);                                         // 16 of 64 GiB left
        Assert.Equal((long)(16 * GiB), r[2].FreeMemoryAfterBytes);
        Assert.Equal(0.75, r[2].CpuRatioAfter);
    }

    [Fact]
    public void Rank_ExcludesHostsWithTheReason_AfterTheHostsThatFit()
    {
        KvmPlacementHost full = Host("full", 16, 16, [(2, 12, true)]);
        KvmPlacementHost narrow = Host("narrow", 2, 64, []);
        KvmPlacementHost crowded = Host("crowded", 4, 256, [(14, 1, true)]);
        KvmPlacementHost nodisk = Host("nodisk", 16, 64, [], poolFreeGiB: 10);
        KvmPlacementHost poolDown = Host("pooldown", 16, 64, [], poolActive: false);
        KvmPlacementHost good = Host("good", 16, 64, []);
        IReadOnlyList<KvmHostPlacement> r = PlacementService.Rank([full, narrow, crowded, nodisk, poolDown, good], s_request);
        Assert.Equal(["good", "full", "narrow", "crowded", "nodisk", "pooldown"], r.Select(p => p.HostName));
        Assert.Equal([1, 0, 0, 0, 0, 0], r.Select(p => p.PlacementRank));
        Assert.StartsWith("memory: needs 8 GiB, 4 GiB left of 16 GiB", Assert.Single(r[1].ExcludedBecause));
        Assert.Equal("cpu: needs 4 vCPUs, the host has 2 CPUs", Assert.Single(r[2].ExcludedBecause));
        Assert.Equal("cpu: vCPU:CPU ratio would be 4.5 (14 + 4 vCPUs on 4 CPUs), above the limit 4", Assert.Single(r[3].ExcludedBecause));
        Assert.Equal("storage: pool 'default' has 10 GiB free, the disk needs 40 GiB", Assert.Single(r[4].ExcludedBecause));
        Assert.Equal("storage: pool 'default' is not running", Assert.Single(r[5].ExcludedBecause));
        Assert.All(r.Skip(1), p => Assert.False(p.Fits));
        Assert.All(r.Skip(1), p => Assert.Equal(0, p.Score));
    }

    [Fact]
    public void Networks_MustExistAndBeActive()
    {
        var request = new KvmPlacementRequest { CpuCount = 1, MemoryBytes = GiB, Networks = ["lan", "dmz"] };
        KvmPlacementHost both = Host("both", 8, 32, [], networks: [("lan", true), ("dmz", true)]);
        KvmPlacementHost down = Host("down", 8, 32, [], networks: [("lan", true), ("dmz", false)]);
        KvmPlacementHost none = Host("none", 8, 32, [], networks: [("default", true)]);
        IReadOnlyList<KvmHostPlacement> r = PlacementService.Rank([none, down, both], request);
        Assert.Equal("both", r[0].HostName);
        Assert.Equal(["network: 'dmz' is not active"], r.Single(p => p.HostName == "down").ExcludedBecause);
        Assert.Equal(["network: no network 'lan'", "network: no network 'dmz'"], r.Single(p => p.HostName == "none").ExcludedBecause);
        Assert.Null(r[0].StoragePool);                                         // no disk asked: no pool checked
    }

    [Fact]
    public void Commitment_DefinedCountsShutOffVms_ActiveDoesNot()
    {
        KvmPlacementHost host = Host("h", 8, 16, [(2, 10, false)]);
        KvmHostPlacement defined = PlacementService.Evaluate(host, s_request);
        KvmHostPlacement active = PlacementService.Evaluate(host, new KvmPlacementRequest { CpuCount = 4, MemoryBytes = 8 * GiB, DiskSizeBytes = 40 * GiB, Commitment = KvmPlacementCommitment.Active });
        Assert.False(defined.Fits);
        Assert.Equal((long)(6 * GiB), defined.FreeMemoryBytes);
        Assert.True(active.Fits);
        Assert.Equal(0, active.CommittedCpuCount);
        Assert.Equal((long)(16 * GiB), active.FreeMemoryBytes);
    }

    [Fact]
    public void Limits_CpuRatioAndMemoryRatio_AreTheCallers()
    {
        KvmPlacementHost host = Host("h", 4, 16, [(8, 4, true)]);            // 12 vCPUs on 4 CPUs after: ratio 3
        Assert.True(PlacementService.Evaluate(host, s_request).Fits);
        var strict = new KvmPlacementRequest { CpuCount = 4, MemoryBytes = 8 * GiB, MaxCpuRatio = 2, MaxMemoryRatio = 0.5 };
        KvmHostPlacement p = PlacementService.Evaluate(host, strict);
        Assert.False(p.Fits);
        Assert.Equal(2, p.ExcludedBecause.Count);
        Assert.StartsWith("memory: needs 8 GiB, 4 GiB left of 16 GiB", p.ExcludedBecause[0]);
        Assert.StartsWith("cpu: vCPU:CPU ratio would be 3", p.ExcludedBecause[1]);
    }

    [Fact]
    public void Rank_HundredHostsOfAThousandVmsEach_TakesWellUnderASecond()
    {
        var rnd = new Random(15);
        List<KvmPlacementHost> hosts = Enumerable.Range(0, 100).Select(h => new KvmPlacementHost
        {
            Uri = $"test:///h{h}",
            HostName = $"h{h}",
            CpuCount = 256,
            MemoryBytes = 4096 * GiB,
            Vms = Enumerable.Range(0, 1000).Select(_ => (rnd.Next(1, 2), (ulong)rnd.Next(1, 4) * GiB, 4 * GiB, rnd.Next(2) == 0)).ToList(),
            Pools = [("default", true, 1000 * GiB)],
            Networks = [("default", true)],
        }).ToList();
        var sw = Stopwatch.StartNew();
        IReadOnlyList<KvmHostPlacement> r = PlacementService.Rank(hosts, s_request);
        sw.Stop();
        Assert.Equal(100, r.Count);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"took {sw.Elapsed}");
        Assert.True(r.Where(p => p.Fits).Zip(r.Where(p => p.Fits).Skip(1)).All(x => x.First.Score >= x.Second.Score));
    }
}
