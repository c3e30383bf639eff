using KvmPS.Core.Backend;
using KvmPS.Core.Services;
using KvmPS.Core.Xml;

namespace KvmPS.Core;

/// <summary>A VM's run state (libvirt's virDomainState).</summary>
public enum KvmVmState
{
    NoState = 0,
    Running = 1,
    Blocked = 2,
    Paused = 3,
    ShuttingDown = 4,
    ShutOff = 5,
    Crashed = 6,
    PMSuspended = 7,
}

/// <summary>How the VM's CPU is executed: hardware-assisted KVM, QEMU's TCG emulation, or another driver's type.</summary>
public enum KvmAccelerator
{
    Unknown = 0,
    Kvm = 1,
    Qemu = 2,
    Other = 3,
}

/// <summary>The VM's firmware.</summary>
public enum KvmFirmware
{
    Bios = 0,
    Uefi = 1,
}

/// <summary>
/// A virtual machine (libvirt domain). A data object: it carries its <see cref="Connection"/> and
/// <see cref="Uuid"/> so the next command finds it again; it holds no libvirt handle.
/// Configuration read from the domain XML (title, description, accelerator, firmware, disks, NICs)
/// is fetched on first access, so listing stays one bulk call for any number of VMs.
/// </summary>
public sealed class KvmVm
{
    private readonly object _configLock = new();
    private DomainConfig? _config;
    private bool? _autostart;
    private bool? _persistent;
    private bool? _hasManagedSave;

    internal KvmVm(KvmConnection connection, DomainRef domain)
    {
        Connection = connection;
        Name = domain.Name;
        Uuid = domain.Uuid;
        Id = domain.Id >= 0 ? domain.Id : null;
    }

    public string Name { get; }

    public Guid Uuid { get; }

    /// <summary>The running domain's id; null when the VM is not running.</summary>
    public int? Id { get; }

    public KvmVmState State { get; internal set; }

    /// <summary>Why the VM is in its state (libvirt's state reason), e.g. Booted, Destroyed, User.</summary>
    public string StateReason { get; internal set; } = "Unknown";

    public int CpuCount { get; internal set; }

    /// <summary>Memory the VM has now (libvirt's currentMemory / balloon), in bytes.</summary>
    public ulong MemoryBytes { get; internal set; }

    /// <summary>The ceiling the VM's memory can be ballooned up to (libvirt's memory), in bytes.</summary>
    public ulong MaxMemoryBytes { get; internal set; }

    public TimeSpan CpuTime { get; internal set; }

    /// <summary>Starts with the host. In a bulk listing this is read for all VMs at once, on first access.</summary>
    public bool Autostart
    {
        get => _autostart ?? ListFlags!.Autostart.Contains(Uuid);
        internal set => _autostart = value;
    }

    /// <summary>Has a persistent definition (false: transient, gone when it stops).</summary>
    public bool Persistent
    {
        get => _persistent ?? !ListFlags!.Transient.Contains(Uuid);
        internal set => _persistent = value;
    }

    /// <summary>Has a managed-save image: the next start resumes it.</summary>
    public bool HasManagedSave
    {
        get => _hasManagedSave ?? ListFlags!.ManagedSave.Contains(Uuid);
        internal set => _hasManagedSave = value;
    }

    /// <summary>Shared by every VM of one listing: the three flag sets, fetched together when first needed.</summary>
    internal DomainListFlags? ListFlags { get; init; }

    public string? Title => Config.Title;

    public string? Description => Config.Description;

    public KvmAccelerator Accelerator => Config.Accelerator;

    /// <summary>libvirt's domain type as written in the XML (kvm, qemu, test ...).</summary>
    public string? DomainType => Config.DomainType;

    public KvmFirmware Firmware => Config.Firmware;

    public string? MachineType => Config.MachineType;

    public IReadOnlyList<KvmVmDisk> Disks => Config.Disks;

    public IReadOnlyList<KvmVmNetworkAdapter> NetworkAdapters => Config.NetworkAdapters;

    public KvmConnection Connection { get; }

    /// <summary>The guest's IP addresses when KvmPS asked for them (Wait-KvmVm -For IPAddress); else empty.</summary>
    public IReadOnlyList<string> IPAddresses { get; internal set; } = [];

    /// <summary>The host name of the VM's connection (the Host column).</summary>
    public string? HostName => Connection.HostName;

    /// <summary>The parsed domain XML, loaded once on first access.</summary>
    internal DomainConfig Config
    {
        get
        {
            if (_config is null)
            {
                lock (_configLock)
                {
                    _config ??= DomainXml.Parse(Connection.Invoke(c => c.GetDomainXml(Ref, DomainXmlFlags.None)));
                }
            }

            return _config;
        }
    }

    internal DomainRef Ref => new(Name, Uuid, Id ?? -1);

    /// <summary>True once the configuration (XML) has been read.</summary>
    internal bool HasConfig => _config is not null;

    internal void SetConfig(DomainConfig config)
    {
        lock (_configLock)
        {
            _config = config;
        }
    }

    public override string ToString() => Name;
}

/// <summary>A VM's disk or CD-ROM drive.</summary>
public sealed record KvmVmDisk
{
    public string Target { get; init; } = string.Empty;
    public string? Path { get; init; }
    public string? Format { get; init; }
    public string? Bus { get; init; }
    /// <summary>disk, cdrom, floppy or lun.</summary>
    public string Device { get; init; } = "disk";
    public bool ReadOnly { get; init; }
    /// <summary>file, block, volume, network.</summary>
    public string? SourceType { get; init; }
    public string? Pool { get; init; }
    public string? Volume { get; init; }

    public override string ToString() => $"{Target}: {Path ?? Volume ?? "(empty)"}";
}

/// <summary>A VM's network adapter.</summary>
public sealed record KvmVmNetworkAdapter
{
    public string? MacAddress { get; init; }
    /// <summary>network, bridge, direct, user ...</summary>
    public string Type { get; init; } = "network";
    /// <summary>The network or bridge name the adapter is attached to.</summary>
    public string? Source { get; init; }
    public string? Model { get; init; }
    public string? Target { get; init; }

    public override string ToString() => $"{MacAddress} ({Type} {Source})";
}
