using KvmPS.Core.Backend;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

public sealed class MetricsTests
{
    private static readonly DomainRef s_dom = new("web1", Guid.Parse("11111111-2222-3333-4444-555555555555"), 7);

    private static TypedParameter U(string name, ulong value) => new(name, TypedParameterType.ULLong, value);

    private static TypedParameter I(string name, int value) => new(name, TypedParameterType.Int, value);

    /// <summary>A qemu-like record: 2 vCPUs, 2 disks, 1 NIC, a guest with balloon statistics.</summary>
    private static DomainStatsRecord Record(DomainRef dom, ulong cpuNs, ulong vcpu0Ns, ulong vcpu1Ns, ulong diskScale, ulong netScale) => new(dom,
    [
        I("state.state", 1), I("state.reason", 1),
        U("cpu.time", cpuNs), U("cpu.user", 1), U("cpu.system", 2),
        U("balloon.current", 1048576), U("balloon.maximum", 2097152),
        U("balloon.available", 1000000), U("balloon.unused", 600000), U("balloon.usable", 800000), U("balloon.rss", 500000),
        new("vcpu.current", TypedParameterType.UInt, 2u), new("vcpu.maximum", TypedParameterType.UInt, 4u),
        I("vcpu.0.state", 1), U("vcpu.0.time", vcpu0Ns), U("vcpu.0.wait", 5),
        I("vcpu.1.state", 1), U("vcpu.1.time", vcpu1Ns), U("vcpu.1.wait", 5),
        new("block.count", TypedParameterType.UInt, 2u),
        new("block.0.name", TypedParameterType.String, "vda"), U("block.0.rd.reqs", 10 * diskScale), U("block.0.rd.bytes", 4096 * diskScale),
        U("block.0.wr.reqs", 5 * diskScale), U("block.0.wr.bytes", 8192 * diskScale), U("block.0.fl.reqs", 99), U("block.0.rd.times", 12345),
        new("block.1.name", TypedParameterType.String, "vdb"), U("block.1.rd.reqs", 1 * diskScale), U("block.1.rd.bytes", 512 * diskScale),
        U("block.1.wr.reqs", 0), U("block.1.wr.bytes", 0), U("block.1.capacity", 1_000_000_000), U("block.1.allocation", 1_000_000),
        new("net.count", TypedParameterType.UInt, 1u),
        new("net.0.name", TypedParameterType.String, "vnet0"), U("net.0.rx.bytes", 1000 * netScale), U("net.0.rx.pkts", 10 * netScale),
        U("net.0.tx.bytes", 300 * netScale), U("net.0.tx.pkts", 3 * netScale), U("net.0.rx.drop", 0),
    ]);

    [Fact]
    public void Counters_SumDisksAndNics_AndIgnoreOtherFields()
    {
        DomainCounters c = DomainCounters.From(Record(s_dom, 5_000_000_000, 2_000_000_000, 1_000_000_000, 1, 1));
        Assert.Equal(1, c.State);
        Assert.Equal(2, c.VcpuCount);
        Assert.Equal(5_000_000_000UL, c.CpuTimeNs);
        Assert.Equal(3_000_000_000UL, c.VcpuTimeNs);
        Assert.Equal(2, c.VcpuTimeCount);
        Assert.Equal(2, c.DiskCount);
        Assert.Equal(4096UL + 512, c.DiskReadBytes);
        Assert.Equal(8192UL, c.DiskWriteBytes);
        Assert.Equal(11UL, c.DiskReadRequests);
        Assert.Equal(5UL, c.DiskWriteRequests);
        Assert.Equal(1, c.NetworkAdapterCount);
        Assert.Equal(1000UL, c.NetworkReceiveBytes);
        Assert.Equal(300UL, c.NetworkTransmitBytes);
        Assert.Equal(1000000UL, c.AvailableKiB);
        Assert.Equal(500000UL, c.RssKiB);
    }

    [Fact]
    public void Counters_MissingGroupsStayNull_ButAnEmptyGroupIsZero()
    {
        DomainCounters stateOnly = DomainCounters.From(new DomainStatsRecord(s_dom, [I("state.state", 5), I("state.reason", 1)]));
        Assert.Null(stateOnly.CpuTimeNs);
        Assert.Null(stateOnly.DiskCount);
        Assert.Null(stateOnly.DiskReadBytes);
        Assert.Null(stateOnly.NetworkReceiveBytes);
        Assert.Null(stateOnly.AvailableKiB);

        DomainCounters noDevices = DomainCounters.From(new DomainStatsRecord(s_dom,
            [new("block.count", TypedParameterType.UInt, 0u), new("net.count", TypedParameterType.UInt, 0u)]));
        Assert.Equal(0UL, noDevices.DiskReadBytes);
        Assert.Equal(0UL, noDevices.NetworkTransmitBytes);
    }

    [Fact]
    public void Counters_DisksReportedWithoutCounters_AreUnknown_NotZero()
    {
        // what NOWAIT gives for a running VM whose monitor is busy: the disks from the XML, no counters
        DomainCounters busy = DomainCounters.From(new DomainStatsRecord(s_dom,
            [new("block.count", TypedParameterType.UInt, 1u), new("block.0.name", TypedParameterType.String, "vda")]));
        Assert.Equal(1, busy.DiskCount);
        Assert.Null(busy.DiskReadBytes);
        Assert.Null(busy.DiskWriteBytes);
        Assert.Null(busy.DiskReadRequests);
        Assert.Null(busy.DiskWriteRequests);
    }

