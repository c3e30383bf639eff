using System.Runtime.InteropServices;

namespace KvmPS.Core.Native;

/// <summary>
/// P/Invoke declarations for libvirt. Only IntPtr/unsafe signatures: returned strings are read with
/// <see cref="Marshal.PtrToStringUTF8(IntPtr)"/> and freed with <see cref="LibvirtLibrary.Free"/> where owned.
/// Every call goes through <see cref="NativeCall"/> so the thread-local libvirt error is captured at once.
/// </summary>
internal static unsafe partial class NativeMethods
{
    internal const string Lib = "libvirt";

    // Library
    [LibraryImport(Lib)] internal static partial int virInitialize();
    [LibraryImport(Lib)] internal static partial int virGetVersion(out CULong libVer, IntPtr type, IntPtr typeVer);
    [LibraryImport(Lib)] internal static partial void virSetErrorFunc(IntPtr userData, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, void> handler);
    [LibraryImport(Lib)] internal static partial int virEventRegisterDefaultImpl();
    [LibraryImport(Lib)] internal static partial int virEventRunDefaultImpl();
    [LibraryImport(Lib)] internal static partial int virEventAddTimeout(int frequency, delegate* unmanaged[Cdecl]<int, IntPtr, void> cb, IntPtr opaque, IntPtr ff);
    [LibraryImport(Lib)] internal static partial int virEventRemoveTimeout(int timer);

    // Errors
    [LibraryImport(Lib)] internal static partial IntPtr virSaveLastError();
    [LibraryImport(Lib)] internal static partial void virFreeError(IntPtr err);
    [LibraryImport(Lib)] internal static partial void virResetLastError();

