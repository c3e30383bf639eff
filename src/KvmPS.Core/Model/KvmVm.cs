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
    private (DomainConfig Source, KvmVmDisk[] Items)? _disks;
    private (DomainConfig Source, KvmVmNetworkAdapter[] Items)? _adapters;

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

    /// <summary>The VM's disks and CD-ROM drives; each carries the VM (VMName, VMUuid, Connection) so it can be piped on.</summary>
    public IReadOnlyList<KvmVmDisk> Disks
    {
        get
        {
            DomainConfig config = Config;
            (DomainConfig Source, KvmVmDisk[] Items)? cached = _disks;
            if (cached is null || !ReferenceEquals(cached.Value.Source, config))
            {
                cached = (config, config.Disks.Select(d => d with { VMName = Name, VMUuid = Uuid, Connection = Connection }).ToArray());
                _disks = cached;
            }

            return cached.Value.Items;
        }
    }

    /// <summary>The VM's network adapters; each carries the VM (VMName, VMUuid, Connection) so it can be piped on.</summary>
    public IReadOnlyList<KvmVmNetworkAdapter> NetworkAdapters
    {
        get
        {
            DomainConfig config = Config;
            (DomainConfig Source, KvmVmNetworkAdapter[] Items)? cached = _adapters;
            if (cached is null || !ReferenceEquals(cached.Value.Source, config))
            {
                cached = (config, config.NetworkAdapters.Select(n => n with { VMName = Name, VMUuid = Uuid, Connection = Connection }).ToArray());
                _adapters = cached;
            }

            return cached.Value.Items;
        }
    }

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

/// <summary>
/// Where a device is: in the running VM (libvirt's live definition), in the persistent configuration (used at
/// the next start), or in both. A shut-off VM only has a configuration.
/// </summary>
[Flags]
public enum KvmDeviceScope
{
    None = 0,
    /// <summary>In the running VM only: gone when the VM stops, or waiting for the guest to release it.</summary>
    Live = 1,
    /// <summary>In the persistent configuration only: on a running VM, it appears at the next start.</summary>
    Config = 2,
    /// <summary>In the running VM and in its configuration.</summary>
    LiveAndConfig = 3,
}

/// <summary>Whether a network adapter's link is connected (libvirt's &lt;link state&gt;).</summary>
public enum KvmLinkState
{
    Up = 0,
    Down = 1,
}

/// <summary>A VM's disk or CD-ROM drive.</summary>
public sealed record KvmVmDisk
{
    /// <summary>The VM the drive belongs to (null when read from a bare definition).</summary>
    public string? VMName { get; init; }
    public Guid? VMUuid { get; init; }
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
    /// <summary>The virtual size of the disk image in bytes, when known (from its storage volume or image header).</summary>
    public ulong? CapacityBytes { get; init; }
    /// <summary>The bytes the image takes on the host, when it is a storage volume.</summary>
    public ulong? AllocationBytes { get; init; }
    /// <summary>Running VM, configuration, or both (null when not read by the device cmdlets).</summary>
    public KvmDeviceScope? Scope { get; init; }
    public KvmConnection? Connection { get; init; }

    public override string ToString() => $"{Target}: {Path ?? Volume ?? "(empty)"}";
}

/// <summary>A VM's network adapter.</summary>
public sealed record KvmVmNetworkAdapter
{
    /// <summary>The VM the adapter belongs to (null when read from a bare definition).</summary>
    public string? VMName { get; init; }
    public Guid? VMUuid { get; init; }
    public string? MacAddress { get; init; }
    /// <summary>network, bridge, direct, user ...</summary>
    public string Type { get; init; } = "network";
    /// <summary>The network or bridge name the adapter is attached to.</summary>
    public string? Source { get; init; }
    public string? Model { get; init; }
    /// <summary>The host-side device (vnetN) while the VM runs.</summary>
    public string? Target { get; init; }
    /// <summary>Up: the virtual cable is plugged in; Down: unplugged (Set-KvmVmNetworkAdapter -Connected).</summary>
    public KvmLinkState LinkState { get; init; }
    /// <summary>The guest's IP addresses on this adapter (Get-KvmVmNetworkAdapter on a running VM; empty otherwise).</summary>
    public string[] IPAddresses { get; init; } = [];
    /// <summary>Where the addresses came from: Agent (guest agent), Lease (the network's DHCP), Arp (host ARP table); null when none.</summary>
    public string? AddressSource { get; init; }
    /// <summary>Running VM, configuration, or both (null when not read by the device cmdlets).</summary>
    public KvmDeviceScope? Scope { get; init; }
    public KvmConnection? Connection { get; init; }

    public override string ToString() => $"{MacAddress} ({Type} {Source})";
}
