using KvmPS.Core.Services;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Tests;

public sealed class DomainXmlTests
{
    [Fact]
    public void BuildThenParse_RoundTrips()
    {
        var c = new DomainConfig
        {
            Name = "web</name><name>evil & 'quoted'",
            Uuid = Guid.Parse("11111111-2222-3333-4444-555555555555"),
            DomainType = "qemu",
            Title = "T <1>",
            Description = "multi\nline",
            MaxMemoryKiB = 4 * 1024 * 1024,
            MemoryKiB = 2 * 1024 * 1024,
            CpuCount = 2,
            MaxCpuCount = 4,
            MachineType = "q35",
            Firmware = KvmFirmware.Uefi,
            CpuMode = "host-passthrough",
            SerialConsole = true,
            GuestAgentChannel = true,
            VncListen = "127.0.0.1",
        };
        c.Disks.Add(new KvmVmDisk { SourceType = "file", Target = "vda", Path = "/var/lib/libvirt/images/a.qcow2", Format = "qcow2", Bus = "virtio" });
        c.Disks.Add(new KvmVmDisk { SourceType = "file", Target = "sda", Path = "/iso/seed.iso", Device = "cdrom", Bus = "sata", ReadOnly = true, Format = "raw" });
        c.NetworkAdapters.Add(new KvmVmNetworkAdapter { Type = "network", Source = "isolated", Model = "virtio", MacAddress = "52:54:00:12:34:56" });
        c.NetworkAdapters.Add(new KvmVmNetworkAdapter { Type = "bridge", Source = "br0", Model = "e1000" });

        string xml = DomainXml.Build(c);
        DomainConfig p = DomainXml.Parse(xml);

        Assert.Equal(c.Name, p.Name);
        Assert.Equal(c.Uuid, p.Uuid);
        Assert.Equal("qemu", p.DomainType);
        Assert.Equal(KvmAccelerator.Qemu, p.Accelerator);
        Assert.Equal(c.Title, p.Title);
        Assert.Equal(c.Description, p.Description);
        Assert.Equal(c.MaxMemoryKiB, p.MaxMemoryKiB);
        Assert.Equal(c.MemoryKiB, p.MemoryKiB);
        Assert.Equal(2, p.CpuCount);
        Assert.Equal(4, p.MaxCpuCount);
        Assert.Equal("q35", p.MachineType);
        Assert.Equal(KvmFirmware.Uefi, p.Firmware);
        Assert.Equal("host-passthrough", p.CpuMode);
        Assert.True(p.SerialConsole);
        Assert.True(p.GuestAgentChannel);
        Assert.Equal("127.0.0.1", p.VncListen);
        Assert.Equal(c.Disks, p.Disks);
        Assert.Equal("52:54:00:12:34:56", p.NetworkAdapters[0].MacAddress);
        Assert.Equal("isolated", p.NetworkAdapters[0].Source);
        Assert.Equal("bridge", p.NetworkAdapters[1].Type);
        Assert.Equal("br0", p.NetworkAdapters[1].Source);
        Assert.Single(System.Xml.Linq.XElement.Parse(xml).Elements("name"));
    }

    [Theory]
    [InlineData("<memory unit='KiB'>1024</memory>", 1024UL)]
    [InlineData("<memory>2048</memory>", 2048UL)]
    [InlineData("<memory unit='MiB'>512</memory>", 512UL * 1024)]
    [InlineData("<memory unit='G'>2</memory>", 2UL * 1024 * 1024)]
    [InlineData("<memory unit='GB'>1</memory>", 976562UL)]
    [InlineData("<memory unit='bytes'>1048576</memory>", 1024UL)]
    public void Sizes_AreReadInKiB(string element, ulong kib)
        => Assert.Equal(kib, DomainXml.SizeKiB(System.Xml.Linq.XElement.Parse(element)));

    [Fact]
    public void Parse_RejectsWhatIsNotADomain()
    {
        Assert.Throws<FormatException>(() => DomainXml.Parse("<network/>"));
        Assert.Throws<FormatException>(() => DomainXml.Parse("<domain><name>x"));
    }

    [Fact]
    public void Parse_ReadsPflashLoaderAsUefi()
    {
        DomainConfig c = DomainXml.Parse("<domain type='kvm'><name>u</name><memory>1024</memory><os><type arch='x86_64'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader></os></domain>");
        Assert.Equal(KvmFirmware.Uefi, c.Firmware);
        Assert.Equal(KvmAccelerator.Kvm, c.Accelerator);
        Assert.Equal(1024UL, c.MemoryKiB);
    }
}

