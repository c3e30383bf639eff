using System.Security.Cryptography;
using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Tests.Managed;

/// <summary>Storage through the managed backend compared with the native backend, on the daemon's test driver.</summary>
public sealed class ManagedStorageTests : IDisposable
{
    private readonly ILibvirtConnection? _native;
    private readonly ILibvirtConnection? _managed;
    private readonly string _prefix = ManagedParity.NewName("st");

    public ManagedStorageTests()
    {
        if (ManagedParity.DaemonAvailable)
        {
            _native = ManagedParity.OpenNative(ManagedParity.NativeTestUri);
            _managed = ManagedParity.OpenManaged(ManagedParity.ManagedTestUri);
        }
    }

    public void Dispose()
    {
        if (_native is not null)
        {
            foreach (string pool in _native.ListStoragePoolNames().Where(n => n.StartsWith(_prefix, StringComparison.Ordinal)))
            {
                ManagedParity.Quietly(() => _native.StopStoragePool(pool));
                ManagedParity.Quietly(() => _native.UndefineStoragePool(pool));
            }
        }

        _managed?.Dispose();
        _native?.Dispose();
    }

    private (ILibvirtConnection Native, ILibvirtConnection Managed) Both()
    {
        Skip.IfNot(ManagedParity.DaemonAvailable, "no libvirtd socket on this machine");
        return (_native!, _managed!);
    }

    private static string PoolXml(string name, string path)
        => new XElement("pool", new XAttribute("type", "dir"),
            new XElement("name", name),
            new XElement("target", new XElement("path", path))).ToString();

    private static string VolumeXml(string name, ulong bytes, string format = "raw")
        => new XElement("volume",
            new XElement("name", name),
            new XElement("capacity", new XAttribute("unit", "bytes"), bytes),
            new XElement("target", new XElement("format", new XAttribute("type", format)))).ToString();

    [SkippableFact]
    public void ListsPoolsAndNames_LikeNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        Assert.Contains("default-pool", m.ListStoragePoolNames());
        Assert.Equal(n.ListStoragePoolNames().Order(), m.ListStoragePoolNames().Order());

