using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Storage pools and volumes of the managed connection (REMOTE_PROC_STORAGE_*).</summary>
internal sealed partial class ManagedConnection
{
    private const int ProcStoragePoolDefineXml = 77;
    private const int ProcStoragePoolCreate = 78;
    private const int ProcStoragePoolBuild = 79;
    private const int ProcStoragePoolDestroy = 80;
    private const int ProcStoragePoolDelete = 81;
    private const int ProcStoragePoolUndefine = 82;
    private const int ProcStoragePoolRefresh = 83;
    private const int ProcStoragePoolLookupByName = 84;
    private const int ProcStoragePoolLookupByVolume = 86;
    private const int ProcStoragePoolGetInfo = 87;
    private const int ProcStoragePoolGetXmlDesc = 88;
    private const int ProcStoragePoolGetAutostart = 89;
    private const int ProcStoragePoolSetAutostart = 90;
    private const int ProcStoragePoolNumOfVolumes = 91;
    private const int ProcStorageVolCreateXml = 93;
    private const int ProcStorageVolDelete = 94;
    private const int ProcStorageVolLookupByName = 95;
    private const int ProcStorageVolLookupByKey = 96;
    private const int ProcStorageVolLookupByPath = 97;
    private const int ProcStorageVolGetInfo = 98;
    private const int ProcStorageVolGetXmlDesc = 99;
    private const int ProcStorageVolGetPath = 100;
    private const int ProcStorageVolCreateXmlFrom = 125;
    private const int ProcStoragePoolIsPersistent = 155;
    private const int ProcStorageVolUpload = 208;
    private const int ProcStorageVolDownload = 209;
    private const int ProcStorageVolResize = 260;
    private const int ProcStorageListAllPools = 281;
    private const int ProcStoragePoolListAllVolumes = 282;

    /// <summary>REMOTE_STORAGE_POOL_LIST_MAX / REMOTE_STORAGE_VOL_LIST_MAX.</summary>
    private const int StoragePoolListMax = 16384;
    private const int StorageVolListMax = 16384;

    /// <summary>Bytes moved per stream packet (libvirt's largest stream payload): one STREAM/CONTINUE packet per write.</summary>
    private const int StorageStreamChunk = RpcClient.StreamChunkSize;

    /// <summary>remote_nonnull_storage_pool.</summary>
    private readonly record struct StoragePoolRef(string Name, Guid Uuid);

    /// <summary>remote_nonnull_storage_vol.</summary>
    private readonly record struct StorageVolRef(string Pool, string Name, string Key);

    public IReadOnlyList<string> ListStoragePoolNames()
        => ListAllPools().Select(p => p.Name).ToArray();

    public StoragePoolInfo GetStoragePool(string name) => PoolInfo(PoolByName(name));

    public string GetStoragePoolXml(string name, uint flags) => PoolXml(PoolByName(name), flags);

    public void DefineAndStartStoragePool(string xml, bool build, bool autostart)
    {
        StoragePoolRef p = Remote(ProcStoragePoolDefineXml, w => { w.WriteString(xml); w.WriteUInt32(0); }, ReadPool);
        try
        {
            if (build)
            {
                Remote(ProcStoragePoolBuild, w => { WritePool(w, p); w.WriteUInt32(0); });
            }

            Remote(ProcStoragePoolCreate, w => { WritePool(w, p); w.WriteUInt32(0); });
            if (autostart)
            {
                Remote(ProcStoragePoolSetAutostart, w => { WritePool(w, p); w.WriteInt32(1); });
            }
        }
        catch (LibvirtException)
        {
            try
            {
                Remote(ProcStoragePoolUndefine, w => WritePool(w, p));   // leave nothing half-made
            }
            catch (LibvirtException)
            {
                // the original error is the one worth reporting
            }

            throw;
        }
    }

    public void RefreshStoragePool(string name)
    {
        StoragePoolRef p = PoolByName(name);
        Remote(ProcStoragePoolRefresh, w => { WritePool(w, p); w.WriteUInt32(0); });
    }

    public StorageVolumeInfo CreateStorageVolume(string pool, string xml, uint flags)
    {
        StoragePoolRef p = PoolByName(pool);
        StorageVolRef v = Remote(ProcStorageVolCreateXml, w => { WritePool(w, p); w.WriteString(xml); w.WriteUInt32(flags); }, ReadVol);
        return VolumeInfo(v, pool);
    }

    public StorageVolumeInfo? LookupStorageVolumeByPath(string path)
    {
        StorageVolRef v;
        try
        {
            v = Remote(ProcStorageVolLookupByPath, w => w.WriteString(path), ReadVol);
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoStorageVol)
        {
            return null;
        }

        return VolumeInfo(v, null);
    }

    public StorageVolumeInfo? LookupStorageVolume(string pool, string name)
    {
        StoragePoolRef p = PoolByName(pool);
        StorageVolRef v;
        try
        {
            v = Remote(ProcStorageVolLookupByName, w => { WritePool(w, p); w.WriteString(name); }, ReadVol);
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoStorageVol)
        {
            return null;
        }

        return VolumeInfo(v, pool);
    }