public sealed class ByteSizeTests
{
    [Theory]
    [InlineData("2GiB", 2UL * 1024 * 1024 * 1024)]
    [InlineData("2GB", 2UL * 1024 * 1024 * 1024)]
    [InlineData("512MiB", 512UL * 1024 * 1024)]
    [InlineData("512 mb", 512UL * 1024 * 1024)]
    [InlineData("1.5GiB", 1536UL * 1024 * 1024)]
    [InlineData("4096", 4096UL)]
    public void Parses(string text, ulong bytes)
    {
        Assert.True(ByteSize.TryParse(text, out ulong b));
        Assert.Equal(bytes, b);
    }

    [Theory]
    [InlineData("")]
    [InlineData("lots")]
    [InlineData("2XB")]
    [InlineData("-1GB")]
    [InlineData("1.3B")]
    public void RejectsNonsense(string text) => Assert.False(ByteSize.TryParse(text, out _));

    [Theory]
    [InlineData(0UL, "0 B")]
    [InlineData(2UL * 1024 * 1024 * 1024, "2 GiB")]
    [InlineData(1536UL * 1024 * 1024, "1.5 GiB")]
    public void Formats(ulong bytes, string text) => Assert.Equal(text, ByteSize.Format(bytes));
}

public sealed class CapabilityTests
{
    private const string HostCaps = """
        <capabilities><host><cpu><arch>x86_64</arch><model>Skylake</model><vendor>Intel</vendor><feature name='vmx'/></cpu>
        <iommu support='yes'/><topology><cells num='2'/></topology></host>
        <guest><os_type>hvm</os_type><arch name='x86_64'><emulator>/usr/bin/qemu-system-x86_64</emulator>
        <machine maxCpus='255'>pc-i440fx-7.2</machine><machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>
        <machine maxCpus='255' deprecated='yes'>pc-i440fx-1.5</machine><domain type='qemu'/><domain type='kvm'/></arch></guest>
        <guest><os_type>hvm</os_type><arch name='i686'><machine>pc</machine><domain type='qemu'/></arch></guest></capabilities>
        """;

    [Fact]
    public void HostCapabilities_AreParsed()
    {
        HostCapabilities h = CapabilitiesXml.ParseHost(HostCaps);
        Assert.Equal("x86_64", h.Arch);
        Assert.Equal("Intel", h.CpuVendor);
        Assert.Contains("vmx", h.CpuFeatures);
        Assert.True(h.IommuSupport);
        Assert.Equal(2, h.NumaCells);
        Assert.Equal(2, h.Guests.Count);
        Assert.Equal(["qemu", "kvm"], h.Guests[0].DomainTypes);
        Assert.True(h.Guests[0].Machines[2].Deprecated);
    }

    [Fact]
    public void DomainCapabilities_FirmwareIsParsed()
    {
        DomainCapabilities d = CapabilitiesXml.ParseDomain("""
            <domainCapabilities><domain>kvm</domain><machine>pc-q35-7.2</machine><vcpu max='288'/>
            <os supported='yes'><enum name='firmware'><value>efi</value></enum><loader supported='yes'><value>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</value>
            <enum name='type'><value>rom</value><value>pflash</value></enum><enum name='secure'><value>yes</value><value>no</value></enum></loader></os>
            <cpu><mode name='host-passthrough' supported='yes'/><mode name='custom' supported='no'/></cpu></domainCapabilities>
            """);
        Assert.Equal(288, d.MaxVcpus);
        Assert.Equal(["efi"], d.FirmwareValues);
        Assert.Contains("yes", d.LoaderSecure);
        Assert.Equal(["host-passthrough"], d.CpuModes);
    }

