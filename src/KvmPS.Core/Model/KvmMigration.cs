using KvmPS.Core.Services;

namespace KvmPS.Core;

/// <summary>How Move-KvmVm moves a VM; everything but the destination is optional.</summary>
public sealed class KvmMigrationOptions
{
    /// <summary>Copy the VM's disks to the destination (a live VM: libvirt's NBD copy; a shut-off one: volume streams).</summary>
    public bool IncludeStorage { get; init; }

    /// <summary>The destination pool for copied disks (default: a pool of the source pool's name, else 'default').</summary>
    public string? DestinationStoragePool { get; init; }

    /// <summary>Keep the (inactive) definition on the source: a copy-style move.</summary>
    public bool KeepSource { get; init; }

    /// <summary>
    /// Let libvirt migrate disks it cannot prove safe: shared storage on a file system libvirt does not know to be
    /// shared (a local path both hosts see, such as a bind mount), with a cache mode other than none.
    /// </summary>
    public bool AllowUnsafe { get; init; }

    /// <summary>The address the destination listens on for the migration stream (a migration network): tcp://address.</summary>
    public string? MigrationAddress { get; init; }

    /// <summary>Bandwidth limit in MiB/s (null: unlimited).</summary>
    public ulong? BandwidthMiBps { get; init; }

    /// <summary>The longest pause the guest may see at the end of a live migration.</summary>
    public TimeSpan? MaxDowntime { get; init; }

    public bool AutoConverge { get; init; }

    /// <summary>Switch to post-copy once the first pass over memory is done (the guest then runs on the destination).</summary>
    public bool PostCopy { get; init; }

    public bool Compressed { get; init; }

    /// <summary>The source daemon connects to the destination itself (its URI must work from the source host).</summary>
    public bool PeerToPeer { get; init; }

    /// <summary>Give up (abort the migration, VM still on the source) after this long.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>One check made before a move: passed or not, and what it found.</summary>
public sealed record KvmMigrationCheck(string Name, bool Passed, string Detail, string? ErrorId = null)
{
    public override string ToString() => $"{Name}: {(Passed ? "ok" : "FAILED")} ({Detail})";
}

/// <summary>A disk of a VM being moved: where it is and where it goes.</summary>
public sealed record KvmMigrationDisk(string Target, string Path, string? Format, ulong CapacityBytes, ulong AllocationBytes)
{
    /// <summary>The pool the copy is made in (copies only).</summary>
    public string? DestinationPool { get; init; }

    /// <summary>The volume name of the copy (copies only).</summary>
    public string? DestinationVolume { get; init; }

    /// <summary>Where the disk is on the destination (the same path when shared).</summary>
    public string? DestinationPath { get; init; }

    public bool Copied => DestinationPool is not null;
}

/// <summary>What a move will do, and the checks it passed or failed, before anything changes.</summary>
public sealed class KvmMigrationPlan
{
    public KvmVm VM { get; init; } = null!;

    public KvmConnection Destination { get; init; } = null!;

    /// <summary>True for a running (or paused) VM: a live migration.</summary>
    public bool Live { get; init; }

    public IReadOnlyList<KvmMigrationDisk> Disks { get; init; } = [];

    public IReadOnlyList<KvmMigrationCheck> Checks { get; init; } = [];

    public bool Passed => Checks.All(c => c.Passed);

    /// <summary>The first failed check (null when all passed).</summary>
    public KvmMigrationCheck? FirstFailure => Checks.FirstOrDefault(c => !c.Passed);

    /// <summary>One line: what moves how, and the checks.</summary>
    public string Describe(KvmMigrationOptions options)
    {
        string storage = Disks.Count == 0 ? "no disks"
            : options.IncludeStorage ? $"copying {string.Join(", ", Disks.Select(d => $"{d.Target} to {d.DestinationPool}/{d.DestinationVolume}"))}"
            : $"shared storage ({string.Join(", ", Disks.Select(d => d.Target))})";
        return $"{(Live ? "Live" : "Offline")} move to {Destination.HostName ?? Destination.Uri} ({Destination.Uri}), {storage}"
            + $"{(options.KeepSource ? ", keeping the source definition" : string.Empty)}; checks: {string.Join("; ", Checks)}";
    }
}

/// <summary>Progress of a running migration, as libvirt's job statistics report it.</summary>
public sealed record KvmMigrationProgress(string VMName, TimeSpan Elapsed, ulong DataProcessedBytes, ulong DataRemainingBytes, ulong DataTotalBytes,
    ulong MemoryProcessedBytes, ulong MemoryRemainingBytes, ulong DiskProcessedBytes, ulong DiskRemainingBytes)
{
    public int Percent => DataTotalBytes == 0 ? -1 : (int)Math.Min(99, 100.0 * DataProcessedBytes / DataTotalBytes);
}
