namespace KvmPS.Core.Backend;

/// <summary>
/// A way to reach libvirt. Shaped like libvirt's remote protocol so a pure-managed RPC implementation can
/// sit beside the native one: objects are identified by name + UUID (+ id), documents travel as XML
/// strings, statistics as typed-parameter lists, options as libvirt's flag values.
/// </summary>
public interface ILibvirtBackend
{
    /// <summary>Short name shown in <c>KvmConnection.Backend</c> (Native, Managed).</summary>
    string Name { get; }

    /// <summary>True when this backend can be used in this process; otherwise why not.</summary>
    bool IsAvailable(out string? reason);

    /// <summary>Opens a connection (REMOTE_PROC_CONNECT_OPEN). Throws <see cref="LibvirtException"/>.</summary>
    ILibvirtConnection Open(string? uri, LibvirtOpenOptions options);
}

/// <summary>Options for opening a connection.</summary>
public sealed class LibvirtOpenOptions
{
    public bool ReadOnly { get; init; }

    /// <summary>Answers libvirt's credential prompts (user name, passphrase). Null: no interactive auth.</summary>
    public Func<LibvirtCredentialRequest, string?>? Credentials { get; init; }

    /// <summary>Keepalive ping interval in seconds (remote drivers only); 0 disables keepalive.</summary>
    public int KeepAliveIntervalSeconds { get; init; } = 5;

    /// <summary>Unanswered keepalive pings before the connection is declared dead.</summary>
    public uint KeepAliveCount { get; init; } = 3;

    /// <summary>SSH transports: trust (and remember in known_hosts) a host key seen for the first time.</summary>
    public bool AcceptUnknownHostKey { get; init; }
}

/// <summary>libvirt's credential types (virConnectCredentialType).</summary>
public enum LibvirtCredentialType
{
    UserName = 1,
    AuthName = 2,
    Language = 3,
    CNonce = 4,
    Passphrase = 5,
    EchoPrompt = 6,
    NoEchoPrompt = 7,
    Realm = 8,
    External = 9,
}

/// <summary>One credential libvirt asks for while opening a connection.</summary>
public sealed record LibvirtCredentialRequest(LibvirtCredentialType Type, string? Prompt, string? Challenge, string? DefaultResult);

/// <summary>Why a connection closed (virConnectCloseReason).</summary>
public enum ConnectionCloseReason
{
    Error = 0,
    Eof = 1,
    KeepAlive = 2,
    Client = 3,
}

/// <summary>
/// One open connection. Safe to use from several threads at once. Every method throws
/// <see cref="LibvirtException"/> carrying libvirt's error code and domain.
/// </summary>
public interface ILibvirtConnection : IDisposable
{
    /// <summary>Raised (on the event-loop thread) when the connection closes for any reason but Dispose.</summary>
    event EventHandler<ConnectionCloseReason>? Closed;

    string BackendName { get; }

    // --- connection / node (REMOTE_PROC_CONNECT_*, NODE_*) ---
    string GetUri();
    string GetHostname();
    string GetHypervisorType();
    ulong GetHypervisorVersion();
    ulong GetLibVersion();
    bool IsAlive();
    bool IsSecure();
    bool IsEncrypted();
    bool IsReadOnly { get; }
    string GetCapabilities();
    string GetDomainCapabilities(string? emulatorBinary, string? arch, string? machine, string? virtType, uint flags);
    int GetMaxVcpus(string? type);
    NodeInfo GetNodeInfo();
    ulong GetFreeMemory();

    // --- domains ---
    IReadOnlyList<DomainRef> ListAllDomains(ListDomainsFlags flags);
    IReadOnlyList<DomainStatsRecord> GetAllDomainStats(DomainStatsTypes stats, ListDomainsFlags flags);
    /// <summary>virDomainListGetStats: the statistics of these domains only (flags: StatsNoWait, no list filters).</summary>
    IReadOnlyList<DomainStatsRecord> GetDomainListStats(IReadOnlyList<DomainRef> domains, DomainStatsTypes stats, ListDomainsFlags flags);
    DomainRef LookupDomainByName(string name);
    DomainRef LookupDomainByUuid(Guid uuid);
    DomainRef LookupDomainById(int id);
    DomainInfo GetDomainInfo(DomainRef domain);
    (int State, int Reason) GetDomainState(DomainRef domain);
    string GetDomainXml(DomainRef domain, DomainXmlFlags flags);
    bool GetDomainAutostart(DomainRef domain);
    bool IsDomainPersistent(DomainRef domain);
    bool HasManagedSaveImage(DomainRef domain);
    DomainRef DefineDomain(string xml, uint flags);
    void UndefineDomain(DomainRef domain, DomainUndefineFlags flags);
    void CreateDomain(DomainRef domain, uint flags);
    void DestroyDomain(DomainRef domain, uint flags);
    void ShutdownDomain(DomainRef domain, uint flags);
    void SuspendDomain(DomainRef domain);
    void ResumeDomain(DomainRef domain);
    void RebootDomain(DomainRef domain, uint flags);
    void ResetDomain(DomainRef domain);
    void ManagedSaveDomain(DomainRef domain, uint flags);
    void ManagedSaveRemove(DomainRef domain);
    void SetDomainAutostart(DomainRef domain, bool autostart);
    void SetDomainVcpus(DomainRef domain, int count, DomainModificationFlags flags);
    int GetDomainVcpus(DomainRef domain, DomainModificationFlags flags);
    /// <summary>Sets memory in KiB (with <see cref="DomainModificationFlags.Maximum"/>: the ceiling).</summary>
    void SetDomainMemory(DomainRef domain, ulong kib, DomainModificationFlags flags);
    /// <summary>Sets the title (type 1) or description (type 0) metadata; null removes it.</summary>
    void SetDomainMetadata(DomainRef domain, DomainMetadataType type, string? value, DomainModificationFlags flags);
    void RenameDomain(DomainRef domain, string newName);

