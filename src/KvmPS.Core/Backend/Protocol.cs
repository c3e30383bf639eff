namespace KvmPS.Core.Backend;

/// <summary>A domain as the remote protocol names it (remote_nonnull_domain): name, UUID, id (-1 when inactive).</summary>
public readonly record struct DomainRef(string Name, Guid Uuid, int Id);

/// <summary>virDomainInfo: state, memory in KiB, vCPUs, CPU time in ns.</summary>
public readonly record struct DomainInfo(int State, ulong MaxMemoryKiB, ulong MemoryKiB, int VirtualCpuCount, ulong CpuTimeNs);

/// <summary>virNodeInfo.</summary>
public readonly record struct NodeInfo(string Model, ulong MemoryKiB, int Cpus, int Mhz, int Nodes, int Sockets, int Cores, int Threads);

/// <summary>virTypedParameterType.</summary>
public enum TypedParameterType
{
    Int = 1,
    UInt = 2,
    LLong = 3,
    ULLong = 4,
    Double = 5,
    Boolean = 6,
    String = 7,
}

/// <summary>
/// One typed parameter: a name, its libvirt type and a value (int, uint, long, ulong, double, bool or string).
/// Numbers are kept unboxed (a bulk listing reads thousands of them); <see cref="Value"/> boxes on demand.
/// </summary>
public readonly struct TypedParameter : IEquatable<TypedParameter>
{
    private readonly ulong _bits;
    private readonly string? _text;

    public TypedParameter(string name, TypedParameterType type, object value)
    {
        Name = name;
        Type = type;
        (_bits, _text) = value switch
        {
            int i => ((ulong)(long)i, null),
            uint u => (u, null),
            long l => ((ulong)l, null),
            ulong ul => (ul, null),
            double d => ((ulong)BitConverter.DoubleToInt64Bits(d), null),
            bool b => (b ? 1UL : 0UL, null),
            string str => (0UL, str),
            _ => (0UL, value?.ToString()),
        };
    }

    private TypedParameter(string name, TypedParameterType type, ulong bits)
    {
        Name = name;
        Type = type;
        _bits = bits;
        _text = null;
    }

    /// <summary>A numeric (or boolean) parameter from libvirt's raw 64-bit value, without boxing.</summary>
    public static TypedParameter FromBits(string name, TypedParameterType type, ulong bits) => new(name, type, bits);

    public string Name { get; }

    public TypedParameterType Type { get; }

    /// <summary>The value as its .NET type (int, uint, long, ulong, double, bool or string).</summary>
    public object Value => Type switch
    {
        TypedParameterType.Int => (int)(long)_bits,
        TypedParameterType.UInt => (uint)_bits,
        TypedParameterType.LLong => (long)_bits,
        TypedParameterType.ULLong => _bits,
        TypedParameterType.Double => BitConverter.Int64BitsToDouble((long)_bits),
        TypedParameterType.Boolean => _bits != 0,
        _ => _text ?? string.Empty,
    };

    public ulong AsUInt64() => Type switch
    {
        TypedParameterType.Int or TypedParameterType.LLong => (ulong)Math.Max(0, (long)_bits),
        TypedParameterType.UInt or TypedParameterType.ULLong or TypedParameterType.Boolean => Type == TypedParameterType.UInt ? (uint)_bits : _bits,
        TypedParameterType.Double => (ulong)Math.Max(0, BitConverter.Int64BitsToDouble((long)_bits)),
        _ => ulong.TryParse(_text, out ulong v) ? v : 0,
    };

    public void Deconstruct(out string name, out TypedParameterType type, out object value)
    {
        name = Name;
        type = Type;
        value = Value;
    }

    public bool Equals(TypedParameter other) => Name == other.Name && Type == other.Type && _bits == other._bits && _text == other._text;

    public override bool Equals(object? obj) => obj is TypedParameter other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Name, Type, _bits, _text);

    public static bool operator ==(TypedParameter left, TypedParameter right) => left.Equals(right);

    public static bool operator !=(TypedParameter left, TypedParameter right) => !left.Equals(right);

    public override string ToString() => $"TypedParameter {{ Name = {Name}, Type = {Type}, Value = {Value} }}";
}

/// <summary>One record of virConnectGetAllDomainStats: the domain and its statistics.</summary>
public sealed class DomainStatsRecord
{
    private readonly TypedParameter[] _params;

    public DomainStatsRecord(DomainRef domain, IReadOnlyList<TypedParameter> parameters)
    {
        Domain = domain;
        _params = parameters as TypedParameter[] ?? [.. parameters];
    }

    public DomainRef Domain { get; }

    public IReadOnlyList<TypedParameter> Parameters => _params;