    [Fact]
    public void LocalProbe_ReadsAFakeMachine()
    {
        string root = Path.Combine(Path.GetTempPath(), $"kvmps-probe-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "proc"));
            File.WriteAllText(Path.Combine(root, "proc/cpuinfo"), "processor\t: 0\nflags\t\t: fpu vme svm sse2\n");
            Directory.CreateDirectory(Path.Combine(root, "sys/module/kvm_amd/parameters"));
            File.WriteAllText(Path.Combine(root, "sys/module/kvm_amd/parameters/nested"), "1\n");
            Directory.CreateDirectory(Path.Combine(root, "dev/net"));
            File.WriteAllText(Path.Combine(root, "dev/net/tun"), string.Empty);
            var probe = new LocalHostProbe(root);
            Assert.Equal(KvmHardwareVirtualization.AmdV, probe.CpuVirtualization());
            Assert.True(probe.NestedEnabled());
            Assert.Null(probe.IommuGroupsPresent());
            var checks = probe.LocalChecks(true).ToDictionary(c => c.Name);
            Assert.Equal(KvmCheckResult.Fail, checks["/dev/kvm"].Result);
            Assert.Equal(KvmCheckResult.Pass, checks["/dev/net/tun"].Result);
            Assert.Equal(KvmCheckResult.Warn, checks["/dev/vhost-net"].Result);
            Assert.Equal(KvmCheckResult.NotApplicable, checks["/dev/kvm permissions"].Result);   // nothing to open
            Assert.Equal(KvmCheckResult.Pass, checks["Nested virtualization"].Result);
            Assert.Equal(KvmCheckResult.NotApplicable, probe.LocalChecks(null).Single(c => c.Name == "Nested virtualization").Result);
            Assert.All(checks.Values, c => Assert.True(c.IsLocal));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Theory]
    [InlineData("qemu:///system", false)]
    [InlineData("test:///default", false)]
    [InlineData("qemu+ssh://admin@kvm1/system", true)]
    [InlineData("qemu+tcp://localhost/system", false)]
    [InlineData("qemu+tls://10.0.0.5/system", true)]
    public void RemoteUris_AreRecognised(string uri, bool remote) => Assert.Equal(remote, KvmConnection.IsRemoteUri(uri));
}

public sealed class ErrorTests
{
    [Theory]
    [InlineData(LibvirtErrorCode.InternalError, LibvirtErrorDomain.Rpc, true)]
    [InlineData(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc, true)]
    [InlineData(LibvirtErrorCode.NoConnect, LibvirtErrorDomain.None, true)]
    [InlineData(LibvirtErrorCode.NoDomain, LibvirtErrorDomain.Domain, false)]
    [InlineData(LibvirtErrorCode.InternalError, LibvirtErrorDomain.Qemu, false)]
    public void ConnectionFailures_AreRecognised(LibvirtErrorCode code, LibvirtErrorDomain domain, bool expected)
        => Assert.Equal(expected, new LibvirtException(code, domain, "x").IsConnectionFailure);

    [Theory]
    [InlineData(KvmVmState.Running, 1, "Booted")]
    [InlineData(KvmVmState.ShutOff, 2, "Destroyed")]
    [InlineData(KvmVmState.Paused, 1, "User")]
    [InlineData(KvmVmState.ShutOff, 99, "Reason99")]
    public void StateReasons_HaveNames(KvmVmState state, int reason, string name) => Assert.Equal(name, VmService.ReasonName(state, reason));
}

public sealed class SnapshotParseTests
{
    [Fact]
    public void ExternalSnapshotWithMemory_IsParsed()
    {
        using var conn = new KvmConnection("test:///default");
        var vm = new KvmVm(conn, new Backend.DomainRef("web1", Guid.NewGuid(), -1));
        const string xml = """
            <domainsnapshot><name>e1</name><description>before patch</description><state>running</state>
            <parent><name>base</name></parent><creationTime>1700000000</creationTime>
            <memory snapshot='external' file='/var/lib/libvirt/images/web1.e1.mem'/>
            <disks><disk name='vda' snapshot='external' type='file'><source file='/var/lib/libvirt/images/web1.e1'/></disk>
            <disk name='sda' snapshot='no'/></disks><domain type='kvm'><name>web1</name></domain></domainsnapshot>
            """;
        KvmSnapshot s = SnapshotService.Parse(new Backend.SnapshotData("e1", xml, true), vm);
        Assert.Equal(KvmSnapshotKind.External, s.Kind);
        Assert.True(s.HasMemory);
        Assert.Equal("/var/lib/libvirt/images/web1.e1.mem", s.MemoryFile);
        Assert.Equal("base", s.Parent);
        Assert.True(s.IsCurrent);
        Assert.Equal("before patch", s.Description);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000).LocalDateTime, s.CreationTime);
        Assert.Equal("/var/lib/libvirt/images/web1.e1", s.Disks.Single(d => d.Target == "vda").File);
        Assert.Equal("no", s.Disks.Single(d => d.Target == "sda").Snapshot);
    }

    [Fact]
    public void InternalDiskOnlySnapshot_HasNoMemory()
    {
        using var conn = new KvmConnection("test:///default");
        var vm = new KvmVm(conn, new Backend.DomainRef("db1", Guid.NewGuid(), -1));
        const string xml = "<domainsnapshot><name>s</name><state>shutoff</state><creationTime>1</creationTime><memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>";
        KvmSnapshot s = SnapshotService.Parse(new Backend.SnapshotData("s", xml, false), vm);
        Assert.Equal(KvmSnapshotKind.Internal, s.Kind);
        Assert.False(s.HasMemory);
        Assert.Null(s.Parent);
    }

    [Theory]
    [InlineData("ok name", true)]
    [InlineData("a/b", false)]
    [InlineData("", false)]
    [InlineData("line\nbreak", false)]
    public void SnapshotNames_AreChecked(string name, bool ok)
    {
        if (ok)
        {
            SnapshotService.ValidateName(name);
        }
        else
        {
            Assert.Equal("InvalidName", Assert.Throws<KvmOperationException>(() => SnapshotService.ValidateName(name)).ErrorId);
        }
    }
}
