using KvmPS.Core.Services;

namespace KvmPS.Core;

/// <summary>Internal snapshots live inside the VM's qcow2 images; external ones are overlay files (and a memory file).</summary>
public enum KvmSnapshotKind
{
    Internal = 0,
    External = 1,
}

/// <summary>One disk's part of a snapshot.</summary>
public sealed record KvmSnapshotDisk(string Target, string Snapshot, string? File)
{
    public override string ToString() => File is null ? $"{Target}: {Snapshot}" : $"{Target}: {Snapshot} ({File})";
}

/// <summary>A VM snapshot (Hyper-V: checkpoint) and its place in the VM's snapshot tree.</summary>
public sealed class KvmSnapshot
{
    public string VMName { get; init; } = string.Empty;
    public Guid VMUuid { get; init; }
    public string Name { get; init; } = string.Empty;
    public string? Description { get; init; }
    public DateTime CreationTime { get; init; }
    /// <summary>The VM's state when the snapshot was taken (running, shutoff, paused, disk-snapshot).</summary>
    public string? VmState { get; init; }
    public KvmSnapshotKind Kind { get; init; }
    /// <summary>The snapshot holds the VM's memory: restoring it resumes the VM where it was.</summary>
    public bool HasMemory { get; init; }
    /// <summary>The memory file of an external snapshot with memory.</summary>
    public string? MemoryFile { get; init; }
    public string? Parent { get; init; }
    public IReadOnlyList<string> Children { get; internal set; } = [];
    public bool IsCurrent { get; init; }
    public IReadOnlyList<KvmSnapshotDisk> Disks { get; init; } = [];
    public KvmConnection Connection { get; init; } = null!;

    public override string ToString() => $"{VMName}\\{Name}";
}
