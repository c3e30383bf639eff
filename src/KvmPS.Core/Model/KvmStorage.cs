using KvmPS.Core.Services;

namespace KvmPS.Core;

/// <summary>A storage pool's state (libvirt's virStoragePoolState).</summary>
public enum KvmStoragePoolState
{
    Inactive = 0,
    Building = 1,
    Running = 2,
    Degraded = 3,
    Inaccessible = 4,
}

/// <summary>The pool types New-KvmStoragePool creates (libvirt's pool type names, lower-cased in the XML).</summary>
public enum KvmStoragePoolType
{
    /// <summary>A folder on the host: every file in it is a volume.</summary>
    Dir = 0,

    /// <summary>A block device with a file system, mounted at the target path.</summary>
    Fs = 1,

    /// <summary>A network export (NFS, CIFS, GlusterFS) mounted at the target path.</summary>
    Netfs = 2,

    /// <summary>An LVM volume group: every logical volume is a volume.</summary>
    Logical = 3,

    /// <summary>An iSCSI target: every LUN is a volume (volumes cannot be created).</summary>
    Iscsi = 4,
}

/// <summary>A libvirt storage pool. A data object: it carries its <see cref="Connection"/>, no libvirt handle.</summary>
public sealed class KvmStoragePool
{
    public string Name { get; init; } = string.Empty;

    public Guid Uuid { get; init; }

    /// <summary>libvirt's pool type: dir, fs, netfs, logical, iscsi, disk, rbd, zfs ...</summary>
    public string Type { get; init; } = string.Empty;

    public KvmStoragePoolState State { get; init; }

    /// <summary>The target path on the host (the folder of a dir pool, the mount point of fs/netfs, /dev/VG of logical).</summary>
    public string? Path { get; init; }

    /// <summary>Where the storage comes from: "host:/export" (netfs), "host/iqn..." (iscsi), the device(s) (fs, logical) or the volume group name.</summary>
    public string? Source { get; init; }

    public ulong CapacityBytes { get; init; }

    public ulong AllocationBytes { get; init; }

    public ulong AvailableBytes { get; init; }

    public bool Autostart { get; init; }

    public bool Persistent { get; init; }

    /// <summary>Volumes libvirt knows in the pool (0 while the pool is not running).</summary>
    public int VolumeCount { get; init; }

    public KvmConnection Connection { get; init; } = null!;

    public bool IsRunning => State == KvmStoragePoolState.Running;

    public override string ToString() => Name;
}

/// <summary>A storage volume (a disk image file, logical volume or LUN) in a pool. A data object without libvirt handles.</summary>
public sealed class KvmVolume
{
    /// <summary>The pool's name.</summary>
    public string Pool { get; init; } = string.Empty;

    public string Name { get; init; } = string.Empty;

    /// <summary>The path on the host (what a VM's disk refers to).</summary>
    public string Path { get; init; } = string.Empty;

    /// <summary>libvirt's unique key (the path for file volumes).</summary>
    public string Key { get; init; } = string.Empty;

    /// <summary>libvirt's volume type: file, block, dir, network, netdir, ploop.</summary>
    public string Type { get; init; } = string.Empty;

    /// <summary>The image format from the volume XML (target/format): qcow2, raw, iso ...; null when libvirt does not say.</summary>
    public string? Format { get; init; }

    /// <summary>The size the guest sees.</summary>
    public ulong CapacityBytes { get; init; }

    /// <summary>Space the volume takes in the pool.</summary>
    public ulong AllocationBytes { get; init; }

    /// <summary>The volume's size as a file (what Export-KvmVolume downloads); null when libvirt does not report it.</summary>
    public ulong? PhysicalBytes { get; init; }

    /// <summary>The path of the image this one is an overlay on (qcow2 backing file), or null.</summary>
    public string? BackingStore { get; init; }

    /// <summary>Names of the VMs whose disks (or their backing chains) use this volume, read when the object was made.</summary>
    public IReadOnlyList<string> UsedBy { get; init; } = [];

    public KvmConnection Connection { get; init; } = null!;

    public override string ToString() => $"{Pool}/{Name}";
}

/// <summary>What New-KvmStoragePool defines: the type, the target path and the source of the storage.</summary>
public sealed class KvmStoragePoolDefinition
{
    public string Name { get; set; } = string.Empty;

    public KvmStoragePoolType Type { get; set; }

    /// <summary>The target path on the host (required for dir, fs and netfs).</summary>
    public string? Path { get; set; }

    /// <summary>Source devices: the block device (fs), physical volumes (logical), or the target IQN (iscsi).</summary>
    public IReadOnlyList<string> SourceDevices { get; set; } = [];

    /// <summary>The server (netfs, iscsi).</summary>
    public string? SourceHost { get; set; }

    /// <summary>The exported folder on the server (netfs).</summary>
    public string? SourcePath { get; set; }

    /// <summary>The volume group name (logical).</summary>
    public string? SourceName { get; set; }
}
