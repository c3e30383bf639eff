using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Native;

/// <summary>A libvirt connection opened through the native library. Thread-safe, like virConnectPtr.</summary>
internal sealed unsafe partial class NativeConnection : ILibvirtConnection
{
    private const uint ConnectReadOnly = 1;
    private readonly SafeConnectHandle _conn;
    private GCHandle _self;
    private int _disposed;

    private NativeConnection(SafeConnectHandle conn, bool readOnly)
    {
        _conn = conn;
        IsReadOnly = readOnly;
    }

    public event EventHandler<ConnectionCloseReason>? Closed;

    public string BackendName => "Native";

    public bool IsReadOnly { get; }

    internal static NativeConnection Open(string? uri, LibvirtOpenOptions options)
    {
        int* credTypes = stackalloc int[]
        {
            (int)LibvirtCredentialType.AuthName, (int)LibvirtCredentialType.UserName, (int)LibvirtCredentialType.Passphrase,
            (int)LibvirtCredentialType.NoEchoPrompt, (int)LibvirtCredentialType.EchoPrompt, (int)LibvirtCredentialType.Realm,
        };
        GCHandle creds = GCHandle.Alloc(options);
        IntPtr raw;
        try
        {
            var auth = new VirConnectAuth { CredType = credTypes, NCredType = 6, Cb = &AuthCallback, CbData = GCHandle.ToIntPtr(creds) };
            raw = NativeMethods.virConnectOpenAuth(string.IsNullOrEmpty(uri) ? null : uri, ref auth, options.ReadOnly ? ConnectReadOnly : 0);
            if (raw == IntPtr.Zero)
            {
                throw NativeCall.LastError("virConnectOpenAuth");
            }
        }
        finally
        {
            creds.Free();
        }

        var c = new NativeConnection(new SafeConnectHandle(raw), options.ReadOnly);
        if (options.KeepAliveIntervalSeconds > 0)
        {
            // 1 (or -1 with NO_SUPPORT) for drivers that are not remote: nothing to keep alive.
            _ = NativeMethods.virConnectSetKeepAlive(c._conn, options.KeepAliveIntervalSeconds, options.KeepAliveCount);
        }

        c._self = GCHandle.Alloc(c, GCHandleType.Weak);
        if (NativeMethods.virConnectRegisterCloseCallback(c._conn, &CloseCallback, GCHandle.ToIntPtr(c._self), &FreeNothing) < 0)
        {
            c._self.Free();
        }

        return c;
    }

    public string GetUri() => NativeCall.CheckString(NativeMethods.virConnectGetURI(_conn), "virConnectGetURI");

    public string GetHostname() => NativeCall.CheckString(NativeMethods.virConnectGetHostname(_conn), "virConnectGetHostname");

    public string GetHypervisorType()
        => Marshal.PtrToStringUTF8(NativeCall.Check(NativeMethods.virConnectGetType(_conn), "virConnectGetType"))!;

    public ulong GetHypervisorVersion()
    {
        NativeCall.Check(NativeMethods.virConnectGetVersion(_conn, out CULong v), "virConnectGetVersion");
        return (ulong)v.Value;
    }

    public ulong GetLibVersion()
    {
        NativeCall.Check(NativeMethods.virConnectGetLibVersion(_conn, out CULong v), "virConnectGetLibVersion");
        return (ulong)v.Value;
    }

    public bool IsAlive() => _disposed == 0 && NativeMethods.virConnectIsAlive(_conn) == 1;

    public bool IsSecure() => NativeCall.Check(NativeMethods.virConnectIsSecure(_conn), "virConnectIsSecure") == 1;

    public bool IsEncrypted() => NativeCall.Check(NativeMethods.virConnectIsEncrypted(_conn), "virConnectIsEncrypted") == 1;

    public string GetCapabilities() => NativeCall.CheckString(NativeMethods.virConnectGetCapabilities(_conn), "virConnectGetCapabilities");

    public string GetDomainCapabilities(string? emulatorBinary, string? arch, string? machine, string? virtType, uint flags)
        => LibvirtLibrary.HasExport("virConnectGetDomainCapabilities") is false
            ? throw new LibvirtException(LibvirtErrorCode.NoSupport, LibvirtErrorDomain.None, "Domain capabilities need libvirt ≥ 1.2.7.")
            : NativeCall.CheckString(NativeMethods.virConnectGetDomainCapabilities(_conn, emulatorBinary, arch, machine, virtType, flags), "virConnectGetDomainCapabilities");

    public int GetMaxVcpus(string? type) => NativeCall.Check(NativeMethods.virConnectGetMaxVcpus(_conn, type), "virConnectGetMaxVcpus");

    public NodeInfo GetNodeInfo()
    {
        NativeCall.Check(NativeMethods.virNodeGetInfo(_conn, out VirNodeInfo n), "virNodeGetInfo");
        string model = Marshal.PtrToStringUTF8((IntPtr)n.Model, Math.Max(0, new ReadOnlySpan<byte>(n.Model, 32).IndexOf((byte)0) is var z and >= 0 ? z : 32));
        return new NodeInfo(model, (ulong)n.Memory.Value, (int)n.Cpus, (int)n.Mhz, (int)n.Nodes, (int)n.Sockets, (int)n.Cores, (int)n.Threads);
    }

    public ulong GetFreeMemory()
    {
        NativeMethods.virResetLastError();
        ulong free = NativeMethods.virNodeGetFreeMemory(_conn);
        if (free == 0 && NativeCall.TryLastError("virNodeGetFreeMemory") is { } e)
        {
            throw e;
        }

        return free;
    }

    // ---------------- domains ----------------

    public IReadOnlyList<DomainRef> ListAllDomains(ListDomainsFlags flags)
    {
        LibvirtLibrary.RequireExport("virConnectListAllDomains", "0.9.13");
        int n = NativeCall.Check(NativeMethods.virConnectListAllDomains(_conn, out IntPtr array, (uint)flags), "virConnectListAllDomains");
        var result = new DomainRef[n];
        IntPtr* doms = (IntPtr*)array;
        try
        {
            for (int i = 0; i < n; i++)
            {
                result[i] = ToRef(doms[i]);
            }
        }
        finally
        {
            for (int i = 0; i < n; i++)
            {
                NativeMethods.virDomainFree(doms[i]);
            }

            LibvirtLibrary.Free(array);
        }

        return result;
    }

