using KvmPS.Core.Services;

namespace KvmPS.Core;

/// <summary>
/// What one running VM used over a sample interval (Measure-KvmVm): rates from two samples of libvirt's
/// bulk domain statistics, the counters' totals at the end of the interval, and the memory figures of
/// that second sample. A value is null when libvirt (or the guest) did not report it: nothing is estimated.
/// </summary>
public sealed class KvmVmMetrics
{
    /// <summary>The host the VM runs on (libvirt's host name of the connection).</summary>
    public string? HostName { get; init; }

    public string Uri { get; init; } = string.Empty;

    public string VMName { get; init; } = string.Empty;

    public Guid Uuid { get; init; }

    /// <summary>The running domain's id.</summary>
    public int? Id { get; init; }

    /// <summary>The VM's state at the end of the interval (Running or Paused, for instance).</summary>
    public KvmVmState State { get; init; }

    public int VirtualCpuCount { get; init; }

    /// <summary>When the second sample was taken (local time).</summary>
    public DateTime Timestamp { get; init; }

    /// <summary>The measured time between the two samples (close to the requested interval).</summary>
    public TimeSpan SampleInterval { get; init; }

    /// <summary>
    /// CPU time the VM's processes used over the interval divided by the wall-clock time, in percent of one
    /// host CPU (as top shows it): 0 to 100 × VirtualCpuCount. It includes QEMU's own threads (I/O,
    /// emulation), which with sampling jitter can push a fully busy VM a little over its capacity: the figure
    /// is capped at 100 × VirtualCpuCount (the CpuTime totals are exact).
    /// </summary>
    public double? CpuUsagePercent { get; init; }

    /// <summary>How busy the vCPUs were on average, 0 to 100 (guest time only, from the per-vCPU times).</summary>
    public double? VcpuUsagePercent { get; init; }

    /// <summary>Memory the VM has now (libvirt's balloon.current), in bytes.</summary>
    public ulong? MemoryAssignedBytes { get; init; }

    /// <summary>The ceiling the balloon can grow to (balloon.maximum), in bytes.</summary>
    public ulong? MemoryMaximumBytes { get; init; }

    /// <summary>Memory the guest OS sees (balloon.available); needs the guest's balloon driver and a stats period.</summary>
    public ulong? MemoryAvailableBytes { get; init; }

    /// <summary>Memory the guest OS leaves completely unused (balloon.unused); from the guest's balloon driver.</summary>
    public ulong? MemoryUnusedBytes { get; init; }

    /// <summary>Memory the guest could use without swapping, caches included (balloon.usable); from the guest.</summary>
    public ulong? MemoryUsableBytes { get; init; }

    /// <summary>MemoryAvailableBytes − MemoryUnusedBytes: what the guest OS uses, its caches included; null when the guest reports neither.</summary>
    public ulong? MemoryUsedBytes { get; init; }

    /// <summary>Host memory the VM's QEMU process holds (balloon.rss), in bytes.</summary>
    public ulong? MemoryResidentBytes { get; init; }

    /// <summary>Bytes read per second, summed over the VM's disks.</summary>
    public double? DiskReadBytesPerSecond { get; init; }

    /// <summary>Bytes written per second, summed over the VM's disks.</summary>
    public double? DiskWriteBytesPerSecond { get; init; }

    /// <summary>Read requests per second (IOPS), summed over the VM's disks.</summary>
    public double? DiskReadOperationsPerSecond { get; init; }

    /// <summary>Write requests per second (IOPS), summed over the VM's disks.</summary>
    public double? DiskWriteOperationsPerSecond { get; init; }

    /// <summary>Bytes received per second, summed over the VM's network adapters.</summary>
    public double? NetworkReceiveBytesPerSecond { get; init; }

    /// <summary>Bytes sent per second, summed over the VM's network adapters.</summary>
    public double? NetworkTransmitBytesPerSecond { get; init; }

    /// <summary>CPU time the VM has used since it started (cpu.time).</summary>
    public TimeSpan? CpuTime { get; init; }

    public int? DiskCount { get; init; }

    public ulong? DiskReadBytesTotal { get; init; }

    public ulong? DiskWriteBytesTotal { get; init; }

    public ulong? DiskReadOperationsTotal { get; init; }

    public ulong? DiskWriteOperationsTotal { get; init; }

    public int? NetworkAdapterCount { get; init; }

    public ulong? NetworkReceiveBytesTotal { get; init; }

    public ulong? NetworkTransmitBytesTotal { get; init; }

    public KvmConnection Connection { get; init; } = null!;

    public override string ToString() => VMName;
}
