namespace KvmPS.Core;

/// <summary>A full copy, or only the blocks changed since the previous backup of the chain.</summary>
public enum KvmBackupKind
{
    Full = 0,
    Incremental = 1,
}

/// <summary>One disk of a backup: the file holding it in the backup folder.</summary>
public sealed record KvmBackupDisk
{
    public string Target { get; init; } = string.Empty;
    public string File { get; init; } = string.Empty;
    public string Format { get; init; } = "qcow2";
    /// <summary>The disk's virtual size.</summary>
    public ulong CapacityBytes { get; init; }
    /// <summary>The backup file's size on disk.</summary>
    public ulong SizeBytes { get; init; }

    public override string ToString() => $"{Target}: {File}";
}

/// <summary>One backup of a VM: a folder with the disks, the VM definition and a manifest, part of a backup set (chain).</summary>
public sealed class KvmBackup
{
    public string VMName { get; init; } = string.Empty;
    public Guid VMUuid { get; init; }
    /// <summary>The backup's name in its set (its folder name).</summary>
    public string Name { get; init; } = string.Empty;
    /// <summary>The backup's folder.</summary>
    public string Path { get; init; } = string.Empty;
    /// <summary>The backup set's folder (Backup-KvmVm -Destination).</summary>
    public string SetPath { get; init; } = string.Empty;
    public KvmBackupKind Kind { get; init; }
    /// <summary>The backup this one builds on (incremental), else null.</summary>
    public string? Parent { get; init; }
    /// <summary>The libvirt checkpoint the next incremental starts from; null when none was made.</summary>
    public string? Checkpoint { get; init; }
    public IReadOnlyList<KvmBackupDisk> Disks { get; init; } = [];
    public DateTime StartTime { get; init; }
    public TimeSpan Duration { get; init; }
    public ulong BytesWritten { get; init; }
    public string? HostName { get; init; }

    public override string ToString() => $"{VMName}\\{Name}";
}