    // Connection
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virConnectOpenAuth(string? name, ref VirConnectAuth auth, uint flags);
    [LibraryImport(Lib)] internal static partial int virConnectClose(IntPtr conn);
    [LibraryImport(Lib)] internal static partial IntPtr virConnectGetURI(SafeConnectHandle conn);
    [LibraryImport(Lib)] internal static partial IntPtr virConnectGetHostname(SafeConnectHandle conn);
    [LibraryImport(Lib)] internal static partial IntPtr virConnectGetType(SafeConnectHandle conn);
    [LibraryImport(Lib)] internal static partial int virConnectGetVersion(SafeConnectHandle conn, out CULong hvVer);
    [LibraryImport(Lib)] internal static partial int virConnectGetLibVersion(SafeConnectHandle conn, out CULong libVer);
    [LibraryImport(Lib)] internal static partial int virConnectIsAlive(SafeConnectHandle conn);
    [LibraryImport(Lib)] internal static partial int virConnectIsSecure(SafeConnectHandle conn);
    [LibraryImport(Lib)] internal static partial int virConnectIsEncrypted(SafeConnectHandle conn);
    [LibraryImport(Lib)] internal static partial int virConnectSetKeepAlive(SafeConnectHandle conn, int interval, uint count);
    [LibraryImport(Lib)] internal static partial int virConnectRegisterCloseCallback(SafeConnectHandle conn, delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr, void> cb, IntPtr opaque, delegate* unmanaged[Cdecl]<IntPtr, void> freecb);
    [LibraryImport(Lib)] internal static partial int virConnectUnregisterCloseCallback(IntPtr conn, delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr, void> cb);
    [LibraryImport(Lib)] internal static partial IntPtr virConnectGetCapabilities(SafeConnectHandle conn);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virConnectGetDomainCapabilities(SafeConnectHandle conn, string? emulatorbin, string? arch, string? machine, string? virttype, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virConnectGetMaxVcpus(SafeConnectHandle conn, string? type);
    [LibraryImport(Lib)] internal static partial IntPtr virConnectGetSysinfo(SafeConnectHandle conn, uint flags);
    [LibraryImport(Lib)] internal static partial int virNodeGetInfo(SafeConnectHandle conn, out VirNodeInfo info);
    [LibraryImport(Lib)] internal static partial ulong virNodeGetFreeMemory(SafeConnectHandle conn);

    // Domains
    [LibraryImport(Lib)] internal static partial int virConnectListAllDomains(SafeConnectHandle conn, out IntPtr domains, uint flags);
    [LibraryImport(Lib)] internal static partial int virConnectGetAllDomainStats(SafeConnectHandle conn, uint stats, out IntPtr retStats, uint flags);
    [LibraryImport(Lib)] internal static partial void virDomainStatsRecordListFree(IntPtr stats);
    [LibraryImport(Lib)] internal static partial int virDomainListGetStats(IntPtr* doms, uint stats, out IntPtr retStats, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virDomainLookupByName(SafeConnectHandle conn, string name);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virDomainLookupByUUIDString(SafeConnectHandle conn, string uuid);
    [LibraryImport(Lib)] internal static partial IntPtr virDomainLookupByID(SafeConnectHandle conn, int id);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virDomainDefineXMLFlags(SafeConnectHandle conn, string xml, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virDomainDefineXML(SafeConnectHandle conn, string xml);
    [LibraryImport(Lib)] internal static partial int virDomainUndefineFlags(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainCreateWithFlags(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainDestroyFlags(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainShutdownFlags(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainSuspend(SafeDomainHandle dom);
    [LibraryImport(Lib)] internal static partial int virDomainResume(SafeDomainHandle dom);
    [LibraryImport(Lib)] internal static partial int virDomainFree(IntPtr dom);
    [LibraryImport(Lib)] internal static partial int virDomainRef(IntPtr dom);
    [LibraryImport(Lib)] internal static partial IntPtr virDomainGetName(IntPtr dom);
    [LibraryImport(Lib)] internal static partial int virDomainGetUUIDString(IntPtr dom, byte* buf);
    [LibraryImport(Lib)] internal static partial uint virDomainGetID(IntPtr dom);
    [LibraryImport(Lib)] internal static partial int virDomainGetInfo(SafeDomainHandle dom, out VirDomainInfo info);
    [LibraryImport(Lib)] internal static partial int virDomainGetInfo(IntPtr dom, out VirDomainInfo info);
    [LibraryImport(Lib)] internal static partial int virDomainGetState(SafeDomainHandle dom, out int state, out int reason, uint flags);
    [LibraryImport(Lib)] internal static partial IntPtr virDomainGetXMLDesc(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainGetAutostart(SafeDomainHandle dom, out int autostart);
    [LibraryImport(Lib)] internal static partial int virDomainIsPersistent(SafeDomainHandle dom);
    [LibraryImport(Lib)] internal static partial int virDomainHasManagedSaveImage(SafeDomainHandle dom, uint flags);

    [LibraryImport(Lib)] internal static partial int virDomainReboot(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainReset(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainManagedSave(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainManagedSaveRemove(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainSetAutostart(SafeDomainHandle dom, int autostart);
    [LibraryImport(Lib)] internal static partial int virDomainSetVcpusFlags(SafeDomainHandle dom, uint nvcpus, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainGetVcpusFlags(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainSetMemoryFlags(SafeDomainHandle dom, CULong memory, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainSetMetadata(SafeDomainHandle dom, int type, string? metadata, string? key, string? uri, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainRename(SafeDomainHandle dom, string newName, uint flags);
    [LibraryImport(Lib)] internal static partial int virConnectDomainEventRegisterAny(SafeConnectHandle conn, IntPtr dom, int eventId, IntPtr cb, IntPtr opaque, delegate* unmanaged[Cdecl]<IntPtr, void> freecb);
    [LibraryImport(Lib)] internal static partial int virConnectDomainEventDeregisterAny(SafeConnectHandle conn, int callbackId);

    // Snapshots
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virDomainSnapshotCreateXML(SafeDomainHandle dom, string xml, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainListAllSnapshots(SafeDomainHandle dom, out IntPtr snaps, uint flags);
    [LibraryImport(Lib)] internal static partial IntPtr virDomainSnapshotGetName(IntPtr snap);
    [LibraryImport(Lib)] internal static partial IntPtr virDomainSnapshotGetXMLDesc(IntPtr snap, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainSnapshotIsCurrent(IntPtr snap, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virDomainSnapshotLookupByName(SafeDomainHandle dom, string name, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainRevertToSnapshot(SafeDomainSnapshotHandle snap, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainSnapshotDelete(SafeDomainSnapshotHandle snap, uint flags);

    [LibraryImport(Lib)] internal static partial int virDomainGetGuestInfo(SafeDomainHandle dom, uint types, out IntPtr pars, out int npars, uint flags);

    // Backup and checkpoints
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainBackupBegin(SafeDomainHandle dom, string backupXml, string? checkpointXml, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainGetJobStats(SafeDomainHandle dom, out int type, out IntPtr pars, out int npars, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainAbortJob(SafeDomainHandle dom);

    // Migration
    [LibraryImport(Lib)] internal static partial IntPtr virDomainMigrate3(SafeDomainHandle dom, SafeConnectHandle dconn, IntPtr pars, uint npars, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainMigrateToURI3(SafeDomainHandle dom, string dconnuri, IntPtr pars, uint npars, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainMigrateSetMaxDowntime(SafeDomainHandle dom, ulong downtime, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainMigrateStartPostCopy(SafeDomainHandle dom, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainBlockCopy(SafeDomainHandle dom, string disk, string destxml, IntPtr pars, int npars, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainGetBlockJobInfo(SafeDomainHandle dom, string disk, out VirDomainBlockJobInfo info, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainBlockJobAbort(SafeDomainHandle dom, string disk, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virConnectCompareHypervisorCPU(SafeConnectHandle conn, string? emulator, string? arch, string? machine, string? virttype, string xmlCPU, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainFSFreeze(SafeDomainHandle dom, IntPtr mountpoints, uint nmountpoints, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainFSThaw(SafeDomainHandle dom, IntPtr mountpoints, uint nmountpoints, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainListAllCheckpoints(SafeDomainHandle dom, out IntPtr cps, uint flags);
    [LibraryImport(Lib)] internal static partial IntPtr virDomainCheckpointGetName(IntPtr cp);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virDomainCheckpointLookupByName(SafeDomainHandle dom, string name, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainCheckpointDelete(SafeDomainCheckpointHandle cp, uint flags);

    // Storage
    [LibraryImport(Lib)] internal static partial int virConnectListAllStoragePools(SafeConnectHandle conn, out IntPtr pools, uint flags);
    [LibraryImport(Lib)] internal static partial IntPtr virStoragePoolGetName(IntPtr pool);
    [LibraryImport(Lib)] internal static partial int virStoragePoolGetUUIDString(IntPtr pool, byte* buf);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virStoragePoolLookupByName(SafeConnectHandle conn, string name);
    [LibraryImport(Lib)] internal static partial IntPtr virStoragePoolLookupByVolume(IntPtr vol);
    [LibraryImport(Lib)] internal static partial int virStoragePoolGetInfo(SafeStoragePoolHandle pool, out VirStoragePoolInfo info);
    [LibraryImport(Lib)] internal static partial IntPtr virStoragePoolGetXMLDesc(SafeStoragePoolHandle pool, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virStoragePoolDefineXML(SafeConnectHandle conn, string xml, uint flags);
    [LibraryImport(Lib)] internal static partial int virStoragePoolBuild(SafeStoragePoolHandle pool, uint flags);
    [LibraryImport(Lib)] internal static partial int virStoragePoolCreate(SafeStoragePoolHandle pool, uint flags);
    [LibraryImport(Lib)] internal static partial int virStoragePoolUndefine(SafeStoragePoolHandle pool);
    [LibraryImport(Lib)] internal static partial int virStoragePoolSetAutostart(SafeStoragePoolHandle pool, int autostart);
    [LibraryImport(Lib)] internal static partial int virStoragePoolRefresh(SafeStoragePoolHandle pool, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virStorageVolCreateXML(SafeStoragePoolHandle pool, string xml, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virStorageVolLookupByPath(SafeConnectHandle conn, string path);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virStorageVolLookupByName(SafeStoragePoolHandle pool, string name);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virStorageVolLookupByKey(SafeConnectHandle conn, string key);
    [LibraryImport(Lib)] internal static partial IntPtr virStorageVolGetName(IntPtr vol);
    [LibraryImport(Lib)] internal static partial IntPtr virStorageVolGetKey(IntPtr vol);
    [LibraryImport(Lib)] internal static partial IntPtr virStorageVolGetPath(IntPtr vol);
    [LibraryImport(Lib)] internal static partial int virStorageVolGetInfo(IntPtr vol, out VirStorageVolInfo info);
    [LibraryImport(Lib)] internal static partial IntPtr virStorageVolGetXMLDesc(SafeStorageVolHandle vol, uint flags);
    [LibraryImport(Lib)] internal static partial int virStorageVolDelete(SafeStorageVolHandle vol, uint flags);

    [LibraryImport(Lib)] internal static partial int virStoragePoolGetAutostart(IntPtr pool, out int autostart);
    [LibraryImport(Lib)] internal static partial int virStoragePoolIsPersistent(IntPtr pool);
    [LibraryImport(Lib)] internal static partial int virStoragePoolNumOfVolumes(IntPtr pool);
    [LibraryImport(Lib)] internal static partial int virStoragePoolDestroy(SafeStoragePoolHandle pool);
    [LibraryImport(Lib)] internal static partial int virStoragePoolDelete(SafeStoragePoolHandle pool, uint flags);
    [LibraryImport(Lib)] internal static partial int virStoragePoolListAllVolumes(SafeStoragePoolHandle pool, out IntPtr vols, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virStorageVolCreateXMLFrom(SafeStoragePoolHandle pool, string xml, SafeStorageVolHandle clone, uint flags);
    [LibraryImport(Lib)] internal static partial int virStorageVolResize(SafeStorageVolHandle vol, ulong capacity, uint flags);
    [LibraryImport(Lib)] internal static partial int virStorageVolUpload(SafeStorageVolHandle vol, SafeStreamHandle stream, ulong offset, ulong length, uint flags);
    [LibraryImport(Lib)] internal static partial int virStorageVolDownload(SafeStorageVolHandle vol, SafeStreamHandle stream, ulong offset, ulong length, uint flags);

    // Streams
    [LibraryImport(Lib)] internal static partial IntPtr virStreamNew(SafeConnectHandle conn, uint flags);
    [LibraryImport(Lib)] internal static partial int virStreamSend(SafeStreamHandle st, byte* data, nuint nbytes);
    [LibraryImport(Lib)] internal static partial int virStreamRecv(SafeStreamHandle st, byte* data, nuint nbytes);
    [LibraryImport(Lib)] internal static partial int virStreamFinish(SafeStreamHandle st);
    [LibraryImport(Lib)] internal static partial int virStreamAbort(SafeStreamHandle st);

    // Networks
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virNetworkLookupByName(SafeConnectHandle conn, string name);
    [LibraryImport(Lib)] internal static partial int virConnectListAllNetworks(SafeConnectHandle conn, out IntPtr nets, uint flags);
    [LibraryImport(Lib)] internal static partial IntPtr virNetworkGetName(IntPtr net);
    [LibraryImport(Lib)] internal static partial int virNetworkGetUUIDString(IntPtr net, byte* buf);
    [LibraryImport(Lib)] internal static partial int virNetworkIsActive(IntPtr net);
    [LibraryImport(Lib)] internal static partial int virNetworkIsPersistent(IntPtr net);
    [LibraryImport(Lib)] internal static partial int virNetworkGetAutostart(IntPtr net, out int autostart);
    [LibraryImport(Lib)] internal static partial IntPtr virNetworkGetXMLDesc(IntPtr net, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial IntPtr virNetworkDefineXML(SafeConnectHandle conn, string xml);
    [LibraryImport(Lib)] internal static partial int virNetworkCreate(SafeNetworkHandle net);
    [LibraryImport(Lib)] internal static partial int virNetworkDestroy(SafeNetworkHandle net);
    [LibraryImport(Lib)] internal static partial int virNetworkUndefine(SafeNetworkHandle net);
    [LibraryImport(Lib)] internal static partial int virNetworkSetAutostart(SafeNetworkHandle net, int autostart);
    [LibraryImport(Lib)] internal static partial int virNetworkGetDHCPLeases(SafeNetworkHandle net, IntPtr mac, out IntPtr leases, uint flags);
    [LibraryImport(Lib)] internal static partial void virNetworkDHCPLeaseFree(IntPtr lease);

    // Devices
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainAttachDeviceFlags(SafeDomainHandle dom, string xml, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainDetachDeviceFlags(SafeDomainHandle dom, string xml, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainUpdateDeviceFlags(SafeDomainHandle dom, string xml, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int virDomainBlockResize(SafeDomainHandle dom, string disk, ulong size, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainInterfaceAddresses(SafeDomainHandle dom, out IntPtr ifaces, uint source, uint flags);
    [LibraryImport(Lib)] internal static partial void virDomainInterfaceFree(IntPtr iface);

    // Other object types: only Free/Ref for now so every handle type has a SafeHandle.
    [LibraryImport(Lib)] internal static partial int virNetworkFree(IntPtr net);
    [LibraryImport(Lib)] internal static partial int virStoragePoolFree(IntPtr pool);
    [LibraryImport(Lib)] internal static partial int virStorageVolFree(IntPtr vol);
    [LibraryImport(Lib)] internal static partial int virDomainSnapshotFree(IntPtr snap);
    [LibraryImport(Lib)] internal static partial int virDomainCheckpointFree(IntPtr cp);
    [LibraryImport(Lib)] internal static partial int virStreamFree(IntPtr st);
    [LibraryImport(Lib)] internal static partial int virSecretFree(IntPtr secret);
    [LibraryImport(Lib)] internal static partial int virNodeDeviceFree(IntPtr dev);
    [LibraryImport(Lib)] internal static partial int virInterfaceFree(IntPtr iface);
    [LibraryImport(Lib)] internal static partial int virNWFilterFree(IntPtr filter);

    // Typed parameters
    [LibraryImport(Lib)] internal static partial void virTypedParamsFree(IntPtr pars, int npars);

    // Node usage statistics (Get-KvmHost's CPU and memory usage)
    [LibraryImport(Lib)] internal static partial int virNodeGetCPUStats(SafeConnectHandle conn, int cpuNum, VirNodeStatsEntry* stats, ref int nparams, uint flags);
    [LibraryImport(Lib)] internal static partial int virNodeGetMemoryStats(SafeConnectHandle conn, int cellNum, VirNodeStatsEntry* stats, ref int nparams, uint flags);
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirError
{
    public int Code;
    public int Domain;
    public IntPtr Message;
    public int Level;
    public IntPtr Conn;
    public IntPtr Dom;
    public IntPtr Str1;
    public IntPtr Str2;
    public IntPtr Str3;
    public int Int1;
    public int Int2;
    public IntPtr Net;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirDomainInfo
{
    public byte State;
    public CULong MaxMem;
    public CULong Memory;
    public ushort NrVirtCpu;
    public ulong CpuTime;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct VirNodeInfo
{
    public fixed byte Model[32];
    public CULong Memory;
    public uint Cpus;
    public uint Mhz;
    public uint Nodes;
    public uint Sockets;
    public uint Cores;
    public uint Threads;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirStoragePoolInfo
{
    public int State;
    public ulong Capacity;
    public ulong Allocation;
    public ulong Available;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirStorageVolInfo
{
    public int Type;
    public ulong Capacity;
    public ulong Allocation;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirNetworkDhcpLease
{
    public IntPtr Iface;
    public long ExpiryTime;
    public int Type;
    public IntPtr Mac;
    public IntPtr Iaid;
    public IntPtr IpAddr;
    public uint Prefix;
    public IntPtr Hostname;
    public IntPtr ClientId;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirDomainInterface
{
    public IntPtr Name;
    public IntPtr HwAddr;
    public uint NAddrs;
    public IntPtr Addrs;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirDomainIPAddress
{
    public int Type;
    public IntPtr Addr;
    public uint Prefix;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirDomainBlockJobInfo
{
    public int Type;
    public CULong Bandwidth;
    public ulong Cur;
    public ulong End;
}

[StructLayout(LayoutKind.Explicit, Size = 96)]
internal unsafe struct VirTypedParameter
{
    [FieldOffset(0)] public fixed byte Field[80];
    [FieldOffset(80)] public int Type;
    [FieldOffset(88)] public int I;
    [FieldOffset(88)] public uint UI;
    [FieldOffset(88)] public long L;
    [FieldOffset(88)] public ulong UL;
    [FieldOffset(88)] public double D;
    [FieldOffset(88)] public byte B;
    [FieldOffset(88)] public IntPtr S;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirDomainStatsRecord
{
    public IntPtr Dom;
    public IntPtr Params;
    public int NParams;
}

[StructLayout(LayoutKind.Sequential)]
internal struct VirConnectCredential
{
    public int Type;
    public IntPtr Prompt;
    public IntPtr Challenge;
    public IntPtr DefResult;
    public IntPtr Result;
    public uint ResultLen;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct VirConnectAuth
{
    public int* CredType;
    public uint NCredType;
    public delegate* unmanaged[Cdecl]<VirConnectCredential*, uint, IntPtr, int> Cb;
    public IntPtr CbData;
}

/// <summary>virNodeCPUStats and virNodeMemoryStats (same layout): a field name and an unsigned 64-bit value.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct VirNodeStatsEntry
{
    public fixed byte Field[80];
    public ulong Value;
}