        StoragePoolData mine = m.ListStoragePools().Single(p => p.Info.Name == "default-pool");
        StoragePoolData theirs = n.ListStoragePools().Single(p => p.Info.Name == "default-pool");
        Assert.Equal(theirs, mine);
        Assert.True(mine.Info.IsActive);
        Assert.True(mine.Persistent);
        Assert.NotEqual(Guid.Empty, mine.Info.Uuid);
        Assert.Contains("<name>default-pool</name>", mine.Xml, StringComparison.Ordinal);
        Assert.Equal(n.GetStoragePool("default-pool"), m.GetStoragePool("default-pool"));
        Assert.Equal(n.GetStoragePoolXml("default-pool", 0), m.GetStoragePoolXml("default-pool", 0));
    }

    [SkippableFact]
    public void PoolLifecycle_ThroughManaged_IsWhatNativeSees()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        string name = _prefix + "-life";
        m.DefineStoragePool(PoolXml(name, "/tmp/" + name));
        StoragePoolInfo defined = n.GetStoragePool(name);
        Assert.False(defined.IsActive);
        Assert.Equal(defined, m.GetStoragePool(name));
        StoragePoolData listed = m.ListStoragePools().Single(p => p.Info.Name == name);
        Assert.Equal(0, listed.VolumeCount);
        Assert.True(listed.Persistent);
        Assert.False(listed.Autostart);

        m.BuildStoragePool(name, 0);
        m.StartStoragePool(name);
        m.SetStoragePoolAutostart(name, true);
        Assert.True(n.GetStoragePool(name).IsActive);
        Assert.True(n.ListStoragePools().Single(p => p.Info.Name == name).Autostart);
        m.RefreshStoragePool(name);

        m.StopStoragePool(name);
        Assert.False(n.GetStoragePool(name).IsActive);
        m.DeleteStoragePoolStorage(name, 0);
        m.UndefineStoragePool(name);
        Assert.DoesNotContain(name, n.ListStoragePoolNames());
    }

    [SkippableFact]
    public void DefineAndStart_BuildsStartsAutostarts_AndRefusesADuplicate()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        string name = _prefix + "-das";
        m.DefineAndStartStoragePool(PoolXml(name, "/tmp/" + name), build: true, autostart: true);
        StoragePoolData p = n.ListStoragePools().Single(x => x.Info.Name == name);
        Assert.True(p.Info.IsActive);
        Assert.True(p.Autostart);
        Assert.Equal(p, m.ListStoragePools().Single(x => x.Info.Name == name));

        // A second pool on the same name is refused at define time: nothing changes.
        Assert.Throws<LibvirtException>(() => m.DefineAndStartStoragePool(PoolXml(name, "/tmp/" + name + "-2"), build: false, autostart: false));
        Assert.Equal("/tmp/" + name, XElement.Parse(n.GetStoragePoolXml(name, 0)).Element("target")!.Element("path")!.Value);
    }

    [SkippableFact]
    public void Volumes_CreateLookupListCloneDelete_LikeNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        string pool = _prefix + "-vols";
        m.DefineAndStartStoragePool(PoolXml(pool, "/tmp/" + pool), build: false, autostart: false);

        StorageVolumeInfo a = m.CreateStorageVolume(pool, VolumeXml("a.img", 1024 * 1024), 0);
        Assert.Equal(pool, a.Pool);
        Assert.Equal("a.img", a.Name);
        Assert.Equal(1024UL * 1024, a.CapacityBytes);
        Assert.Equal($"/tmp/{pool}/a.img", a.Path);
        Assert.Equal(a, n.LookupStorageVolume(pool, "a.img"));
        Assert.Equal(n.LookupStorageVolume(pool, "a.img"), m.LookupStorageVolume(pool, "a.img"));
        Assert.Equal(n.LookupStorageVolumeByPath(a.Path), m.LookupStorageVolumeByPath(a.Path));
        Assert.Equal(pool, m.LookupStorageVolumeByPath(a.Path)!.Pool);
        Assert.Equal(n.GetStorageVolumeXml(a), m.GetStorageVolumeXml(a));

        StorageVolumeInfo b = m.CloneStorageVolume(pool, VolumeXml("b.img", 1024 * 1024), a, 0);
        Assert.Equal("b.img", b.Name);
        Assert.Equal(n.ListStorageVolumes(pool), m.ListStorageVolumes(pool));
        Assert.Equal(["a.img", "b.img"], m.ListStorageVolumes(pool).Select(v => v.Name).Order());
        Assert.Equal(2, m.ListStoragePools().Single(p => p.Info.Name == pool).VolumeCount);
        Assert.Equal(n.ListStoragePools().Single(p => p.Info.Name == pool), m.ListStoragePools().Single(p => p.Info.Name == pool));

        m.DeleteStorageVolume(a);
        Assert.Null(n.LookupStorageVolume(pool, "a.img"));
        Assert.Null(m.LookupStorageVolume(pool, "a.img"));
        Assert.Null(m.LookupStorageVolumeByPath(a.Path));
        Assert.Null(n.LookupStorageVolumeByPath(a.Path));
        Assert.Single(m.ListStorageVolumes(pool));
    }

    [SkippableFact]
    public void MissingObjects_FailLikeNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        string missing = _prefix + "-nope";
        LibvirtException e = ManagedParity.SameError(() => n.GetStoragePool(missing), () => m.GetStoragePool(missing));
        Assert.Equal(LibvirtErrorCode.NoStoragePool, e.Code);
        ManagedParity.SameError(() => n.StartStoragePool(missing), () => m.StartStoragePool(missing));
        ManagedParity.SameError(() => n.ListStorageVolumes(missing), () => m.ListStorageVolumes(missing));
        ManagedParity.SameError(() => n.LookupStorageVolume(missing, "x"), () => m.LookupStorageVolume(missing, "x"));
        var ghost = new StorageVolumeInfo("default-pool", "ghost.img", "/nowhere/ghost.img", "/nowhere/ghost.img", 0, 0, 0);
        e = ManagedParity.SameError(() => n.GetStorageVolumeXml(ghost), () => m.GetStorageVolumeXml(ghost));
        Assert.Equal(LibvirtErrorCode.NoStorageVol, e.Code);
        ManagedParity.SameError(() => n.DeleteStorageVolume(ghost), () => m.DeleteStorageVolume(ghost));
        Assert.Null(m.LookupStorageVolume("default-pool", "ghost.img"));
        Assert.Null(m.LookupStorageVolumeByPath("/nowhere/ghost.img"));
        // The test driver has no upload/download/resize: the daemon's error comes back unchanged.
        StorageVolumeInfo v = m.CreateStorageVolume("default-pool", VolumeXml(_prefix + "-u.img", 4096), 0);
        try
        {
            ManagedParity.SameError(() => n.ResizeStorageVolume(v, 8192, 0), () => m.ResizeStorageVolume(v, 8192, 0));
            ManagedParity.SameError(
                () => n.UploadStorageVolume(v, new MemoryStream(new byte[4096]), 4096, null, default),
                () => m.UploadStorageVolume(v, new MemoryStream(new byte[4096]), 4096, null, default));
            Assert.True(m.IsAlive());
            Assert.Equal(v, m.LookupStorageVolume("default-pool", v.Name));
        }
        finally
        {
            m.DeleteStorageVolume(v);
        }
    }
}