    /// <summary>Subscribes to lifecycle events of one domain (or all with null); returns the subscription id.</summary>
    int RegisterDomainLifecycleEvents(DomainRef? domain, Action<DomainLifecycleEvent> handler);
    void DeregisterDomainEvents(int subscription);

    // --- snapshots (REMOTE_PROC_DOMAIN_SNAPSHOT_*) ---
    /// <summary>Every snapshot of the domain: name, XML, whether it is the current one.</summary>
    IReadOnlyList<SnapshotData> ListSnapshots(DomainRef domain);
    /// <summary>Creates a snapshot from domainsnapshot XML; returns its name.</summary>
    string CreateSnapshot(DomainRef domain, string xml, SnapshotCreateFlags flags);
    void RevertToSnapshot(DomainRef domain, string name, SnapshotRevertFlags flags);
    void DeleteSnapshot(DomainRef domain, string name, SnapshotDeleteFlags flags);

    // --- guest agent ---
    /// <summary>Sends a raw QEMU guest agent command (JSON) and returns the agent's JSON answer (libvirt-qemu).</summary>
    string QemuAgentCommand(DomainRef domain, string json, int timeoutSeconds);
    /// <summary>virDomainGetGuestInfo: typed parameters for the requested info types (bit mask).</summary>
    IReadOnlyList<TypedParameter> GetGuestInfo(DomainRef domain, uint types);

    // --- backup jobs and checkpoints ---
    /// <summary>Starts a backup job (push mode writes the target files); optionally creates a checkpoint with it.</summary>
    void BeginBackup(DomainRef domain, string backupXml, string? checkpointXml, uint flags);
    /// <summary>The domain's current job: type (virDomainJobType) and statistics. <paramref name="completed"/>: the last finished job.</summary>
    (int Type, IReadOnlyList<TypedParameter> Stats) GetJobStats(DomainRef domain, bool completed);
    void AbortJob(DomainRef domain);

    // --- migration (REMOTE_PROC_DOMAIN_MIGRATE_*3_PARAMS) ---
    /// <summary>
    /// virDomainMigrate3: migrates the domain to <paramref name="destination"/>, the client driving both daemons
    /// (begin, prepare, perform, finish, confirm). Returns the domain on the destination. Both connections must
    /// be of the same backend. Not for <see cref="MigrateFlags.PeerToPeer"/> (use <see cref="MigrateDomainToUri"/>).
    /// </summary>
    DomainRef MigrateDomain(DomainRef domain, ILibvirtConnection destination, IReadOnlyList<TypedParameter> parameters, MigrateFlags flags);
    /// <summary>virDomainMigrateToURI3 with <see cref="MigrateFlags.PeerToPeer"/>: the source daemon connects to <paramref name="destinationUri"/> itself.</summary>
    void MigrateDomainToUri(DomainRef domain, string destinationUri, IReadOnlyList<TypedParameter> parameters, MigrateFlags flags);
    /// <summary>virDomainMigrateSetMaxDowntime (milliseconds).</summary>
    void SetMigrationMaxDowntime(DomainRef domain, ulong milliseconds);
    /// <summary>virDomainMigrateStartPostCopy: switches a running migration (started with PostCopy) to post-copy.</summary>
    void StartMigrationPostCopy(DomainRef domain);
    /// <summary>virDomainBlockCopy: starts copying a disk of a running domain to the destination described by <paramref name="destinationXml"/> (a &lt;disk&gt;).</summary>
    void BlockCopy(DomainRef domain, string disk, string destinationXml, IReadOnlyList<TypedParameter> parameters, BlockCopyFlags flags);
    /// <summary>virDomainGetBlockJobInfo: the disk's block job, or null when it has none.</summary>
    BlockJobInfo? GetBlockJobInfo(DomainRef domain, string disk);
    /// <summary>virDomainBlockJobAbort: ends the disk's block job (with Pivot: a ready copy becomes the disk).</summary>
    void AbortBlockJob(DomainRef domain, string disk, BlockJobAbortFlags flags);
    /// <summary>virConnectCompareHypervisorCPU: whether this host's hypervisor can run a guest CPU described by <paramref name="cpuXml"/>.</summary>
    CpuCompareResult CompareHypervisorCpu(string? emulator, string? arch, string? machine, string? virtType, string cpuXml, uint flags);
    IReadOnlyList<string> ListCheckpointNames(DomainRef domain);
    /// <summary>Freezes the guest's file systems through its agent; returns how many were frozen.</summary>
    int FreezeFileSystems(DomainRef domain);
    int ThawFileSystems(DomainRef domain);
    void DeleteCheckpoint(DomainRef domain, string name, uint flags);

