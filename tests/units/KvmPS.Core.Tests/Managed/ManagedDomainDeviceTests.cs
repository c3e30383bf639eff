using System.Text.Json;
using System.Xml.Linq;
using KvmPS.Core.Backend;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Tests.Managed;

/// <summary>
/// A running firmware-only guest on qemu:///system with a qcow2 disk, a NIC on an isolated test network
/// and a guest-agent channel (no agent answers: the guest has no OS), shared by the tests of one class.
/// Everything is created through the native backend, so the managed calls under test start from known state.
/// </summary>
public sealed class SystemVmFixture : IDisposable
{
    public SystemVmFixture()
    {
        Prefix = ManagedParity.NewName("dv");
        Dir = Path.Combine(Path.GetTempPath(), Prefix);
        Bridge = "kt" + Guid.NewGuid().ToString("N")[..8];
        Mac = $"52:54:00:{Random.Shared.Next(256):x2}:{Random.Shared.Next(256):x2}:{Random.Shared.Next(256):x2}";
        Available = ManagedParity.DaemonAvailable && ManagedParity.SystemAvailable;
        if (!Available)
        {
            return;
        }

        Native = ManagedParity.OpenNative(ManagedParity.SystemUri);
        Managed = ManagedParity.OpenManaged(ManagedParity.SystemUri);
        try
        {
            Native.DefineAndStartStoragePool(new XElement("pool", new XAttribute("type", "dir"),
                new XElement("name", Pool), new XElement("target", new XElement("path", Dir))).ToString(), build: true, autostart: false);
            Disk = Native.CreateStorageVolume(Pool, Volume("disk.qcow2", 64 * 1024 * 1024, "qcow2"), 0);
            Extra = Native.CreateStorageVolume(Pool, Volume("extra.raw", 1024 * 1024, "raw"), 0);
            StartNetwork();

            var cfg = new DomainConfig
            {
                Name = Prefix + "-vm",
                DomainType = File.Exists("/dev/kvm") ? "kvm" : "qemu",
                MaxMemoryKiB = 128 * 1024,
                MemoryKiB = 128 * 1024,
                GuestAgentChannel = true,
            };
            cfg.Disks.Add(new KvmVmDisk { Target = "vda", Bus = "virtio", Device = "disk", Format = "qcow2", Path = Disk.Path, SourceType = "file" });
            cfg.NetworkAdapters.Add(new KvmVmNetworkAdapter { Type = "network", Source = Network, MacAddress = Mac, Model = "virtio" });
            Vm = Native.DefineDomain(DomainXml.Build(cfg), 0);
            Native.CreateDomain(Vm, 0);
            Vm = Native.LookupDomainByUuid(Vm.Uuid);
            WriteLease();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public bool Available { get; }

    public string Prefix { get; }

    public string Dir { get; }

    public string Pool => Prefix + "-pool";

    public string Network => Prefix + "-net";

    public string Bridge { get; }

    public string Mac { get; }

    public string LeaseAddress { get; private set; } = string.Empty;

    public ILibvirtConnection Native { get; } = null!;

    public ILibvirtConnection Managed { get; } = null!;

    public DomainRef Vm { get; private set; }

    public StorageVolumeInfo Disk { get; } = null!;

    public StorageVolumeInfo Extra { get; } = null!;

    private int _subnet;

    private static string Volume(string name, ulong bytes, string format)
        => new XElement("volume", new XElement("name", name),
            new XElement("capacity", new XAttribute("unit", "bytes"), bytes),
            new XElement("target", new XElement("format", new XAttribute("type", format)),
                format == "qcow2" ? new XElement("compat", "1.1") : null)).ToString();   // bitmaps (checkpoints) need qcow2 v3

    /// <summary>An isolated network on a random private subnet (another one when that subnet is taken).</summary>
    private void StartNetwork()
    {
        for (int attempt = 0; ; attempt++)
        {
            _subnet = Random.Shared.Next(2, 250);
            string xml = new XElement("network",
                new XElement("name", Network),
                new XElement("bridge", new XAttribute("name", Bridge)),
                new XElement("ip", new XAttribute("address", $"10.251.{_subnet}.1"), new XAttribute("netmask", "255.255.255.0"),
                    new XElement("dhcp", new XElement("range", new XAttribute("start", $"10.251.{_subnet}.100"), new XAttribute("end", $"10.251.{_subnet}.200"))))).ToString();
            Native.DefineNetwork(xml);
            try
            {
                Native.StartNetwork(Network);
                return;
            }
            catch (LibvirtException) when (attempt < 4)
            {
                Native.UndefineNetwork(Network);
            }
        }
    }

    /// <summary>
    /// Puts one lease for the guest's MAC into the network's lease status file (what libvirt's lease helper
    /// writes for dnsmasq): the guest has no OS to ask for one, but libvirt reports the file's leases.
    /// </summary>
    private void WriteLease()
    {
        LeaseAddress = $"10.251.{_subnet}.150";
        var lease = new Dictionary<string, object>
        {
            ["ip-address"] = LeaseAddress,
            ["mac-address"] = Mac,
            ["hostname"] = "kvmps-guest",
            ["client-id"] = "01:" + Mac,
            ["expiry-time"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 3600,
        };
        File.WriteAllText(LeaseFile, JsonSerializer.Serialize(new[] { lease }));
    }

    private string LeaseFile => $"/var/lib/libvirt/dnsmasq/{Bridge}.status";

    public void Dispose()
    {
        if (Native is null)
        {
            return;
        }

        if (Vm.Uuid != Guid.Empty)
        {
            ManagedParity.Quietly(() => Native.DestroyDomain(Vm, 0));
            ManagedParity.Quietly(() => Native.UndefineDomain(Vm, DomainUndefineFlags.CheckpointsMetadata | DomainUndefineFlags.SnapshotsMetadata | DomainUndefineFlags.Nvram));
        }

        ManagedParity.Quietly(() => Native.StopNetwork(Network));
        ManagedParity.Quietly(() => Native.UndefineNetwork(Network));
        ManagedParity.Quietly(() => File.Delete(LeaseFile));
        ManagedParity.Quietly(() =>
        {
            foreach (StorageVolumeInfo v in Native.ListStorageVolumes(Pool))
            {
                Native.DeleteStorageVolume(v);
            }
        });
        ManagedParity.Quietly(() => Native.StopStoragePool(Pool));
        ManagedParity.Quietly(() => Native.UndefineStoragePool(Pool));
        ManagedParity.Quietly(() => Directory.Delete(Dir, recursive: true));
        Managed?.Dispose();
        Native.Dispose();
    }
}

/// <summary>Devices, interface addresses, leases, the guest agent, jobs, backups and checkpoints: managed vs native on qemu:///system.</summary>
public sealed class ManagedDomainDeviceTests : IClassFixture<SystemVmFixture>
{
    private const int VirDomainJobNone = 0;
    private const int VirDomainJobCompleted = 3;
    private readonly SystemVmFixture _f;

    public ManagedDomainDeviceTests(SystemVmFixture fixture) => _f = fixture;

    private (ILibvirtConnection Native, ILibvirtConnection Managed) Both()
    {
        Skip.IfNot(_f.Available, "no qemu:///system on this machine");
        return (_f.Native, _f.Managed);
    }

    private DomainRef Ghost => new(_f.Prefix + "-ghost", Guid.NewGuid(), -1);

    private static void SameInterfaces(IReadOnlyList<GuestInterface> expected, IReadOnlyList<GuestInterface> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Name, actual[i].Name);
            Assert.Equal(expected[i].MacAddress, actual[i].MacAddress);
            Assert.Equal(expected[i].Addresses, actual[i].Addresses);
        }
    }

    [SkippableFact]
    public void NetworkLeases_MatchNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        IReadOnlyList<NetworkLease> leases = m.GetNetworkLeases(_f.Network);
        Assert.Equal(n.GetNetworkLeases(_f.Network), leases);
        NetworkLease l = Assert.Single(leases);
        Assert.Equal(_f.Bridge, l.Interface);
        Assert.Equal(_f.LeaseAddress, l.IPAddress);
        Assert.Equal(_f.Mac, l.MacAddress);
        Assert.Equal(24, l.Prefix);
        Assert.Equal(0, l.Type);
        Assert.Equal("kvmps-guest", l.HostName);
        Assert.Equal("01:" + _f.Mac, l.ClientId);
        Assert.NotNull(l.Expiry);
        Assert.InRange(l.Expiry!.Value, DateTime.Now.AddMinutes(50), DateTime.Now.AddMinutes(70));
    }