    public string GetStorageVolumeXml(StorageVolumeInfo volume)
    {
        StorageVolRef v = VolumeByKey(volume);
        return Remote(ProcStorageVolGetXmlDesc, w => { WriteVol(w, v); w.WriteUInt32(0); }, r => r.ReadString());
    }

    public void DeleteStorageVolume(StorageVolumeInfo volume)
    {
        StorageVolRef v = VolumeByKey(volume);
        Remote(ProcStorageVolDelete, w => { WriteVol(w, v); w.WriteUInt32(0); });
    }

    public IReadOnlyList<StoragePoolData> ListStoragePools()
    {
        IReadOnlyList<StoragePoolRef> pools = ListAllPools();
        var result = new List<StoragePoolData>(pools.Count);
        foreach (StoragePoolRef p in pools)
        {
            try
            {
                StoragePoolInfo info = PoolInfo(p);
                // Like the native backend: autostart, persistence and the volume count are best effort.
                bool autostart = TryRemote(ProcStoragePoolGetAutostart, w => WritePool(w, p), r => r.ReadInt32() != 0);
                bool persistent = TryRemote(ProcStoragePoolIsPersistent, w => WritePool(w, p), r => r.ReadInt32() == 1);
                int volumes = info.IsActive ? Math.Max(0, TryRemote(ProcStoragePoolNumOfVolumes, w => WritePool(w, p), r => r.ReadInt32())) : 0;
                string xml = PoolXml(p, 0);
                result.Add(new StoragePoolData(info, autostart, persistent, volumes, xml));
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoStoragePool)
            {
                // removed since the list was taken: not there any more
            }
        }

        return result;
    }

    public void DefineStoragePool(string xml)
        => _ = Remote(ProcStoragePoolDefineXml, w => { w.WriteString(xml); w.WriteUInt32(0); }, ReadPool);

    public void BuildStoragePool(string name, uint flags) => OnPool(name, ProcStoragePoolBuild, flags);

    public void StartStoragePool(string name) => OnPool(name, ProcStoragePoolCreate, 0);

    public void StopStoragePool(string name) => OnPool(name, ProcStoragePoolDestroy, null);

    public void DeleteStoragePoolStorage(string name, uint flags) => OnPool(name, ProcStoragePoolDelete, flags);

    public void UndefineStoragePool(string name) => OnPool(name, ProcStoragePoolUndefine, null);

    public void SetStoragePoolAutostart(string name, bool autostart)
    {
        StoragePoolRef p = PoolByName(name);
        Remote(ProcStoragePoolSetAutostart, w => { WritePool(w, p); w.WriteInt32(autostart ? 1 : 0); });
    }

    public IReadOnlyList<StorageVolumeInfo> ListStorageVolumes(string pool)
    {
        StoragePoolRef p = PoolByName(pool);
        IReadOnlyList<StorageVolRef> vols = Remote(ProcStoragePoolListAllVolumes, w =>
        {
            WritePool(w, p);
            w.WriteInt32(1);    // need_results
            w.WriteUInt32(0);
        }, r =>
        {
            IReadOnlyList<StorageVolRef> list = r.ReadArray(ReadVol, StorageVolListMax);
            _ = r.ReadUInt32();
            return list;
        });
        var result = new List<StorageVolumeInfo>(vols.Count);
        foreach (StorageVolRef v in vols)
        {
            result.Add(VolumeInfo(v, pool));
        }

        return result;
    }

    public StorageVolumeInfo CloneStorageVolume(string pool, string xml, StorageVolumeInfo source, uint flags)
    {
        StoragePoolRef p = PoolByName(pool);
        StorageVolRef src = VolumeByKey(source);
        StorageVolRef v = Remote(ProcStorageVolCreateXmlFrom, w =>
        {
            WritePool(w, p);
            w.WriteString(xml);
            WriteVol(w, src);
            w.WriteUInt32(flags);
        }, ReadVol);
        return VolumeInfo(v, pool);
    }

    public void ResizeStorageVolume(StorageVolumeInfo volume, ulong capacityBytes, uint flags)
    {
        StorageVolRef v = VolumeByKey(volume);
        Remote(ProcStorageVolResize, w => { WriteVol(w, v); w.WriteUInt64(capacityBytes); w.WriteUInt32(flags); });
    }

    public void UploadStorageVolume(StorageVolumeInfo volume, Stream source, ulong length, Action<ulong>? progress, CancellationToken cancel)
    {
        StorageVolRef v = VolumeByKey(volume);
        RpcStream st = RemoteStream(ProcStorageVolUpload, w =>
        {
            WriteVol(w, v);
            w.WriteUInt64(0);       // offset
            w.WriteUInt64(length);
            w.WriteUInt32(0);
        });
        byte[] buffer = new byte[StorageStreamChunk];
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

                st.Write(buffer.AsSpan(0, got));
                sent += (ulong)got;
                progress?.Invoke(sent);
            }

