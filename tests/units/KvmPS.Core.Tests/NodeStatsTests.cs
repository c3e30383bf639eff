using KvmPS.Core.Backend;
using KvmPS.Core.Managed;
using KvmPS.Core.Native;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>virNodeGetCPUStats / virNodeGetMemoryStats through both backends, and the host CPU usage arithmetic.</summary>
public sealed class NodeStatsTests
{
    private static readonly LibvirtOpenOptions s_options = new();

    private static TypedParameter U(string name, ulong value) => new(name, TypedParameterType.ULLong, value);

    [SkippableFact]
    public void BothBackends_ReadTheSameNodeStatistics_OnQemuSystem()
    {
        Skip.IfNot(SocketProxy.DaemonAvailable, "no libvirtd socket on this machine");
        using ILibvirtConnection native = NativeBackend.Instance.Open("qemu:///system", s_options);
        using ILibvirtConnection managed = ManagedBackend.Instance.Open("qemu:///system", s_options);
        foreach (ILibvirtConnection c in new[] { native, managed })
        {
            IReadOnlyList<TypedParameter> cpu = c.GetNodeCpuStats(-1);
            Assert.Equal(["kernel", "user", "idle", "iowait"], cpu.Select(p => p.Name));
            Assert.All(cpu, p => Assert.Equal(TypedParameterType.ULLong, p.Type));
            Assert.True(cpu.Single(p => p.Name == "idle").AsUInt64() > 0);
            Assert.Equal(4, c.GetNodeCpuStats(0).Count);   // one CPU
            IReadOnlyList<TypedParameter> mem = c.GetNodeMemoryStats(-1);
            Assert.Equal(["total", "free", "buffers", "cached"], mem.Select(p => p.Name));
            // all cells: the kernel's whole-host counters (/proc/meminfo), which can exceed node info's NUMA sum
            Assert.Equal(MemTotalKiB(), mem[0].AsUInt64());
        }

        // The same daemon answers both: memory totals match, and CPU counters only grow from native to managed.
        Assert.Equal(native.GetNodeMemoryStats(-1)[0].Value, managed.GetNodeMemoryStats(-1)[0].Value);
        ulong idleNative = native.GetNodeCpuStats(-1).Single(p => p.Name == "idle").AsUInt64();
        ulong idleManaged = managed.GetNodeCpuStats(-1).Single(p => p.Name == "idle").AsUInt64();
        Assert.True(idleManaged >= idleNative);
    }

    private static ulong MemTotalKiB()
        => ulong.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    [SkippableFact]
    public void BothBackends_ReportTheTestDriversGaps_Alike()
    {
        Skip.IfNot(SocketProxy.DaemonAvailable, "no libvirtd socket on this machine");
        using ILibvirtConnection native = NativeBackend.Instance.Open("test+unix:///default", s_options);
        using ILibvirtConnection managed = ManagedBackend.Instance.Open("test:///default", s_options);
        // The test driver's CPU counters are constants; it has no memory statistics.
        Assert.Equal(native.GetNodeCpuStats(-1), managed.GetNodeCpuStats(-1));
        LibvirtException n = Assert.Throws<LibvirtException>(() => native.GetNodeMemoryStats(-1));
        LibvirtException m = Assert.Throws<LibvirtException>(() => managed.GetNodeMemoryStats(-1));
        Assert.Equal(LibvirtErrorCode.NoSupport, n.Code);
        Assert.Equal(n.Code, m.Code);
        Assert.Equal(n.Message, m.Message);
    }

    [Fact]
    public void HostCpuUsage_IsBusyShareOfAllTime()
    {
        IReadOnlyList<TypedParameter> a = [U("kernel", 1000), U("user", 3000), U("idle", 10000), U("iowait", 0)];
        IReadOnlyList<TypedParameter> b = [U("kernel", 1500), U("user", 4500), U("idle", 11500), U("iowait", 500)];
        // busy +2000, idle + iowait +2000: half busy
        Assert.Equal(50.0, HostService.CpuUsagePercent(a, b));
        Assert.Null(HostService.CpuUsagePercent(a, a));          // no time passed (the test driver)
        Assert.Null(HostService.CpuUsagePercent(b, a));          // counters went backwards
        Assert.Null(HostService.CpuUsagePercent([U("kernel", 1)], [U("kernel", 2)]));
        Assert.Equal(37.0, HostService.CpuUsagePercent([U("utilization", 10)], [U("utilization", 37)]));
    }
}