    // --- storage (REMOTE_PROC_STORAGE_*) ---
    IReadOnlyList<string> ListStoragePoolNames();
    StoragePoolInfo GetStoragePool(string name);
    string GetStoragePoolXml(string name, uint flags);
    void DefineAndStartStoragePool(string xml, bool build, bool autostart);
    void RefreshStoragePool(string name);
    StorageVolumeInfo CreateStorageVolume(string pool, string xml, uint flags);
    /// <summary>The volume at <paramref name="path"/>; null when no pool holds it.</summary>
    StorageVolumeInfo? LookupStorageVolumeByPath(string path);
    StorageVolumeInfo? LookupStorageVolume(string pool, string name);
    string GetStorageVolumeXml(StorageVolumeInfo volume);
    void DeleteStorageVolume(StorageVolumeInfo volume);

    IReadOnlyList<StoragePoolData> ListStoragePools();
    void DefineStoragePool(string xml);
    void BuildStoragePool(string name, uint flags);
    void StartStoragePool(string name);
    void StopStoragePool(string name);
    /// <summary>Deletes the pool's underlying storage (virStoragePoolDelete); the pool must be stopped.</summary>
    void DeleteStoragePoolStorage(string name, uint flags);
    void UndefineStoragePool(string name);
    void SetStoragePoolAutostart(string name, bool autostart);
    IReadOnlyList<StorageVolumeInfo> ListStorageVolumes(string pool);
    StorageVolumeInfo CloneStorageVolume(string pool, string xml, StorageVolumeInfo source, uint flags);
    void ResizeStorageVolume(StorageVolumeInfo volume, ulong capacityBytes, uint flags);
    /// <summary>Streams <paramref name="length"/> bytes from <paramref name="source"/> into the volume (REMOTE_PROC_STORAGE_VOL_UPLOAD).</summary>
    void UploadStorageVolume(StorageVolumeInfo volume, Stream source, ulong length, Action<ulong>? progress, CancellationToken cancel);
    /// <summary>Streams the volume's content into <paramref name="destination"/>; returns the bytes written.</summary>
    ulong DownloadStorageVolume(StorageVolumeInfo volume, Stream destination, Action<ulong>? progress, CancellationToken cancel);

    // --- networks ---
    bool NetworkExists(string name);
    IReadOnlyList<NetworkData> ListNetworks();
    void DefineNetwork(string xml);
    void StartNetwork(string name);
    void StopNetwork(string name);
    void UndefineNetwork(string name);
    void SetNetworkAutostart(string name, bool autostart);
    IReadOnlyList<NetworkLease> GetNetworkLeases(string name);

    // --- devices ---
    void AttachDevice(DomainRef domain, string xml, DomainModificationFlags flags);
    void DetachDevice(DomainRef domain, string xml, DomainModificationFlags flags);
    void UpdateDevice(DomainRef domain, string xml, DomainModificationFlags flags);
    void ResizeBlockDevice(DomainRef domain, string disk, ulong bytes);
    /// <summary>Addresses of the guest's interfaces from a source: 0 DHCP lease, 1 guest agent, 2 ARP table.</summary>
    IReadOnlyList<GuestInterface> GetInterfaceAddresses(DomainRef domain, int source);

    // --- node usage statistics (REMOTE_PROC_NODE_GET_CPU_STATS / NODE_GET_MEMORY_STATS) ---
    /// <summary>virNodeGetCPUStats: cumulative CPU times in ns of one CPU, or of all with -1 (Linux: kernel, user, idle, iowait), as ULLong parameters.</summary>
    IReadOnlyList<TypedParameter> GetNodeCpuStats(int cpu);
    /// <summary>virNodeGetMemoryStats: memory figures in KiB of one NUMA cell, or of all with -1 (Linux: total, free, buffers, cached), as ULLong parameters.</summary>
    IReadOnlyList<TypedParameter> GetNodeMemoryStats(int cell);

    // --- bulk reads (several calls in flight where the backend can pipeline them) ---
    /// <summary>The XML of each domain, in order; null for one that no longer exists. The managed backend pipelines the calls.</summary>
    IReadOnlyList<string?> GetDomainXmls(IReadOnlyList<DomainRef> domains, DomainXmlFlags flags);
}