    public IReadOnlyList<DomainStatsRecord> GetAllDomainStats(DomainStatsTypes stats, ListDomainsFlags flags)
    {
        LibvirtLibrary.RequireExport("virConnectGetAllDomainStats", "1.2.8");
        int n = NativeCall.Check(NativeMethods.virConnectGetAllDomainStats(_conn, (uint)stats, out IntPtr records, (uint)flags), "virConnectGetAllDomainStats");
        return ReadStatsRecords(n, records, stats);
    }

    public IReadOnlyList<DomainStatsRecord> GetDomainListStats(IReadOnlyList<DomainRef> domains, DomainStatsTypes stats, ListDomainsFlags flags)
    {
        if (domains.Count == 0)
        {
            return [];
        }

        LibvirtLibrary.RequireExport("virDomainListGetStats", "1.2.8");
        var handles = new List<SafeDomainHandle>(domains.Count);
        try
        {
            foreach (DomainRef d in domains)
            {
                handles.Add(Open(d.Uuid));
            }

            // A NULL-terminated array of the handles.
            IntPtr[] array = new IntPtr[handles.Count + 1];
            for (int i = 0; i < handles.Count; i++)
            {
                array[i] = handles[i].DangerousGetHandle();
            }

            fixed (IntPtr* doms = array)
            {
                int n = NativeCall.Check(NativeMethods.virDomainListGetStats(doms, (uint)stats, out IntPtr records, (uint)flags), "virDomainListGetStats");
                return ReadStatsRecords(n, records, stats);
            }
        }
        finally
        {
            foreach (SafeDomainHandle h in handles)
            {
                h.Dispose();
            }
        }
    }

    private DomainStatsRecord[] ReadStatsRecords(int n, IntPtr records, DomainStatsTypes stats)
    {
        var result = new DomainStatsRecord[n];
        try
        {
            VirDomainStatsRecord** recs = (VirDomainStatsRecord**)records;
            bool wantInfo = (stats & (DomainStatsTypes.Balloon | DomainStatsTypes.Vcpu)) != 0;
            for (int i = 0; i < n; i++)
            {
                VirDomainStatsRecord* r = recs[i];
                // Room for the four fields virDomainGetInfo fills in for drivers without these groups (the test driver).
                int n0 = r->NParams;
                TypedParameter[] p = ReadParams((VirTypedParameter*)r->Params, n0, wantInfo ? 4 : 0, out bool hasBalloon);
                if (wantInfo && !hasBalloon && NativeMethods.virDomainGetInfo(r->Dom, out VirDomainInfo info) == 0)
                {
                    // ...from the handle we already hold: no lookup, and no extra round trip for in-process drivers.
                    p[n0] = TypedParameter.FromBits("balloon.current", TypedParameterType.ULLong, (ulong)info.Memory.Value);
                    p[n0 + 1] = TypedParameter.FromBits("balloon.maximum", TypedParameterType.ULLong, (ulong)info.MaxMem.Value);
                    p[n0 + 2] = TypedParameter.FromBits("vcpu.current", TypedParameterType.UInt, info.NrVirtCpu);
                    p[n0 + 3] = TypedParameter.FromBits("cpu.time", TypedParameterType.ULLong, info.CpuTime);
                }
                else if (p.Length != n0)
                {
                    Array.Resize(ref p, n0);
                }

                result[i] = new DomainStatsRecord(ToRef(r->Dom), p);
            }
        }
        finally
        {
            NativeMethods.virDomainStatsRecordListFree(records);
        }

        return result;
    }

    public DomainRef LookupDomainByName(string name)
    {
        using SafeDomainHandle h = new(NativeCall.Check(NativeMethods.virDomainLookupByName(_conn, name), "virDomainLookupByName"));
        return ToRef(h.DangerousGetHandle());
    }

    public DomainRef LookupDomainByUuid(Guid uuid)
    {
        using SafeDomainHandle h = Open(uuid);
        return ToRef(h.DangerousGetHandle());
    }

    public DomainRef LookupDomainById(int id)
    {
        using SafeDomainHandle h = new(NativeCall.Check(NativeMethods.virDomainLookupByID(_conn, id), "virDomainLookupByID"));
        return ToRef(h.DangerousGetHandle());
    }

    /// <summary>Interned statistics field names: listing thousands of VMs must not allocate a name per field.</summary>
    private static class ParamNames
    {
        public const string BalloonMaximum = "balloon.maximum";
        private static readonly string[] s_known =
        [
            "state.state", "state.reason", "cpu.time", "cpu.user", "cpu.system", "balloon.current", BalloonMaximum,
            "balloon.rss", "balloon.last-update", "vcpu.current", "vcpu.maximum", "block.count", "net.count",
        ];
        private static readonly byte[][] s_bytes = s_known.Select(System.Text.Encoding.UTF8.GetBytes).ToArray();

        public static string Get(byte* field)
        {
            var span = new ReadOnlySpan<byte>(field, 80);
            int len = span.IndexOf((byte)0);
            span = span[..(len < 0 ? 80 : len)];
            for (int i = 0; i < s_bytes.Length; i++)
            {
                if (span.SequenceEqual(s_bytes[i]))
                {
                    return s_known[i];
                }
            }

            return System.Text.Encoding.UTF8.GetString(span);
        }
    }

