using KvmPS.Core.Services;

namespace KvmPS.Core;

/// <summary>A host's size, use and allocation: the consolidation view.</summary>
public sealed class KvmHostInfo
{
    public string? HostName { get; init; }
    public string Uri { get; init; } = string.Empty;
    public string? CpuModel { get; init; }
    /// <summary>Logical CPUs the host has.</summary>
    public int CpuCount { get; init; }
    public int CpuMhz { get; init; }
    public int Sockets { get; init; }
    public int Cores { get; init; }
    public int Threads { get; init; }
    public int NumaNodes { get; init; }
    public ulong MemoryBytes { get; init; }
    /// <summary>Free host memory in bytes; null when the driver cannot tell (some test-driver hosts).</summary>
    public ulong? FreeMemoryBytes { get; init; }
    public string? Hypervisor { get; init; }
    public Version? HypervisorVersion { get; init; }
    public Version? LibvirtVersion { get; init; }
    public int VmCount { get; init; }
    public int RunningVmCount { get; init; }
    /// <summary>vCPUs of the VMs that are running (or paused): what the host has committed now.</summary>
    public int AllocatedCpuCount { get; init; }
    /// <summary>Memory of the VMs that are running (or paused), in bytes.</summary>
    public ulong AllocatedMemoryBytes { get; init; }
    /// <summary>vCPUs of all defined VMs, were they all started.</summary>
    public int DefinedCpuCount { get; init; }
    /// <summary>Memory of all defined VMs, were they all started, in bytes.</summary>
    public ulong DefinedMemoryBytes { get; init; }
    /// <summary>AllocatedCpuCount / CpuCount.</summary>
    public double CpuOvercommitRatio { get; init; }
    /// <summary>AllocatedMemoryBytes / MemoryBytes.</summary>
    public double MemoryOvercommitRatio { get; init; }
    /// <summary>DefinedCpuCount / CpuCount: the vCPU ratio were every defined VM started.</summary>
    public double DefinedCpuOvercommitRatio { get; init; }
    /// <summary>DefinedMemoryBytes / MemoryBytes: the memory ratio were every defined VM started.</summary>
    public double DefinedMemoryOvercommitRatio { get; init; }
    /// <summary>MemoryBytes − AllocatedMemoryBytes: memory not given to active VMs (negative when overcommitted).</summary>
    public long UnallocatedMemoryBytes { get; init; }
    /// <summary>
    /// How busy the host's CPUs were, 0-100 over all of them, from two samples of the node's CPU times
    /// (virNodeGetCPUStats) taken CpuSampleInterval apart; null when the driver gives no usable counters.
    /// </summary>
    public double? CpuUsagePercent { get; init; }
    /// <summary>The time between the two CPU samples; null when none were taken.</summary>
    public TimeSpan? CpuSampleInterval { get; init; }
    /// <summary>Memory in use by processes and VMs: total − free − buffers − cached (virNodeGetMemoryStats), as free(1) counts it.</summary>
    public ulong? MemoryUsedBytes { get; init; }
    /// <summary>Page cache (virNodeGetMemoryStats "cached").</summary>
    public ulong? MemoryCachedBytes { get; init; }
    /// <summary>Block-device buffers (virNodeGetMemoryStats "buffers").</summary>
    public ulong? MemoryBuffersBytes { get; init; }
    /// <summary>Headroom for more VMs: free + buffers + cached, memory the host can hand out without swapping.</summary>
    public ulong? MemoryAvailableBytes { get; init; }
    public KvmConnection Connection { get; init; } = null!;

    public override string ToString() => HostName ?? Uri;
}

/// <summary>
/// Pass, Warn, Fail, Skipped (the check applies but could not be made, e.g. a local file of a remote host) or
/// NotApplicable (the check does not concern this host, e.g. hardware checks on the test driver).
/// </summary>
public enum KvmCheckResult
{
    Pass = 0,
    Warn = 1,
    Fail = 2,
    Skipped = 3,
    NotApplicable = 4,
}

/// <summary>One named check of a host's ability to run KVM guests, in the spirit of virt-host-validate.</summary>
public sealed record KvmHostCheck(string Name, KvmCheckResult Result, string Detail, bool IsLocal)
{
    public override string ToString() => $"{Name}: {Result} ({Detail})";
}

/// <summary>Hardware virtualization extensions the host CPU shows.</summary>
public enum KvmHardwareVirtualization
{
    Unknown = 0,
    None = 1,
    VTx = 2,
    AmdV = 3,
}

/// <summary>Firmware kinds the host can boot guests with.</summary>
[Flags]
public enum KvmFirmwareSupport
{
    None = 0,
    Bios = 1,
    Uefi = 2,
    SecureBoot = 4,
}

/// <summary>What a host can do: can it run KVM, with which accelerators, machine types and firmware.</summary>
public sealed class KvmHostCapability
{
    public string? HostName { get; init; }
    public string Uri { get; init; } = string.Empty;
    public string? Arch { get; init; }
    public string? CpuVendor { get; init; }
    public string? CpuModel { get; init; }
    public KvmHardwareVirtualization HardwareVirtualization { get; init; }
    /// <summary>libvirt offers the kvm domain type for the host architecture.</summary>
    public bool KvmAvailable { get; init; }
    /// <summary>Domain types libvirt offers (kvm, qemu, test ...).</summary>
    public IReadOnlyList<string> Accelerators { get; init; } = [];
    /// <summary>Nested virtualization enabled in the host's KVM module; null when it cannot be read.</summary>
    public bool? NestedVirtualization { get; init; }
    /// <summary>An IOMMU is active (device passthrough possible); null when unknown.</summary>
    public bool? Iommu { get; init; }
    public int? MaxCpuCount { get; init; }
    public IReadOnlyList<string> MachineTypes { get; init; } = [];
    public KvmFirmwareSupport Firmware { get; init; }
    public IReadOnlyList<KvmHostCheck> Checks { get; init; } = [];
    public KvmConnection Connection { get; init; } = null!;

    /// <summary>
    /// Fail when a check failed, else Warn when one warned, else Pass; Skipped and NotApplicable checks do not
    /// count. NotApplicable when no check applies (the test driver, which simulates a host).
    /// </summary>
    public KvmCheckResult Overall => Checks.Any(c => c.Result == KvmCheckResult.Fail) ? KvmCheckResult.Fail
        : Checks.Any(c => c.Result == KvmCheckResult.Warn) ? KvmCheckResult.Warn
        : Checks.Any(c => c.Result == KvmCheckResult.Pass) ? KvmCheckResult.Pass
        : KvmCheckResult.NotApplicable;

    public override string ToString() => HostName ?? Uri;
}