/// <summary>Upload, download and resize through the managed backend on qemu:///system, compared with the native backend.</summary>
public sealed class ManagedVolumeStreamTests : IDisposable
{
    private readonly string _prefix = ManagedParity.NewName("vs");
    private readonly string _dir;
    private readonly ILibvirtConnection? _native;
    private readonly ILibvirtConnection? _managed;

    public ManagedVolumeStreamTests()
    {
        _dir = Path.Combine(Path.GetTempPath(), _prefix);
        if (ManagedParity.DaemonAvailable && ManagedParity.SystemAvailable)
        {
            _native = ManagedParity.OpenNative(ManagedParity.SystemUri);
            _managed = ManagedParity.OpenManaged(ManagedParity.SystemUri);
            _managed.DefineAndStartStoragePool(new XElement("pool", new XAttribute("type", "dir"),
                new XElement("name", Pool),
                new XElement("target", new XElement("path", _dir))).ToString(), build: true, autostart: false);
        }
    }

    private string Pool => _prefix + "-pool";

    public void Dispose()
    {
        if (_native is not null)
        {
            ManagedParity.Quietly(() =>
            {
                foreach (StorageVolumeInfo v in _native.ListStorageVolumes(Pool))
                {
                    _native.DeleteStorageVolume(v);
                }
            });
            ManagedParity.Quietly(() => _native.StopStoragePool(Pool));
            ManagedParity.Quietly(() => _native.UndefineStoragePool(Pool));
        }

        _managed?.Dispose();
        _native?.Dispose();
        ManagedParity.Quietly(() => Directory.Delete(_dir, recursive: true));
    }

    private (ILibvirtConnection Native, ILibvirtConnection Managed) Both()
    {
        Skip.IfNot(ManagedParity.DaemonAvailable && ManagedParity.SystemAvailable, "no qemu:///system on this machine");
        return (_native!, _managed!);
    }

    private static string RawVolume(string name, ulong bytes)
        => new XElement("volume",
            new XElement("name", name),
            new XElement("capacity", new XAttribute("unit", "bytes"), bytes),
            new XElement("target", new XElement("format", new XAttribute("type", "raw")))).ToString();

    private static byte[] RandomBytes(int n)
    {
        byte[] b = new byte[n];
        new Random(n).NextBytes(b);
        return b;
    }

    [SkippableFact]
    public void UploadThenDownload_RoundTrips_AndNativeReadsTheSameBytes()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        const int size = (3 * 1024 * 1024) + 12288;     // not a multiple of the 256 KiB chunk
        byte[] data = RandomBytes(size);
        StorageVolumeInfo v = m.CreateStorageVolume(Pool, RawVolume("up.raw", size), 0);

        var progress = new List<ulong>();
        m.UploadStorageVolume(v, new MemoryStream(data), (ulong)size, progress.Add, CancellationToken.None);
        Assert.Equal((ulong)size, progress[^1]);
        Assert.True(progress.Count >= 13);
        Assert.Equal(progress.Order(), progress);

        var managedCopy = new MemoryStream();
        var got = new List<ulong>();
        ulong received = m.DownloadStorageVolume(v, managedCopy, got.Add, CancellationToken.None);
        var nativeCopy = new MemoryStream();
        ulong nativeReceived = n.DownloadStorageVolume(v, nativeCopy, null, CancellationToken.None);