    /// <summary>The first parameter named <paramref name="name"/> (a linear scan: records are small and read once).</summary>
    public bool TryGet(string name, out TypedParameter value)
    {
        foreach (TypedParameter p in _params)
        {
            if (string.Equals(p.Name, name, StringComparison.Ordinal))
            {
                value = p;
                return true;
            }
        }

        value = default;
        return false;
    }

    public ulong? GetUInt64(string name) => TryGet(name, out TypedParameter p) ? p.AsUInt64() : null;
}

/// <summary>virConnectListAllDomainsFlags (also the filter flags of virConnectGetAllDomainStats).</summary>
[Flags]
public enum ListDomainsFlags : uint
{
    None = 0,
    Active = 1,
    Inactive = 2,
    Persistent = 4,
    Transient = 8,
    Running = 16,
    Paused = 32,
    ShutOff = 64,
    Other = 128,
    ManagedSave = 256,
    NoManagedSave = 512,
    Autostart = 1024,
    NoAutostart = 2048,
    HasSnapshot = 4096,
    NoSnapshot = 8192,
    HasCheckpoint = 16384,
    NoCheckpoint = 32768,

    /// <summary>
    /// virConnectGetAllDomainStats only (VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT, libvirt 4.5): a VM busy with a
    /// job reports what it can at once instead of holding up the whole call.
    /// </summary>
    StatsNoWait = 1u << 29,
}

/// <summary>virDomainStatsTypes.</summary>
[Flags]
public enum DomainStatsTypes : uint
{
    None = 0,
    State = 1,
    CpuTotal = 2,
    Balloon = 4,
    Vcpu = 8,
    Interface = 16,
    Block = 32,
    Perf = 64,
    IoThread = 128,
    Memory = 256,
    Dirtyrate = 512,
}

/// <summary>virDomainXMLFlags.</summary>
[Flags]
public enum DomainXmlFlags : uint
{
    None = 0,
    Secure = 1,
    Inactive = 2,
    UpdateCpu = 4,
    Migratable = 8,
}

/// <summary>virDomainModificationImpact (+ VCPU/MEM_MAXIMUM = 4).</summary>
[Flags]
public enum DomainModificationFlags : uint
{
    Current = 0,
    Live = 1,
    Config = 2,
    Maximum = 4,
}

/// <summary>virDomainMetadataType.</summary>
public enum DomainMetadataType
{
    Description = 0,
    Title = 1,
    Element = 2,
}

/// <summary>virDomainEventType: what happened to a domain.</summary>
public enum DomainEventType
{
    Defined = 0,
    Undefined = 1,
    Started = 2,
    Suspended = 3,
    Resumed = 4,
    Stopped = 5,
    Shutdown = 6,
    PMSuspended = 7,
    Crashed = 8,
}

/// <summary>One domain lifecycle event.</summary>
public readonly record struct DomainLifecycleEvent(DomainRef Domain, DomainEventType Event, int Detail);

/// <summary>A storage pool (virStoragePoolGetInfo + name/uuid).</summary>
public sealed record StoragePoolInfo(string Name, Guid Uuid, int State, ulong CapacityBytes, ulong AllocationBytes, ulong AvailableBytes)
{
    public bool IsActive => State == 2;
}

/// <summary>A storage volume as the protocol names it (pool, name, key) with its path and sizes.</summary>
public sealed record StorageVolumeInfo(string Pool, string Name, string Key, string Path, int Type, ulong CapacityBytes, ulong AllocationBytes);

/// <summary>A snapshot as listed: its name, its domainsnapshot XML and whether it is current.</summary>
public sealed record SnapshotData(string Name, string Xml, bool IsCurrent);

/// <summary>virDomainSnapshotCreateFlags.</summary>
[Flags]
public enum SnapshotCreateFlags : uint
{
    None = 0,
    Redefine = 1,
    Current = 2,
    NoMetadata = 4,
    Halt = 8,
    DiskOnly = 16,
    ReuseExt = 32,
    Quiesce = 64,
    Atomic = 128,
    Live = 256,
    Validate = 512,
}

/// <summary>virDomainSnapshotRevertFlags.</summary>
[Flags]
public enum SnapshotRevertFlags : uint
{
    None = 0,
    Running = 1,
    Paused = 2,
    Force = 4,
    ResetNvram = 8,
}

/// <summary>virDomainSnapshotDeleteFlags.</summary>
[Flags]
public enum SnapshotDeleteFlags : uint
{
    None = 0,
    Children = 1,
    MetadataOnly = 2,
    ChildrenOnly = 4,
}

/// <summary>A storage pool as listed: its info, flags, volume count and XML.</summary>
public sealed record StoragePoolData(StoragePoolInfo Info, bool Autostart, bool Persistent, int VolumeCount, string Xml);

