namespace KvmPS.Core;

/// <summary>Which VMs count as a host's commitments when placing: every defined VM (started or not) or only the active ones.</summary>
public enum KvmPlacementCommitment
{
    /// <summary>Every VM defined on the host, at its memory ceiling, as if all were started: a shut-off VM keeps its room.</summary>
    Defined = 0,

    /// <summary>Only the VMs that are running or paused, at their current memory: what the host carries now.</summary>
    Active = 1,
}

/// <summary>What a new VM needs from a host (Find-KvmHost, New-KvmVm -Placement).</summary>
public sealed class KvmPlacementRequest
{
    public int CpuCount { get; init; } = 1;
    public ulong MemoryBytes { get; init; }
    /// <summary>Size of the new disk; 0 needs no pool space.</summary>
    public ulong DiskSizeBytes { get; init; }
    /// <summary>The pool the disk goes to (default: 'default', as New-KvmVm).</summary>
    public string StoragePool { get; init; } = Services.VmProvisioner.DefaultPool;
    /// <summary>Networks that must exist and be active on the host.</summary>
    public IReadOnlyList<string> Networks { get; init; } = [];
    /// <summary>Highest vCPU:CPU ratio a host may reach with the new VM.</summary>
    public double MaxCpuRatio { get; init; } = Services.PlacementService.DefaultMaxCpuRatio;
    /// <summary>Highest share of the host's memory that VMs may take with the new VM (1: no memory overcommit).</summary>
    public double MaxMemoryRatio { get; init; } = 1.0;
    public KvmPlacementCommitment Commitment { get; init; } = KvmPlacementCommitment.Defined;
}

/// <summary>One host's facts the placement is computed from (read by <see cref="Services.PlacementService.Read"/>, or made up for a what-if).</summary>
public sealed class KvmPlacementHost
{
    public string Uri { get; init; } = string.Empty;
    public string? HostName { get; init; }
    public int CpuCount { get; init; }
    public ulong MemoryBytes { get; init; }
    /// <summary>The VMs: vCPUs, current memory, memory ceiling, active.</summary>
    public IReadOnlyList<(int CpuCount, ulong MemoryBytes, ulong MaxMemoryBytes, bool Active)> Vms { get; init; } = [];
    /// <summary>Storage pools: name, running, bytes available.</summary>
    public IReadOnlyList<(string Name, bool Active, ulong AvailableBytes)> Pools { get; init; } = [];
    /// <summary>Virtual networks: name, active.</summary>
    public IReadOnlyList<(string Name, bool Active)> Networks { get; init; } = [];
    public Services.KvmConnection? Connection { get; init; }
}

/// <summary>How well one host can take a new VM: Find-KvmHost's answer. Hosts that cannot take it have Fits false and the reasons in ExcludedBecause.</summary>
public sealed class KvmHostPlacement
{
    /// <summary>1 for the best host; hosts that do not fit are 0. (Not "Rank": an array of results has its own Rank, 1.)</summary>
    public int PlacementRank { get; init; }
    public string? HostName { get; init; }
    public string Uri { get; init; } = string.Empty;
    public bool Fits { get; init; }
    /// <summary>
    /// The headroom left on the host's tightest resource after placing the VM, 0 (full) to 1 (empty): the smallest of the
    /// memory left, the vCPU ratio left below the limit and the pool space left, each as a share. Higher is better.
    /// </summary>
    public double Score { get; init; }
    /// <summary>Why the host cannot take the VM (empty when it fits).</summary>
    public IReadOnlyList<string> ExcludedBecause { get; init; } = [];
    public int CpuCount { get; init; }
    /// <summary>vCPUs of the VMs counted as commitments.</summary>
    public int CommittedCpuCount { get; init; }
    /// <summary>vCPU:CPU ratio with the new VM placed.</summary>
    public double CpuRatioAfter { get; init; }
    public ulong MemoryBytes { get; init; }
    /// <summary>Memory of the VMs counted as commitments.</summary>
    public ulong CommittedMemoryBytes { get; init; }
    /// <summary>Memory not committed to VMs, before the new VM.</summary>
    public long FreeMemoryBytes { get; init; }
    /// <summary>Memory not committed to VMs once the new VM is placed (negative: it does not fit).</summary>
    public long FreeMemoryAfterBytes { get; init; }
    /// <summary>The pool checked for the disk.</summary>
    public string? StoragePool { get; init; }
    /// <summary>Space available in that pool (null: no such running pool).</summary>
    public ulong? FreeDiskBytes { get; init; }
    /// <summary>Space left in that pool after the new disk (null: no such running pool).</summary>
    public long? FreeDiskAfterBytes { get; init; }
    public KvmPlacementCommitment Commitment { get; init; }
    public Services.KvmConnection? Connection { get; init; }

    public override string ToString() => HostName ?? Uri;
}