        Assert.Equal((ulong)size, received);
        Assert.Equal(nativeReceived, received);
        Assert.Equal(received, got[^1]);
        string expected = Convert.ToHexString(SHA256.HashData(data));
        Assert.Equal(expected, Convert.ToHexString(SHA256.HashData(managedCopy.ToArray())));
        Assert.Equal(expected, Convert.ToHexString(SHA256.HashData(nativeCopy.ToArray())));
        Assert.Equal(expected, Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(v.Path))));
    }

    [SkippableFact]
    public void NativeUpload_ManagedDownload_Agree()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        const int size = 1024 * 1024;
        byte[] data = RandomBytes(size);
        data[0] ^= 0x5a;
        StorageVolumeInfo v = n.CreateStorageVolume(Pool, RawVolume("native.raw", size), 0);
        n.UploadStorageVolume(v, new MemoryStream(data), size, null, CancellationToken.None);
        var copy = new MemoryStream();
        Assert.Equal((ulong)size, m.DownloadStorageVolume(v, copy, null, CancellationToken.None));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(copy.ToArray()));
    }

    [SkippableFact]
    public void CancelledTransfers_ThrowOperationCanceled_AndLeaveTheConnectionUsable()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        const int size = 4 * 1024 * 1024;
        StorageVolumeInfo v = m.CreateStorageVolume(Pool, RawVolume("cancel.raw", size), 0);

        using (var cts = new CancellationTokenSource())
        {
            Assert.ThrowsAny<OperationCanceledException>(() =>
                m.UploadStorageVolume(v, new MemoryStream(RandomBytes(size)), size, sent => cts.Cancel(), cts.Token));
        }

        Assert.True(m.IsAlive());
        Assert.Equal(n.LookupStorageVolume(Pool, "cancel.raw"), m.LookupStorageVolume(Pool, "cancel.raw"));

        using (var cts = new CancellationTokenSource())
        {
            var sink = new MemoryStream();
            Assert.ThrowsAny<OperationCanceledException>(() => m.DownloadStorageVolume(v, sink, got => cts.Cancel(), cts.Token));
            Assert.True(sink.Length < size);
        }

        Assert.True(m.IsAlive());

        // The next transfer on the same connection is clean.
        byte[] data = RandomBytes(size);
        m.UploadStorageVolume(v, new MemoryStream(data), size, null, CancellationToken.None);
        var copy = new MemoryStream();
        Assert.Equal((ulong)size, m.DownloadStorageVolume(v, copy, null, CancellationToken.None));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(copy.ToArray()));
    }

    [SkippableFact]
    public void ShortSource_FailsWithIOException_AndTheStreamIsAborted()
    {
        (_, ILibvirtConnection m) = Both();
        StorageVolumeInfo v = m.CreateStorageVolume(Pool, RawVolume("short.raw", 1024 * 1024), 0);
        IOException e = Assert.Throws<IOException>(() => m.UploadStorageVolume(v, new MemoryStream(new byte[1000]), 1024 * 1024, null, CancellationToken.None));
        Assert.Contains("1000 of 1048576", e.Message, StringComparison.Ordinal);
        Assert.True(m.IsAlive());
        Assert.NotNull(m.LookupStorageVolume(Pool, "short.raw"));
    }

    [SkippableFact]
    public void DefineAndStart_UndefinesThePool_WhenBuildingFails()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        string file = Path.Combine(_dir, "not-a-folder");
        File.WriteAllText(file, "x");
        string name = _prefix + "-bad";
        string xml = new XElement("pool", new XAttribute("type", "dir"),
            new XElement("name", name),
            new XElement("target", new XElement("path", Path.Combine(file, "pool")))).ToString();
        LibvirtException e = Assert.Throws<LibvirtException>(() => m.DefineAndStartStoragePool(xml, build: true, autostart: true));
        Assert.NotEqual(LibvirtErrorCode.NoStoragePool, e.Code);
        Assert.DoesNotContain(name, n.ListStoragePoolNames());
        Assert.DoesNotContain(name, m.ListStoragePoolNames());
    }

    [SkippableFact]
    public void Resize_GrowsTheVolume_LikeNativeReports()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        StorageVolumeInfo v = m.CreateStorageVolume(Pool, RawVolume("grow.raw", 1024 * 1024), 0);
        m.ResizeStorageVolume(v, 3 * 1024 * 1024, 0);
        StorageVolumeInfo after = n.LookupStorageVolume(Pool, "grow.raw")!;
        Assert.Equal(3UL * 1024 * 1024, after.CapacityBytes);
        Assert.Equal(after, m.LookupStorageVolume(Pool, "grow.raw"));
        Assert.Equal(n.GetStorageVolumeXml(after), m.GetStorageVolumeXml(after));
        // Shrinking without the SHRINK flag is refused the same way.
        ManagedParity.SameError(() => n.ResizeStorageVolume(after, 1024, 0), () => m.ResizeStorageVolume(after, 1024, 0));
    }
}