/// <summary>A virtual network as listed.</summary>
public sealed record NetworkData(string Name, Guid Uuid, bool Active, bool Persistent, bool Autostart, string Xml);

/// <summary>One DHCP lease of a network (virNetworkDHCPLease).</summary>
public sealed record NetworkLease(string Interface, DateTime? Expiry, int Type, string? MacAddress, string? IPAddress, int Prefix, string? HostName, string? ClientId);

/// <summary>One guest interface with its addresses (virDomainInterface).</summary>
public sealed record GuestInterface(string Name, string? MacAddress, IReadOnlyList<(int Type, string Address, int Prefix)> Addresses);

/// <summary>virDomainUndefineFlagsValues.</summary>
[Flags]
public enum DomainUndefineFlags : uint
{
    None = 0,
    ManagedSave = 1,
    SnapshotsMetadata = 2,
    Nvram = 4,
    KeepNvram = 8,
    CheckpointsMetadata = 16,
    Tpm = 32,
    KeepTpm = 64,
}

/// <summary>virDomainMigrateFlags.</summary>
[Flags]
public enum MigrateFlags : uint
{
    None = 0,
    Live = 1 << 0,
    PeerToPeer = 1 << 1,
    Tunnelled = 1 << 2,
    PersistDestination = 1 << 3,
    UndefineSource = 1 << 4,
    Paused = 1 << 5,
    NonSharedDisk = 1 << 6,
    NonSharedIncremental = 1 << 7,
    ChangeProtection = 1 << 8,
    Unsafe = 1 << 9,
    Offline = 1 << 10,
    Compressed = 1 << 11,
    AbortOnError = 1 << 12,
    AutoConverge = 1 << 13,
    RdmaPinAll = 1 << 14,
    PostCopy = 1 << 15,
    Tls = 1 << 16,
    Parallel = 1 << 17,
    NonSharedSynchronousWrites = 1 << 18,
    PostCopyResume = 1 << 19,
    ZeroCopy = 1 << 20,
}

/// <summary>The names of libvirt's migration parameters (VIR_MIGRATE_PARAM_*) and their types.</summary>
public static class MigrateParameter
{
    /// <summary>VIR_MIGRATE_PARAM_URI (string): the hypervisor's migration URI, e.g. tcp://host.</summary>
    public const string Uri = "migrate_uri";

    /// <summary>VIR_MIGRATE_PARAM_DEST_NAME (string).</summary>
    public const string DestinationName = "destination_name";

    /// <summary>VIR_MIGRATE_PARAM_DEST_XML (string).</summary>
    public const string DestinationXml = "destination_xml";

    /// <summary>VIR_MIGRATE_PARAM_PERSIST_XML (string).</summary>
    public const string PersistentXml = "persistent_xml";

    /// <summary>VIR_MIGRATE_PARAM_BANDWIDTH (ullong, MiB/s).</summary>
    public const string Bandwidth = "bandwidth";

    /// <summary>VIR_MIGRATE_PARAM_LISTEN_ADDRESS (string): where the destination QEMU listens.</summary>
    public const string ListenAddress = "listen_address";

    /// <summary>VIR_MIGRATE_PARAM_MIGRATE_DISKS (string, repeated): the disks (targets) to copy.</summary>
    public const string MigrateDisks = "migrate_disks";

    /// <summary>VIR_MIGRATE_PARAM_DISKS_URI (string): where the destination's NBD server listens.</summary>
    public const string DisksUri = "disks_uri";

    /// <summary>VIR_MIGRATE_PARAM_COMPRESSION (string, repeated): xbzrle, mt, zlib, zstd.</summary>
    public const string Compression = "compression";

    /// <summary>VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL (int, %).</summary>
    public const string AutoConvergeInitial = "auto_converge.initial";
}

/// <summary>virCPUCompareResult.</summary>
public enum CpuCompareResult
{
    Error = -1,
    Incompatible = 0,
    Identical = 1,
    Superset = 2,
}

/// <summary>virDomainBlockCopyFlags.</summary>
[Flags]
public enum BlockCopyFlags : uint
{
    None = 0,
    Shallow = 1 << 0,
    ReuseExternal = 1 << 1,
    TransientJob = 1 << 2,
    SynchronousWrites = 1 << 3,
}

/// <summary>virDomainBlockJobAbortFlags.</summary>
[Flags]
public enum BlockJobAbortFlags : uint
{
    None = 0,
    Async = 1 << 0,
    Pivot = 1 << 1,
}

/// <summary>virDomainBlockJobInfo: the job type, its bandwidth (MiB/s) and progress (cur of end; a copy is ready to pivot when they meet).</summary>
public readonly record struct BlockJobInfo(int Type, ulong Bandwidth, ulong Current, ulong End);