    [SkippableFact]
    public void InterfaceAddresses_FromEachSource_MatchNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        IReadOnlyList<GuestInterface> lease = m.GetInterfaceAddresses(_f.Vm, 0);
        SameInterfaces(n.GetInterfaceAddresses(_f.Vm, 0), lease);
        GuestInterface i = Assert.Single(lease);
        Assert.Equal(_f.Mac, i.MacAddress);
        Assert.StartsWith("vnet", i.Name, StringComparison.Ordinal);
        Assert.Equal([(0, _f.LeaseAddress, 24)], i.Addresses);

        // The ARP table: whatever the host gives (some containers cannot read it), both backends give the same.
        ManagedParity.SameOutcome(() => n.GetInterfaceAddresses(_f.Vm, 2), () => m.GetInterfaceAddresses(_f.Vm, 2), SameInterfaces);
        // The agent channel exists but nothing answers in a guest without an OS.
        ManagedParity.SameError(() => n.GetInterfaceAddresses(_f.Vm, 1), () => m.GetInterfaceAddresses(_f.Vm, 1));
        ManagedParity.SameError(() => n.GetInterfaceAddresses(_f.Vm, 7), () => m.GetInterfaceAddresses(_f.Vm, 7));
    }

    [SkippableFact]
    public void GuestAgentCalls_FailLikeNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        LibvirtException e = ManagedParity.SameError(
            () => n.QemuAgentCommand(_f.Vm, """{"execute":"guest-ping"}""", 1),
            () => m.QemuAgentCommand(_f.Vm, """{"execute":"guest-ping"}""", 1));
        Assert.Equal(LibvirtErrorCode.AgentUnresponsive, e.Code);
        ManagedParity.SameError(() => n.GetGuestInfo(_f.Vm, 0), () => m.GetGuestInfo(_f.Vm, 0));
        ManagedParity.SameError(() => n.FreezeFileSystems(_f.Vm), () => m.FreezeFileSystems(_f.Vm));
        ManagedParity.SameError(() => n.ThawFileSystems(_f.Vm), () => m.ThawFileSystems(_f.Vm));
        Assert.True(m.IsAlive());
    }

    [SkippableFact]
    public void MissingDomain_FailsLikeNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        DomainRef ghost = Ghost;
        LibvirtException e = ManagedParity.SameError(() => n.QemuAgentCommand(ghost, "{}", 1), () => m.QemuAgentCommand(ghost, "{}", 1));
        Assert.Equal(LibvirtErrorCode.NoDomain, e.Code);
        ManagedParity.SameError(() => n.GetGuestInfo(ghost, 0), () => m.GetGuestInfo(ghost, 0));
        ManagedParity.SameError(() => n.GetJobStats(ghost, false), () => m.GetJobStats(ghost, false));
        ManagedParity.SameError(() => n.AbortJob(ghost), () => m.AbortJob(ghost));
        ManagedParity.SameError(() => n.ListCheckpointNames(ghost), () => m.ListCheckpointNames(ghost));
        ManagedParity.SameError(() => n.DeleteCheckpoint(ghost, "x", 0), () => m.DeleteCheckpoint(ghost, "x", 0));
        ManagedParity.SameError(() => n.BeginBackup(ghost, "<domainbackup/>", null, 0), () => m.BeginBackup(ghost, "<domainbackup/>", null, 0));
        ManagedParity.SameError(() => n.FreezeFileSystems(ghost), () => m.FreezeFileSystems(ghost));
        ManagedParity.SameError(() => n.AttachDevice(ghost, "<disk/>", DomainModificationFlags.Live), () => m.AttachDevice(ghost, "<disk/>", DomainModificationFlags.Live));
        ManagedParity.SameError(() => n.ResizeBlockDevice(ghost, "vda", 1), () => m.ResizeBlockDevice(ghost, "vda", 1));
        ManagedParity.SameError(() => n.GetInterfaceAddresses(ghost, 0), () => m.GetInterfaceAddresses(ghost, 0));
    }

    [SkippableFact]
    public void JobStats_WithoutAJob_MatchNative_AndAbortFailsLikeNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        (int type, IReadOnlyList<TypedParameter> stats) = m.GetJobStats(_f.Vm, completed: false);
        (int nType, IReadOnlyList<TypedParameter> nStats) = n.GetJobStats(_f.Vm, completed: false);
        Assert.Equal(VirDomainJobNone, type);
        Assert.Equal(nType, type);
        Assert.Equal(nStats, stats);
        LibvirtException e = ManagedParity.SameError(() => n.AbortJob(_f.Vm), () => m.AbortJob(_f.Vm));
        Assert.Equal(LibvirtErrorCode.OperationInvalid, e.Code);
    }

    [SkippableFact]
    public void Devices_AttachUpdateDetachResize_AreWhatNativeSees()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        XElement Config() => XElement.Parse(n.GetDomainXml(_f.Vm, DomainXmlFlags.Inactive));
        XElement? Target(XElement dom, string dev)
            => dom.Element("devices")!.Elements("disk").FirstOrDefault(d => (string?)d.Element("target")?.Attribute("dev") == dev);

        // A data disk in the configuration.
        var disk = new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "disk"),
            new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", "raw")),
            new XElement("source", new XAttribute("file", _f.Extra.Path)),
            new XElement("target", new XAttribute("dev", "vdb"), new XAttribute("bus", "virtio")));
        m.AttachDevice(_f.Vm, disk.ToString(), DomainModificationFlags.Config);
        Assert.Equal(_f.Extra.Path, (string?)Target(Config(), "vdb")?.Element("source")?.Attribute("file"));
        Assert.Null(Target(XElement.Parse(n.GetDomainXml(_f.Vm, DomainXmlFlags.None)), "vdb"));
        ManagedParity.SameError(
            () => n.AttachDevice(_f.Vm, disk.ToString(), DomainModificationFlags.Config),
            () => m.AttachDevice(_f.Vm, disk.ToString(), DomainModificationFlags.Config));
        m.DetachDevice(_f.Vm, disk.ToString(), DomainModificationFlags.Config);
        Assert.Null(Target(Config(), "vdb"));
        ManagedParity.SameError(
            () => n.DetachDevice(_f.Vm, disk.ToString(), DomainModificationFlags.Config),
            () => m.DetachDevice(_f.Vm, disk.ToString(), DomainModificationFlags.Config));

        // An empty CD-ROM drive, then a medium through UpdateDevice.
        var cdrom = new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "cdrom"),
            new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", "raw")),
            new XElement("target", new XAttribute("dev", "sdb"), new XAttribute("bus", "sata")),
            new XElement("readonly"));
        m.AttachDevice(_f.Vm, cdrom.ToString(), DomainModificationFlags.Config);
        Assert.Null(Target(Config(), "sdb")!.Element("source"));
        cdrom.Add(new XElement("source", new XAttribute("file", _f.Extra.Path)));
        m.UpdateDevice(_f.Vm, cdrom.ToString(), DomainModificationFlags.Config);
        Assert.Equal(_f.Extra.Path, (string?)Target(Config(), "sdb")!.Element("source")?.Attribute("file"));
        m.DetachDevice(_f.Vm, cdrom.ToString(), DomainModificationFlags.Config);
        Assert.Null(Target(Config(), "sdb"));

        // Bad XML and an impossible live update fail the same way through both backends.
        ManagedParity.SameError(() => n.AttachDevice(_f.Vm, "<disk", DomainModificationFlags.Live), () => m.AttachDevice(_f.Vm, "<disk", DomainModificationFlags.Live));
        ManagedParity.SameError(() => n.UpdateDevice(_f.Vm, cdrom.ToString(), DomainModificationFlags.Live), () => m.UpdateDevice(_f.Vm, cdrom.ToString(), DomainModificationFlags.Live));

        // Growing the running guest's disk.
        ulong before = n.LookupStorageVolume(_f.Pool, "disk.qcow2")!.CapacityBytes;
        m.ResizeBlockDevice(_f.Vm, "vda", before + (16 * 1024 * 1024));
        Assert.Equal(before + (16 * 1024 * 1024), n.LookupStorageVolume(_f.Pool, "disk.qcow2")!.CapacityBytes);
        ManagedParity.SameError(() => n.ResizeBlockDevice(_f.Vm, "vdz", 1 << 20), () => m.ResizeBlockDevice(_f.Vm, "vdz", 1 << 20));
    }

    [SkippableFact]
    public void Backup_WithACheckpoint_RunsToCompletion_AndCheckpointsMatchNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        string target = Path.Combine(_f.Dir, _f.Prefix + "-backup.qcow2");
        string cp = _f.Prefix + "-cp";
        string backupXml = new XElement("domainbackup",
            new XElement("disks",
                new XElement("disk", new XAttribute("name", "vda"), new XAttribute("type", "file"),
                    new XElement("target", new XAttribute("file", target)),
                    new XElement("driver", new XAttribute("type", "qcow2"))))).ToString();
        string checkpointXml = new XElement("domaincheckpoint",
            new XElement("name", cp),
            new XElement("disks", new XElement("disk", new XAttribute("name", "vda"), new XAttribute("checkpoint", "bitmap")))).ToString();

        m.BeginBackup(_f.Vm, backupXml, checkpointXml, 0);
        Assert.Equal([cp], m.ListCheckpointNames(_f.Vm));
        Assert.Equal(n.ListCheckpointNames(_f.Vm), m.ListCheckpointNames(_f.Vm));

        DateTime deadline = DateTime.UtcNow.AddSeconds(60);
        while (m.GetJobStats(_f.Vm, completed: false).Type != VirDomainJobNone)
        {
            Assert.True(DateTime.UtcNow < deadline, "the backup job did not finish within 60 s");
            Thread.Sleep(200);
        }

        (int type, IReadOnlyList<TypedParameter> stats) = m.GetJobStats(_f.Vm, completed: true);
        Assert.Equal(VirDomainJobCompleted, type);
        Assert.Contains(stats, p => p.Name == "operation");
        Assert.True(File.Exists(target));
        Assert.True(new FileInfo(target).Length > 0);

        // A second backup with the same checkpoint name is refused the same way by both backends.
        ManagedParity.SameError(
            () => n.BeginBackup(_f.Vm, backupXml, checkpointXml, 0),
            () => m.BeginBackup(_f.Vm, backupXml, checkpointXml, 0));

        m.DeleteCheckpoint(_f.Vm, cp, 0);
        Assert.Empty(n.ListCheckpointNames(_f.Vm));
        Assert.Empty(m.ListCheckpointNames(_f.Vm));
        LibvirtException e = ManagedParity.SameError(() => n.DeleteCheckpoint(_f.Vm, cp, 0), () => m.DeleteCheckpoint(_f.Vm, cp, 0));
        Assert.Equal(LibvirtErrorCode.NoDomainCheckpoint, e.Code);
    }
}