    public DomainInfo GetDomainInfo(DomainRef domain)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainGetInfo(h, out VirDomainInfo i), "virDomainGetInfo");
        return new DomainInfo(i.State, (ulong)i.MaxMem.Value, (ulong)i.Memory.Value, i.NrVirtCpu, i.CpuTime);
    }

    public (int State, int Reason) GetDomainState(DomainRef domain)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainGetState(h, out int state, out int reason, 0), "virDomainGetState");
        return (state, reason);
    }

    public string GetDomainXml(DomainRef domain, DomainXmlFlags flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        return NativeCall.CheckString(NativeMethods.virDomainGetXMLDesc(h, (uint)flags), "virDomainGetXMLDesc");
    }

    public bool GetDomainAutostart(DomainRef domain)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainGetAutostart(h, out int a), "virDomainGetAutostart");
        return a != 0;
    }

    public bool IsDomainPersistent(DomainRef domain)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        return NativeCall.Check(NativeMethods.virDomainIsPersistent(h), "virDomainIsPersistent") == 1;
    }

    public bool HasManagedSaveImage(DomainRef domain)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        return NativeCall.Check(NativeMethods.virDomainHasManagedSaveImage(h, 0), "virDomainHasManagedSaveImage") == 1;
    }

    public DomainRef DefineDomain(string xml, uint flags)
    {
        IntPtr p = flags == 0 || !LibvirtLibrary.HasExport("virDomainDefineXMLFlags")
            ? NativeMethods.virDomainDefineXML(_conn, xml)
            : NativeMethods.virDomainDefineXMLFlags(_conn, xml, flags);
        using SafeDomainHandle h = new(NativeCall.Check(p, "virDomainDefineXML"));
        return ToRef(h.DangerousGetHandle());
    }

    public void UndefineDomain(DomainRef domain, DomainUndefineFlags flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainUndefineFlags(h, (uint)flags), "virDomainUndefineFlags");
    }

    public void CreateDomain(DomainRef domain, uint flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainCreateWithFlags(h, flags), "virDomainCreateWithFlags");
    }

    public void DestroyDomain(DomainRef domain, uint flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainDestroyFlags(h, flags), "virDomainDestroyFlags");
    }

    public void ShutdownDomain(DomainRef domain, uint flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainShutdownFlags(h, flags), "virDomainShutdownFlags");
    }

    public void SuspendDomain(DomainRef domain)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainSuspend(h), "virDomainSuspend");
    }

    public void ResumeDomain(DomainRef domain)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainResume(h), "virDomainResume");
    }

    public void RebootDomain(DomainRef domain, uint flags) => OnDomain(domain, h => NativeMethods.virDomainReboot(h, flags), "virDomainReboot");

    public void ResetDomain(DomainRef domain) => OnDomain(domain, h => NativeMethods.virDomainReset(h, 0), "virDomainReset");

    public void ManagedSaveDomain(DomainRef domain, uint flags) => OnDomain(domain, h => NativeMethods.virDomainManagedSave(h, flags), "virDomainManagedSave");

    public void ManagedSaveRemove(DomainRef domain) => OnDomain(domain, h => NativeMethods.virDomainManagedSaveRemove(h, 0), "virDomainManagedSaveRemove");

    public void SetDomainAutostart(DomainRef domain, bool autostart)
        => OnDomain(domain, h => NativeMethods.virDomainSetAutostart(h, autostart ? 1 : 0), "virDomainSetAutostart");

    public void SetDomainVcpus(DomainRef domain, int count, DomainModificationFlags flags)
        => OnDomain(domain, h => NativeMethods.virDomainSetVcpusFlags(h, (uint)count, (uint)flags), "virDomainSetVcpusFlags");

    public int GetDomainVcpus(DomainRef domain, DomainModificationFlags flags)
        => OnDomain<int>(domain, h => NativeMethods.virDomainGetVcpusFlags(h, (uint)flags), "virDomainGetVcpusFlags");

    public void SetDomainMemory(DomainRef domain, ulong kib, DomainModificationFlags flags)
        => OnDomain(domain, h => NativeMethods.virDomainSetMemoryFlags(h, new CULong((nuint)kib), (uint)flags), "virDomainSetMemoryFlags");

    public void SetDomainMetadata(DomainRef domain, DomainMetadataType type, string? value, DomainModificationFlags flags)
        => OnDomain(domain, h => NativeMethods.virDomainSetMetadata(h, (int)type, value, null, null, (uint)flags), "virDomainSetMetadata");

    public void RenameDomain(DomainRef domain, string newName)
    {
        LibvirtLibrary.RequireExport("virDomainRename", "1.2.19");
        OnDomain(domain, h => NativeMethods.virDomainRename(h, newName, 0), "virDomainRename");
    }

    public int RegisterDomainLifecycleEvents(DomainRef? domain, Action<DomainLifecycleEvent> handler)
    {
        GCHandle sink = GCHandle.Alloc(handler);
        SafeDomainHandle? h = domain is { } d ? Open(d.Uuid) : null;
        try
        {
            delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int, int, IntPtr, int> cb = &LifecycleCallback;
            int id = NativeMethods.virConnectDomainEventRegisterAny(_conn, h?.DangerousGetHandle() ?? IntPtr.Zero, 0, (IntPtr)cb, GCHandle.ToIntPtr(sink), &FreeGCHandle);
            if (id < 0)
            {
                sink.Free();
                throw NativeCall.LastError("virConnectDomainEventRegisterAny");
            }

            return id;
        }
        finally
        {
            h?.Dispose();
        }
    }

    public void DeregisterDomainEvents(int subscription)
    {
        if (_disposed == 0)
        {
            // The GCHandle is freed by libvirt's free callback once the event loop lets go of it.
            _ = NativeMethods.virConnectDomainEventDeregisterAny(_conn, subscription);
        }
    }

    // ---------------- snapshots ----------------

    public IReadOnlyList<SnapshotData> ListSnapshots(DomainRef domain)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        int n = NativeCall.Check(NativeMethods.virDomainListAllSnapshots(h, out IntPtr array, 0), "virDomainListAllSnapshots");
        var result = new SnapshotData[n];
        IntPtr* snaps = (IntPtr*)array;
        try
        {
            for (int i = 0; i < n; i++)
            {
                string name = Marshal.PtrToStringUTF8(NativeMethods.virDomainSnapshotGetName(snaps[i])) ?? string.Empty;
                string xml = NativeCall.CheckString(NativeMethods.virDomainSnapshotGetXMLDesc(snaps[i], 0), "virDomainSnapshotGetXMLDesc");
                bool current = NativeCall.Check(NativeMethods.virDomainSnapshotIsCurrent(snaps[i], 0), "virDomainSnapshotIsCurrent") == 1;
                result[i] = new SnapshotData(name, xml, current);
            }
        }
        finally
        {
            for (int i = 0; i < n; i++)
            {
                NativeMethods.virDomainSnapshotFree(snaps[i]);
            }

            LibvirtLibrary.Free(array);
        }

        return result;
    }

    public string CreateSnapshot(DomainRef domain, string xml, SnapshotCreateFlags flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        using SafeDomainSnapshotHandle s = new(NativeCall.Check(NativeMethods.virDomainSnapshotCreateXML(h, xml, (uint)flags), "virDomainSnapshotCreateXML"));
        return Marshal.PtrToStringUTF8(NativeMethods.virDomainSnapshotGetName(s.DangerousGetHandle())) ?? string.Empty;
    }

    public void RevertToSnapshot(DomainRef domain, string name, SnapshotRevertFlags flags)
    {
        using SafeDomainSnapshotHandle s = OpenSnapshot(domain, name);
        NativeCall.Check(NativeMethods.virDomainRevertToSnapshot(s, (uint)flags), "virDomainRevertToSnapshot");
    }

    public void DeleteSnapshot(DomainRef domain, string name, SnapshotDeleteFlags flags)
    {
        using SafeDomainSnapshotHandle s = OpenSnapshot(domain, name);
        NativeCall.Check(NativeMethods.virDomainSnapshotDelete(s, (uint)flags), "virDomainSnapshotDelete");
    }

    private SafeDomainSnapshotHandle OpenSnapshot(DomainRef domain, string name)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        return new(NativeCall.Check(NativeMethods.virDomainSnapshotLookupByName(h, name, 0), "virDomainSnapshotLookupByName"));
    }

    // ---------------- backup jobs and checkpoints ----------------

    public void BeginBackup(DomainRef domain, string backupXml, string? checkpointXml, uint flags)
    {
        LibvirtLibrary.RequireExport("virDomainBackupBegin", "6.0.0");
        OnDomain(domain, h => NativeMethods.virDomainBackupBegin(h, backupXml, checkpointXml, flags), "virDomainBackupBegin");
    }

    public (int Type, IReadOnlyList<TypedParameter> Stats) GetJobStats(DomainRef domain, bool completed)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainGetJobStats(h, out int type, out IntPtr pars, out int n, completed ? 1u : 0u), "virDomainGetJobStats");
        try
        {
            return (type, ReadParams((VirTypedParameter*)pars, n));
        }
        finally
        {
            NativeMethods.virTypedParamsFree(pars, n);
        }
    }

    public void AbortJob(DomainRef domain) => OnDomain(domain, h => NativeMethods.virDomainAbortJob(h), "virDomainAbortJob");

    public int FreezeFileSystems(DomainRef domain)
        => OnDomain<int>(domain, h => NativeMethods.virDomainFSFreeze(h, IntPtr.Zero, 0, 0), "virDomainFSFreeze");

    public int ThawFileSystems(DomainRef domain)
        => OnDomain<int>(domain, h => NativeMethods.virDomainFSThaw(h, IntPtr.Zero, 0, 0), "virDomainFSThaw");

    public IReadOnlyList<string> ListCheckpointNames(DomainRef domain)
    {
        LibvirtLibrary.RequireExport("virDomainListAllCheckpoints", "5.6.0");
        using SafeDomainHandle h = Open(domain.Uuid);
        int n = NativeCall.Check(NativeMethods.virDomainListAllCheckpoints(h, out IntPtr array, 0), "virDomainListAllCheckpoints");
        var names = new string[n];
        IntPtr* cps = (IntPtr*)array;
        for (int i = 0; i < n; i++)
        {
            names[i] = Marshal.PtrToStringUTF8(NativeMethods.virDomainCheckpointGetName(cps[i])) ?? string.Empty;
            NativeMethods.virDomainCheckpointFree(cps[i]);
        }

        LibvirtLibrary.Free(array);
        return names;
    }

    public void DeleteCheckpoint(DomainRef domain, string name, uint flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        using SafeDomainCheckpointHandle cp = new(NativeCall.Check(NativeMethods.virDomainCheckpointLookupByName(h, name, 0), "virDomainCheckpointLookupByName"));
        NativeCall.Check(NativeMethods.virDomainCheckpointDelete(cp, flags), "virDomainCheckpointDelete");
    }

    // ---------------- storage ----------------

    public IReadOnlyList<string> ListStoragePoolNames()
    {
        int n = NativeCall.Check(NativeMethods.virConnectListAllStoragePools(_conn, out IntPtr array, 0), "virConnectListAllStoragePools");
        var names = new string[n];
        IntPtr* pools = (IntPtr*)array;
        for (int i = 0; i < n; i++)
        {
            names[i] = Marshal.PtrToStringUTF8(NativeMethods.virStoragePoolGetName(pools[i])) ?? string.Empty;
            NativeMethods.virStoragePoolFree(pools[i]);
        }

        LibvirtLibrary.Free(array);
        return names;
    }

    public StoragePoolInfo GetStoragePool(string name)
    {
        using SafeStoragePoolHandle p = OpenPool(name);
        return PoolInfo(p);
    }

    public string GetStoragePoolXml(string name, uint flags)
    {
        using SafeStoragePoolHandle p = OpenPool(name);
        return NativeCall.CheckString(NativeMethods.virStoragePoolGetXMLDesc(p, flags), "virStoragePoolGetXMLDesc");
    }

    public void DefineAndStartStoragePool(string xml, bool build, bool autostart)
    {
        using SafeStoragePoolHandle p = new(NativeCall.Check(NativeMethods.virStoragePoolDefineXML(_conn, xml, 0), "virStoragePoolDefineXML"));
        try
        {
            if (build)
            {
                NativeCall.Check(NativeMethods.virStoragePoolBuild(p, 0), "virStoragePoolBuild");
            }

            NativeCall.Check(NativeMethods.virStoragePoolCreate(p, 0), "virStoragePoolCreate");
            if (autostart)
            {
                NativeCall.Check(NativeMethods.virStoragePoolSetAutostart(p, 1), "virStoragePoolSetAutostart");
            }
        }
        catch (LibvirtException)
        {
            _ = NativeMethods.virStoragePoolUndefine(p);   // leave nothing half-made
            throw;
        }
    }

    public void RefreshStoragePool(string name)
    {
        using SafeStoragePoolHandle p = OpenPool(name);
        NativeCall.Check(NativeMethods.virStoragePoolRefresh(p, 0), "virStoragePoolRefresh");
    }

    public StorageVolumeInfo CreateStorageVolume(string pool, string xml, uint flags)
    {
        using SafeStoragePoolHandle p = OpenPool(pool);
        using SafeStorageVolHandle v = new(NativeCall.Check(NativeMethods.virStorageVolCreateXML(p, xml, flags), "virStorageVolCreateXML"));
        return VolumeInfo(v.DangerousGetHandle(), pool);
    }

    public StorageVolumeInfo? LookupStorageVolumeByPath(string path)
    {
        IntPtr raw = NativeMethods.virStorageVolLookupByPath(_conn, path);
        if (raw == IntPtr.Zero)
        {
            LibvirtException e = NativeCall.LastError("virStorageVolLookupByPath");
            return e.Code == LibvirtErrorCode.NoStorageVol ? null : throw e;
        }

        using SafeStorageVolHandle v = new(raw);
        return VolumeInfo(raw, null);
    }

    public StorageVolumeInfo? LookupStorageVolume(string pool, string name)
    {
        using SafeStoragePoolHandle p = OpenPool(pool);
        IntPtr raw = NativeMethods.virStorageVolLookupByName(p, name);
        if (raw == IntPtr.Zero)
        {
            LibvirtException e = NativeCall.LastError("virStorageVolLookupByName");
            return e.Code == LibvirtErrorCode.NoStorageVol ? null : throw e;
        }

        using SafeStorageVolHandle v = new(raw);
        return VolumeInfo(raw, pool);
    }

    public string GetStorageVolumeXml(StorageVolumeInfo volume)
    {
        using SafeStorageVolHandle v = OpenVolume(volume);
        return NativeCall.CheckString(NativeMethods.virStorageVolGetXMLDesc(v, 0), "virStorageVolGetXMLDesc");
    }

    public void DeleteStorageVolume(StorageVolumeInfo volume)
    {
        using SafeStorageVolHandle v = OpenVolume(volume);
        NativeCall.Check(NativeMethods.virStorageVolDelete(v, 0), "virStorageVolDelete");
    }

    public IReadOnlyList<StoragePoolData> ListStoragePools()
    {
        int n = NativeCall.Check(NativeMethods.virConnectListAllStoragePools(_conn, out IntPtr array, 0), "virConnectListAllStoragePools");
        var result = new List<StoragePoolData>(n);
        IntPtr* pools = (IntPtr*)array;
        try
        {
            for (int i = 0; i < n; i++)
            {
                using var p = new SafeStoragePoolHandle(pools[i]);
                pools[i] = IntPtr.Zero;   // owned by the SafeHandle now
                try
                {
                    StoragePoolInfo info = PoolInfo(p);
                    IntPtr raw = p.DangerousGetHandle();
                    _ = NativeMethods.virStoragePoolGetAutostart(raw, out int autostart);
                    bool persistent = NativeMethods.virStoragePoolIsPersistent(raw) == 1;
                    int volumes = info.IsActive ? Math.Max(0, NativeMethods.virStoragePoolNumOfVolumes(raw)) : 0;
                    string xml = NativeCall.CheckString(NativeMethods.virStoragePoolGetXMLDesc(p, 0), "virStoragePoolGetXMLDesc");
                    result.Add(new StoragePoolData(info, autostart != 0, persistent, volumes, xml));
                }
                catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoStoragePool)
                {
                    // removed since the list was taken: not there any more
                }
            }
        }
        finally
        {
            for (int i = 0; i < n; i++)
            {
                if (pools[i] != IntPtr.Zero)
                {
                    NativeMethods.virStoragePoolFree(pools[i]);
                }
            }

            LibvirtLibrary.Free(array);
        }

        return result;
    }

    public void DefineStoragePool(string xml)
    {
        using SafeStoragePoolHandle p = new(NativeCall.Check(NativeMethods.virStoragePoolDefineXML(_conn, xml, 0), "virStoragePoolDefineXML"));
    }

    public void BuildStoragePool(string name, uint flags) => OnPool(name, p => NativeMethods.virStoragePoolBuild(p, flags), "virStoragePoolBuild");

    public void StartStoragePool(string name) => OnPool(name, p => NativeMethods.virStoragePoolCreate(p, 0), "virStoragePoolCreate");

    public void StopStoragePool(string name) => OnPool(name, p => NativeMethods.virStoragePoolDestroy(p), "virStoragePoolDestroy");

    public void DeleteStoragePoolStorage(string name, uint flags) => OnPool(name, p => NativeMethods.virStoragePoolDelete(p, flags), "virStoragePoolDelete");

    public void UndefineStoragePool(string name) => OnPool(name, p => NativeMethods.virStoragePoolUndefine(p), "virStoragePoolUndefine");

    public void SetStoragePoolAutostart(string name, bool autostart)
        => OnPool(name, p => NativeMethods.virStoragePoolSetAutostart(p, autostart ? 1 : 0), "virStoragePoolSetAutostart");

    public IReadOnlyList<StorageVolumeInfo> ListStorageVolumes(string pool)
    {
        using SafeStoragePoolHandle p = OpenPool(pool);
        int n = NativeCall.Check(NativeMethods.virStoragePoolListAllVolumes(p, out IntPtr array, 0), "virStoragePoolListAllVolumes");
        var result = new List<StorageVolumeInfo>(n);
        IntPtr* vols = (IntPtr*)array;
        try
        {
            for (int i = 0; i < n; i++)
            {
                result.Add(VolumeInfo(vols[i], pool));
            }
        }
        finally
        {
            for (int i = 0; i < n; i++)
            {
                NativeMethods.virStorageVolFree(vols[i]);
            }

            LibvirtLibrary.Free(array);
        }

        return result;
    }

    public StorageVolumeInfo CloneStorageVolume(string pool, string xml, StorageVolumeInfo source, uint flags)
    {
        using SafeStoragePoolHandle p = OpenPool(pool);
        using SafeStorageVolHandle src = OpenVolume(source);
        using SafeStorageVolHandle v = new(NativeCall.Check(NativeMethods.virStorageVolCreateXMLFrom(p, xml, src, flags), "virStorageVolCreateXMLFrom"));
        return VolumeInfo(v.DangerousGetHandle(), pool);
    }

    public void ResizeStorageVolume(StorageVolumeInfo volume, ulong capacityBytes, uint flags)
    {
        using SafeStorageVolHandle v = OpenVolume(volume);
        NativeCall.Check(NativeMethods.virStorageVolResize(v, capacityBytes, flags), "virStorageVolResize");
    }

    public void UploadStorageVolume(StorageVolumeInfo volume, Stream source, ulong length, Action<ulong>? progress, CancellationToken cancel)
    {
        using SafeStorageVolHandle v = OpenVolume(volume);
        using SafeStreamHandle st = new(NativeCall.Check(NativeMethods.virStreamNew(_conn, 0), "virStreamNew"));
        NativeCall.Check(NativeMethods.virStorageVolUpload(v, st, 0, length, 0), "virStorageVolUpload");
        byte[] buffer = new byte[256 * 1024];
        ulong sent = 0;
        try
        {
            while (sent < length)
            {
                cancel.ThrowIfCancellationRequested();
                int want = (int)Math.Min((ulong)buffer.Length, length - sent);
                int got = source.Read(buffer, 0, want);
                if (got == 0)
                {
                    throw new IOException($"The source ended after {sent} of {length} bytes.");
                }

                fixed (byte* b = buffer)
                {
                    int off = 0;
                    while (off < got)
                    {
                        int n = NativeMethods.virStreamSend(st, b + off, (nuint)(got - off));
                        if (n < 0)
                        {
                            throw NativeCall.LastError("virStreamSend");
                        }

                        off += n;
                    }
                }

                sent += (ulong)got;
                progress?.Invoke(sent);
            }

            NativeCall.Check(NativeMethods.virStreamFinish(st), "virStreamFinish");
        }
        catch
        {
            _ = NativeMethods.virStreamAbort(st);
            throw;
        }
    }

    public ulong DownloadStorageVolume(StorageVolumeInfo volume, Stream destination, Action<ulong>? progress, CancellationToken cancel)
    {
        using SafeStorageVolHandle v = OpenVolume(volume);
        using SafeStreamHandle st = new(NativeCall.Check(NativeMethods.virStreamNew(_conn, 0), "virStreamNew"));
        NativeCall.Check(NativeMethods.virStorageVolDownload(v, st, 0, 0, 0), "virStorageVolDownload");
        byte[] buffer = new byte[256 * 1024];
        ulong received = 0;
        try
        {
            while (true)
            {
                cancel.ThrowIfCancellationRequested();
                int n;
                fixed (byte* b = buffer)
                {
                    n = NativeMethods.virStreamRecv(st, b, (nuint)buffer.Length);
                }

                if (n < 0)
                {
                    throw NativeCall.LastError("virStreamRecv");
                }

                if (n == 0)
                {
                    break;
                }

                destination.Write(buffer, 0, n);
                received += (ulong)n;
                progress?.Invoke(received);
            }

            NativeCall.Check(NativeMethods.virStreamFinish(st), "virStreamFinish");
            return received;
        }
        catch
        {
            _ = NativeMethods.virStreamAbort(st);
            throw;
        }
    }

    public IReadOnlyList<NetworkData> ListNetworks()
    {
        int n = NativeCall.Check(NativeMethods.virConnectListAllNetworks(_conn, out IntPtr array, 0), "virConnectListAllNetworks");
        var result = new List<NetworkData>(n);
        IntPtr* nets = (IntPtr*)array;
        byte* buf = stackalloc byte[40];
        try
        {
            for (int i = 0; i < n; i++)
            {
                IntPtr net = nets[i];
                string name = Marshal.PtrToStringUTF8(NativeMethods.virNetworkGetName(net)) ?? string.Empty;
                Guid uuid = NativeMethods.virNetworkGetUUIDString(net, buf) == 0
                    && System.Buffers.Text.Utf8Parser.TryParse(new ReadOnlySpan<byte>(buf, 36), out Guid g, out _, 'D') ? g : Guid.Empty;
                _ = NativeMethods.virNetworkGetAutostart(net, out int autostart);
                string xml;
                try
                {
                    xml = NativeCall.CheckString(NativeMethods.virNetworkGetXMLDesc(net, 0), "virNetworkGetXMLDesc");
                }
                catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoNetwork)
                {
                    continue;   // removed since the list was taken (a transient network that stopped): not there any more
                }

                result.Add(new NetworkData(name, uuid, NativeMethods.virNetworkIsActive(net) == 1, NativeMethods.virNetworkIsPersistent(net) == 1, autostart != 0, xml));
            }
        }
        finally
        {
            for (int i = 0; i < n; i++)
            {
                NativeMethods.virNetworkFree(nets[i]);
            }

            LibvirtLibrary.Free(array);
        }

        return result;
    }

    public void DefineNetwork(string xml)
    {
        using SafeNetworkHandle net = new(NativeCall.Check(NativeMethods.virNetworkDefineXML(_conn, xml), "virNetworkDefineXML"));
    }

    public void StartNetwork(string name) => OnNetwork(name, n => NativeMethods.virNetworkCreate(n), "virNetworkCreate");

    public void StopNetwork(string name) => OnNetwork(name, n => NativeMethods.virNetworkDestroy(n), "virNetworkDestroy");

    public void UndefineNetwork(string name) => OnNetwork(name, n => NativeMethods.virNetworkUndefine(n), "virNetworkUndefine");

    public void SetNetworkAutostart(string name, bool autostart)
        => OnNetwork(name, n => NativeMethods.virNetworkSetAutostart(n, autostart ? 1 : 0), "virNetworkSetAutostart");

    public IReadOnlyList<NetworkLease> GetNetworkLeases(string name)
    {
        using SafeNetworkHandle net = OpenNetwork(name);
        int n = NativeCall.Check(NativeMethods.virNetworkGetDHCPLeases(net, IntPtr.Zero, out IntPtr array, 0), "virNetworkGetDHCPLeases");
        var result = new List<NetworkLease>(n);
        IntPtr* leases = (IntPtr*)array;
        try
        {
            for (int i = 0; i < n; i++)
            {
                VirNetworkDhcpLease l = *(VirNetworkDhcpLease*)leases[i];
                result.Add(new NetworkLease(
                    Marshal.PtrToStringUTF8(l.Iface) ?? string.Empty,
                    l.ExpiryTime > 0 ? DateTimeOffset.FromUnixTimeSeconds(l.ExpiryTime).LocalDateTime : null,
                    l.Type,
                    Marshal.PtrToStringUTF8(l.Mac),
                    Marshal.PtrToStringUTF8(l.IpAddr),
                    (int)l.Prefix,
                    Marshal.PtrToStringUTF8(l.Hostname),
                    Marshal.PtrToStringUTF8(l.ClientId)));
            }
        }
        finally
        {
            for (int i = 0; i < n; i++)
            {
                NativeMethods.virNetworkDHCPLeaseFree(leases[i]);
            }

            LibvirtLibrary.Free(array);
        }

        return result;
    }

    public void AttachDevice(DomainRef domain, string xml, DomainModificationFlags flags)
        => OnDomain(domain, h => NativeMethods.virDomainAttachDeviceFlags(h, xml, (uint)flags), "virDomainAttachDeviceFlags");

    public void DetachDevice(DomainRef domain, string xml, DomainModificationFlags flags)
        => OnDomain(domain, h => NativeMethods.virDomainDetachDeviceFlags(h, xml, (uint)flags), "virDomainDetachDeviceFlags");

    public void UpdateDevice(DomainRef domain, string xml, DomainModificationFlags flags)
        => OnDomain(domain, h => NativeMethods.virDomainUpdateDeviceFlags(h, xml, (uint)flags), "virDomainUpdateDeviceFlags");

    public void ResizeBlockDevice(DomainRef domain, string disk, ulong bytes)
        => OnDomain(domain, h => NativeMethods.virDomainBlockResize(h, disk, bytes, 1 /* VIR_DOMAIN_BLOCK_RESIZE_BYTES */), "virDomainBlockResize");

    public IReadOnlyList<GuestInterface> GetInterfaceAddresses(DomainRef domain, int source)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        int n = NativeCall.Check(NativeMethods.virDomainInterfaceAddresses(h, out IntPtr array, (uint)source, 0), "virDomainInterfaceAddresses");
        var result = new List<GuestInterface>(n);
        IntPtr* ifaces = (IntPtr*)array;
        try
        {
            for (int i = 0; i < n; i++)
            {
                VirDomainInterface iface = *(VirDomainInterface*)ifaces[i];
                var addrs = new List<(int, string, int)>((int)iface.NAddrs);
                for (int a = 0; a < iface.NAddrs; a++)
                {
                    VirDomainIPAddress ip = ((VirDomainIPAddress*)iface.Addrs)[a];
                    addrs.Add((ip.Type, Marshal.PtrToStringUTF8(ip.Addr) ?? string.Empty, (int)ip.Prefix));
                }

                result.Add(new GuestInterface(Marshal.PtrToStringUTF8(iface.Name) ?? string.Empty, Marshal.PtrToStringUTF8(iface.HwAddr), addrs));
            }
        }
        finally
        {
            for (int i = 0; i < n; i++)
            {
                NativeMethods.virDomainInterfaceFree(ifaces[i]);
            }

            LibvirtLibrary.Free(array);
        }

        return result;
    }

    public bool NetworkExists(string name)
    {
        IntPtr raw = NativeMethods.virNetworkLookupByName(_conn, name);
        if (raw == IntPtr.Zero)
        {
            LibvirtException e = NativeCall.LastError("virNetworkLookupByName");
            return e.Code == LibvirtErrorCode.NoNetwork ? false : throw e;
        }

        NativeMethods.virNetworkFree(raw);
        return true;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_self.IsAllocated)
        {
            // The close callback holds a connection reference; drop it first so close really closes.
            NativeMethods.virConnectUnregisterCloseCallback(_conn.DangerousGetHandle(), &CloseCallback);
            _self.Free();
        }

        _conn.Dispose();
    }

    // ---------------- helpers ----------------

    private T OnDomain<T>(DomainRef domain, Func<SafeDomainHandle, T> call, string function)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        T rc = call(h);
        return rc is int i && i < 0 ? throw NativeCall.LastError(function) : rc;
    }

    private void OnDomain(DomainRef domain, Func<SafeDomainHandle, int> call, string function) => _ = OnDomain<int>(domain, call, function);

    private void OnPool(string name, Func<SafeStoragePoolHandle, int> call, string function)
    {
        using SafeStoragePoolHandle p = OpenPool(name);
        NativeCall.Check(call(p), function);
    }

    private void OnNetwork(string name, Func<SafeNetworkHandle, int> call, string function)
    {
        using SafeNetworkHandle n = OpenNetwork(name);
        NativeCall.Check(call(n), function);
    }

    private SafeNetworkHandle OpenNetwork(string name)
        => new(NativeCall.Check(NativeMethods.virNetworkLookupByName(_conn, name), "virNetworkLookupByName"));

    private SafeStoragePoolHandle OpenPool(string name)
        => new(NativeCall.Check(NativeMethods.virStoragePoolLookupByName(_conn, name), "virStoragePoolLookupByName"));

    private SafeStorageVolHandle OpenVolume(StorageVolumeInfo volume)
        => new(NativeCall.Check(NativeMethods.virStorageVolLookupByKey(_conn, volume.Key), "virStorageVolLookupByKey"));

    private static StoragePoolInfo PoolInfo(SafeStoragePoolHandle p)
    {
        byte* buf = stackalloc byte[40];
        IntPtr raw = p.DangerousGetHandle();
        string name = Marshal.PtrToStringUTF8(NativeMethods.virStoragePoolGetName(raw)) ?? string.Empty;
        Guid uuid = NativeMethods.virStoragePoolGetUUIDString(raw, buf) == 0
            && System.Buffers.Text.Utf8Parser.TryParse(new ReadOnlySpan<byte>(buf, 36), out Guid g, out _, 'D') ? g : Guid.Empty;
        NativeCall.Check(NativeMethods.virStoragePoolGetInfo(p, out VirStoragePoolInfo i), "virStoragePoolGetInfo");
        return new StoragePoolInfo(name, uuid, i.State, i.Capacity, i.Allocation, i.Available);
    }

    private static StorageVolumeInfo VolumeInfo(IntPtr vol, string? pool)
    {
        if (pool is null)
        {
            IntPtr p = NativeMethods.virStoragePoolLookupByVolume(vol);
            if (p != IntPtr.Zero)
            {
                pool = Marshal.PtrToStringUTF8(NativeMethods.virStoragePoolGetName(p));
                NativeMethods.virStoragePoolFree(p);
            }
        }

        NativeCall.Check(NativeMethods.virStorageVolGetInfo(vol, out VirStorageVolInfo info), "virStorageVolGetInfo");
        return new StorageVolumeInfo(
            pool ?? string.Empty,
            Marshal.PtrToStringUTF8(NativeMethods.virStorageVolGetName(vol)) ?? string.Empty,
            Marshal.PtrToStringUTF8(NativeMethods.virStorageVolGetKey(vol)) ?? string.Empty,
            LibvirtLibrary.TakeString(NativeMethods.virStorageVolGetPath(vol)) ?? string.Empty,
            info.Type, info.Capacity, info.Allocation);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int LifecycleCallback(IntPtr conn, IntPtr dom, int evt, int detail, IntPtr opaque)
    {
        try
        {
            if (GCHandle.FromIntPtr(opaque).Target is Action<DomainLifecycleEvent> handler)
            {
                handler(new DomainLifecycleEvent(ToRef(dom), (DomainEventType)evt, detail));
            }
        }
        catch
        {
            // never let an exception reach the event loop
        }

        return 0;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void FreeGCHandle(IntPtr opaque)
    {
        try
        {
            GCHandle.FromIntPtr(opaque).Free();
        }
        catch
        {
            // already freed
        }
    }

    private SafeDomainHandle Open(Guid uuid)
        => new(NativeCall.Check(NativeMethods.virDomainLookupByUUIDString(_conn, uuid.ToString("D")), "virDomainLookupByUUIDString"));

    private static DomainRef ToRef(IntPtr dom)
    {
        byte* buf = stackalloc byte[40];
        string name = Marshal.PtrToStringUTF8(NativeMethods.virDomainGetName(dom)) ?? string.Empty;
        Guid uuid = NativeMethods.virDomainGetUUIDString(dom, buf) == 0
            && System.Buffers.Text.Utf8Parser.TryParse(new ReadOnlySpan<byte>(buf, 36), out Guid g, out _, 'D') ? g : Guid.Empty;
        uint id = NativeMethods.virDomainGetID(dom);
        return new DomainRef(name, uuid, id == uint.MaxValue ? -1 : (int)id);
    }

    internal static TypedParameter[] ReadParams(VirTypedParameter* p, int n) => ReadParams(p, n, 0, out _);

    /// <summary>Copies <paramref name="n"/> parameters into a new array with <paramref name="spare"/> empty slots after them.</summary>
    internal static TypedParameter[] ReadParams(VirTypedParameter* p, int n, int spare, out bool hasBalloonMaximum)
    {
        hasBalloonMaximum = false;
        var result = new TypedParameter[n + spare];
        for (int i = 0; i < n; i++)
        {
            VirTypedParameter* t = p + i;
            string name = ParamNames.Get(t->Field);
            hasBalloonMaximum |= ReferenceEquals(name, ParamNames.BalloonMaximum);
            var type = (TypedParameterType)t->Type;
            result[i] = type switch
            {
                TypedParameterType.Int => TypedParameter.FromBits(name, type, (ulong)(long)t->I),
                TypedParameterType.UInt => TypedParameter.FromBits(name, type, t->UI),
                TypedParameterType.LLong => TypedParameter.FromBits(name, type, (ulong)t->L),
                TypedParameterType.Double => TypedParameter.FromBits(name, type, (ulong)BitConverter.DoubleToInt64Bits(t->D)),
                TypedParameterType.Boolean => TypedParameter.FromBits(name, type, t->B != 0 ? 1UL : 0UL),
                TypedParameterType.String => new TypedParameter(name, type, Marshal.PtrToStringUTF8(t->S) ?? string.Empty),
                _ => TypedParameter.FromBits(name, type, t->UL),
            };
        }

        return result;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int AuthCallback(VirConnectCredential* cred, uint ncred, IntPtr cbdata)
    {
        try
        {
            var options = (LibvirtOpenOptions)GCHandle.FromIntPtr(cbdata).Target!;
            if (options.Credentials is null)
            {
                return -1;
            }

            for (uint i = 0; i < ncred; i++)
            {
                VirConnectCredential* c = cred + i;
                var request = new LibvirtCredentialRequest((LibvirtCredentialType)c->Type,
                    Marshal.PtrToStringUTF8(c->Prompt), Marshal.PtrToStringUTF8(c->Challenge), Marshal.PtrToStringUTF8(c->DefResult));
                string? answer = options.Credentials(request);
                if (answer is null)
                {
                    return -1;
                }

                (c->Result, c->ResultLen) = LibvirtLibrary.AllocString(answer);
            }

            return 0;
        }
        catch
        {
            return -1;   // an exception must never escape into libvirt
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void CloseCallback(IntPtr conn, int reason, IntPtr opaque)
    {
        try
        {
            if (GCHandle.FromIntPtr(opaque).Target is NativeConnection c)
            {
                c.Closed?.Invoke(c, (ConnectionCloseReason)reason);
            }
        }
        catch
        {
            // never let an exception reach the event loop
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void FreeNothing(IntPtr opaque)
    {
        // The GCHandle is freed by Dispose, after unregistering.
    }
}