            st.Finish();
        }
        catch
        {
            AbortQuietly(st);
            throw;
        }
    }

    public ulong DownloadStorageVolume(StorageVolumeInfo volume, Stream destination, Action<ulong>? progress, CancellationToken cancel)
    {
        StorageVolRef v = VolumeByKey(volume);
        RpcStream st = RemoteStream(ProcStorageVolDownload, w =>
        {
            WriteVol(w, v);
            w.WriteUInt64(0);       // offset
            w.WriteUInt64(0);       // length: all of it
            w.WriteUInt32(0);
        });
        byte[] buffer = new byte[StorageStreamChunk];
        ulong received = 0;
        try
        {
            while (true)
            {
                cancel.ThrowIfCancellationRequested();
                int n = st.Read(buffer, cancel);
                if (n == 0)
                {
                    break;
                }

                destination.Write(buffer, 0, n);
                received += (ulong)n;
                progress?.Invoke(received);
            }

            st.Finish();
            return received;
        }
        catch
        {
            AbortQuietly(st);
            throw;
        }
    }

    // ---------------- storage helpers ----------------

    private static void AbortQuietly(RpcStream st)
    {
        try
        {
            st.Abort();
        }
        catch (Exception e) when (e is LibvirtException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // like virStreamAbort's result in the native backend: the first error is the one reported
        }
    }

    private IReadOnlyList<StoragePoolRef> ListAllPools()
        => Remote(ProcStorageListAllPools, w =>
        {
            w.WriteInt32(1);    // need_results
            w.WriteUInt32(0);
        }, r =>
        {
            IReadOnlyList<StoragePoolRef> list = r.ReadArray(ReadPool, StoragePoolListMax);
            _ = r.ReadUInt32();
            return list;
        });

    private void OnPool(string name, int procedure, uint? flags)
    {
        StoragePoolRef p = PoolByName(name);
        Remote(procedure, w =>
        {
            WritePool(w, p);
            if (flags is { } f)
            {
                w.WriteUInt32(f);
            }
        });
    }

    private StoragePoolRef PoolByName(string name)
        => Remote(ProcStoragePoolLookupByName, w => w.WriteString(name), ReadPool);

    private StorageVolRef VolumeByKey(StorageVolumeInfo volume)
        => Remote(ProcStorageVolLookupByKey, w => w.WriteString(volume.Key), ReadVol);

    private string PoolXml(StoragePoolRef p, uint flags)
        => Remote(ProcStoragePoolGetXmlDesc, w => { WritePool(w, p); w.WriteUInt32(flags); }, r => r.ReadString());

    private StoragePoolInfo PoolInfo(StoragePoolRef p)
        => Remote(ProcStoragePoolGetInfo, w => WritePool(w, p), r =>
        {
            int state = r.ReadInt32();      // unsigned char, one XDR word
            ulong capacity = r.ReadUInt64();
            ulong allocation = r.ReadUInt64();
            ulong available = r.ReadUInt64();
            return new StoragePoolInfo(p.Name, p.Uuid, state, capacity, allocation, available);
        });

    /// <summary>The native backend's composition: the pool's name (looked up when unknown), the info, then the path.</summary>
    private StorageVolumeInfo VolumeInfo(StorageVolRef v, string? pool)
    {
        if (pool is null)
        {
            try
            {
                pool = Remote(ProcStoragePoolLookupByVolume, w => WriteVol(w, v), ReadPool).Name;
            }
            catch (LibvirtException)
            {
                // native: a volume outside any pool keeps an empty pool name
            }
        }

        (int type, ulong capacity, ulong allocation) = Remote(ProcStorageVolGetInfo, w => WriteVol(w, v), r =>
        {
            int t = r.ReadInt32();          // char, one XDR word
            ulong c = r.ReadUInt64();
            ulong a = r.ReadUInt64();
            return (t, c, a);
        });
        string path;
        try
        {
            path = Remote(ProcStorageVolGetPath, w => WriteVol(w, v), r => r.ReadString());
        }
        catch (LibvirtException)
        {
            path = string.Empty;    // native: virStorageVolGetPath's NULL becomes an empty path
        }

        return new StorageVolumeInfo(pool ?? string.Empty, v.Name, v.Key, path, type, capacity, allocation);
    }

    /// <summary>A best-effort call: the default value when libvirt reports an error (the native backend ignores those results).</summary>
    private T? TryRemote<T>(int procedure, Action<XdrWriter>? args, Func<XdrReader, T> ret)
    {
        try
        {
            return Remote(procedure, args, ret);
        }
        catch (LibvirtException e) when (!e.IsConnectionFailure)
        {
            return default;
        }
    }

    private static void WritePool(XdrWriter w, StoragePoolRef p)
    {
        w.WriteString(p.Name);
        w.WriteUuid(p.Uuid);
    }

    private static StoragePoolRef ReadPool(XdrReader r) => new(r.ReadString(), r.ReadUuid());

    private static void WriteVol(XdrWriter w, StorageVolRef v)
    {
        w.WriteString(v.Pool);
        w.WriteString(v.Name);
        w.WriteString(v.Key);
    }

    private static StorageVolRef ReadVol(XdrReader r) => new(r.ReadString(), r.ReadString(), r.ReadString());
}