    [Fact]
    public void Compute_RatesAreDeltaOverElapsed_CpuLikeTop()
    {
        using var conn = new KvmConnection("test:///default");
        DomainCounters a = DomainCounters.From(Record(s_dom, 5_000_000_000, 2_000_000_000, 1_000_000_000, 1, 1));
        // 2 s later: 3 s of CPU (150% = 1.5 CPUs), vCPUs 1.2 s + 1.6 s of guest time, 10× disk and 5× net counters.
        DomainCounters b = DomainCounters.From(Record(s_dom, 8_000_000_000, 3_200_000_000, 2_600_000_000, 10, 5));
        var at = new DateTime(2026, 1, 2, 3, 4, 5);
        KvmVmMetrics m = MetricsService.Compute(conn, a, b, TimeSpan.FromSeconds(2), at);

        Assert.Equal("web1", m.VMName);
        Assert.Equal(7, m.Id);
        Assert.Equal(KvmVmState.Running, m.State);
        Assert.Equal(2, m.VirtualCpuCount);
        Assert.Equal(at, m.Timestamp);
        Assert.Equal(TimeSpan.FromSeconds(2), m.SampleInterval);
        Assert.Equal(150, m.CpuUsagePercent!.Value, 6);
        Assert.Equal(70, m.VcpuUsagePercent!.Value, 6);               // (1.2 + 1.6) / 2 vCPUs / 2 s
        Assert.Equal((4608.0 * 10 - 4608) / 2, m.DiskReadBytesPerSecond!.Value, 6);
        Assert.Equal((8192.0 * 10 - 8192) / 2, m.DiskWriteBytesPerSecond!.Value, 6);
        Assert.Equal((11.0 * 10 - 11) / 2, m.DiskReadOperationsPerSecond!.Value, 6);
        Assert.Equal((5.0 * 10 - 5) / 2, m.DiskWriteOperationsPerSecond!.Value, 6);
        Assert.Equal((1000.0 * 5 - 1000) / 2, m.NetworkReceiveBytesPerSecond!.Value, 6);
        Assert.Equal((300.0 * 5 - 300) / 2, m.NetworkTransmitBytesPerSecond!.Value, 6);
        Assert.Equal(TimeSpan.FromSeconds(8), m.CpuTime);
        Assert.Equal(46080UL, m.DiskReadBytesTotal);
        Assert.Equal(1500UL, m.NetworkTransmitBytesTotal);
        Assert.Equal(1048576UL * 1024, m.MemoryAssignedBytes);
        Assert.Equal(2097152UL * 1024, m.MemoryMaximumBytes);
        Assert.Equal(400000UL * 1024, m.MemoryUsedBytes);             // available − unused
        Assert.Equal(600000UL * 1024, m.MemoryUnusedBytes);
        Assert.Equal(500000UL * 1024, m.MemoryResidentBytes);
        Assert.Same(conn, m.Connection);
    }

    [Fact]
    public void Compute_NoRatesAfterARestart_OrWithoutAFirstSample()
    {
        using var conn = new KvmConnection("test:///default");
        DomainCounters a = DomainCounters.From(Record(s_dom, 9_000_000_000, 4_000_000_000, 4_000_000_000, 10, 10));
        DomainCounters restarted = DomainCounters.From(Record(s_dom with { Id = 8 }, 1_000_000_000, 1, 1, 1, 1));
        KvmVmMetrics m = MetricsService.Compute(conn, a, restarted, TimeSpan.FromSeconds(1), DateTime.Now);
        Assert.Null(m.CpuUsagePercent);
        Assert.Null(m.VcpuUsagePercent);
        Assert.Null(m.DiskReadBytesPerSecond);
        Assert.Null(m.NetworkReceiveBytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(1), m.CpuTime);   // the totals are still the second sample's

        KvmVmMetrics none = MetricsService.Compute(conn, null, restarted, TimeSpan.FromSeconds(1), DateTime.Now);
        Assert.Null(none.CpuUsagePercent);
    }

    [Fact]
    public void Compute_GuestWithoutBalloonStatistics_ReportsNoGuestMemory()
    {
        using var conn = new KvmConnection("test:///default");
        var r = new DomainStatsRecord(s_dom, [I("state.state", 1), U("cpu.time", 100), U("balloon.current", 131072), U("balloon.rss", 40000)]);
        KvmVmMetrics m = MetricsService.Compute(conn, DomainCounters.From(r), DomainCounters.From(r), TimeSpan.FromSeconds(1), DateTime.Now);
        Assert.Equal(128UL * 1024 * 1024, m.MemoryAssignedBytes);
        Assert.Null(m.MemoryUsedBytes);
        Assert.Null(m.MemoryAvailableBytes);
        Assert.Null(m.MemoryUnusedBytes);
        Assert.Equal(0.0, m.CpuUsagePercent);
    }

    [Theory]
    [InlineData(100UL, 300UL, 2.0, 100.0)]
    [InlineData(300UL, 100UL, 2.0, null)]     // went backwards
    [InlineData(100UL, 300UL, 0.0, null)]     // no time passed
    [InlineData(5UL, 5UL, 0.5, 0.0)]
    public void Rate_IsDeltaPerSecond(ulong first, ulong second, double seconds, double? expected)
        => Assert.Equal(expected, MetricsService.Rate(first, second, seconds));

    [Fact]
    public void Rate_NeedsBothSamples()
    {
        Assert.Null(MetricsService.Rate(null, 5, 1));
        Assert.Null(MetricsService.Rate(5, null, 1));
    }
}
