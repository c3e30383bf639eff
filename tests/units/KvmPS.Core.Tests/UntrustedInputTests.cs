using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Xml.Linq;
using KvmPS.Core.Images;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>SHA-512 crypt against published and openssl vectors.</summary>
public sealed class Sha512CryptTests
{
    [Theory]
    // Ulrich Drepper's specification, test vectors 1 and 2
    [InlineData("Hello world!", "saltstring", null, "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1")]
    [InlineData("Hello world!", "saltstringsaltstring", 10000, "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.")]
    // openssl passwd -6 -salt <salt> <password> (OpenSSL 3.0 on Debian 12)
    [InlineData("Sup3r-s3cret!", "Xy7.abc/DEF12345", null, "$6$Xy7.abc/DEF12345$BQrbh6tVItnJXRmwrD49Zeel98wiQ/W4r0afhpa6Ead6wMqEiFTNmpIO0BebsX.rvBY8ohqEyne58amzwpbgC0")]
    [InlineData("a very much longer text to encrypt.  This one even stretches over morethan one line.", "toolongsaltstring1234", null,
        "$6$toolongsaltstrin$d83lI1f8Dmg5G54BIEUCk.d1wzcvMvHiDIygj5z1mZBp8sK1sb1wb5GVvQ7hgyXszzhH1BdryFoyDxA5CIFdb1")]
    public void Hash_MatchesKnownVectors(string password, string salt, int? rounds, string expected)
        => Assert.Equal(expected, Sha512Crypt.Hash(password, salt, rounds));

    [Fact]
    public void Hash_MatchesOpensslForARandomSalt()
    {
        string salt = Sha512Crypt.NewSalt();
        Assert.Equal(16, salt.Length);
        Assert.Matches("^[./0-9A-Za-z]{16}$", salt);
        string mine = Sha512Crypt.Hash("pässwörd with spaces", salt);
        var psi = new ProcessStartInfo("openssl") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[] { "passwd", "-6", "-salt", salt, "pässwörd with spaces" })
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        string theirs = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        Assert.Equal(theirs, mine);
    }

    [Fact]
    public void Hash_SaltsDiffer_AndNeverContainThePassword()
    {
        string a = Sha512Crypt.Hash("Sup3r-s3cret!");
        string b = Sha512Crypt.Hash("Sup3r-s3cret!");
        Assert.NotEqual(a, b);
        Assert.StartsWith("$6$", a);
        Assert.DoesNotContain("Sup3r", a);
        Assert.Equal(3 + 16 + 1 + 86, a.Length);
    }
}

/// <summary>The in-process qcow2 header reader, on images qemu-img makes and on hand-made headers.</summary>
public sealed class Qcow2HeaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmps-qcow2-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void QemuImg(params string[] args)
    {
        var psi = new ProcessStartInfo("qemu-img") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
    }

    [Fact]
    public void PlainImage_HasNoReferences()
    {
        string img = Path.Combine(_dir, "plain.qcow2");
        QemuImg("create", "-q", "-f", "qcow2", img, "3M");
        Qcow2Header h = Qcow2Header.Read(img)!;
        Assert.Equal(3, h.Version);
        Assert.Equal(3UL * 1024 * 1024, h.VirtualSize);
        Assert.Null(h.BackingFile);
        Assert.Null(h.BackingFormat);
        Assert.False(h.HasExternalDataFile);
    }

    [Fact]
    public void BackingFile_AndItsFormat_AreRead()
    {
        string marker = Path.Combine(_dir, "marker.raw");
        File.WriteAllText(marker, "marker");
        string img = Path.Combine(_dir, "overlay.qcow2");
        QemuImg("create", "-q", "-f", "qcow2", "-b", marker, "-F", "raw", img, "1M");
        Qcow2Header h = Qcow2Header.Read(img)!;
        Assert.Equal(marker, h.BackingFile);
        Assert.Equal("raw", h.BackingFormat);
        KvmOperationException e = Assert.Throws<KvmOperationException>(() => ImageTrust.RefuseReferences(img, "image", h));
        Assert.Equal("ImageBackingRefused", e.ErrorId);
        Assert.Contains(marker, e.Message);
    }

    [Fact]
    public void CompatV2_BackingFile_IsRead()
    {
        string img = Path.Combine(_dir, "v2.qcow2");
        QemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", "/etc/hostname", "-F", "raw", img, "1M");
        Qcow2Header h = Qcow2Header.Read(img)!;
        Assert.Equal(2, h.Version);
        Assert.Equal("/etc/hostname", h.BackingFile);
        Assert.Equal("raw", h.BackingFormat);
    }

    [Fact]
    public void ExternalDataFile_IsRead()
    {
        string data = Path.Combine(_dir, "data.raw");
        string img = Path.Combine(_dir, "withdata.qcow2");
        QemuImg("create", "-q", "-f", "qcow2", "-o", $"data_file={data}", img, "1M");
        Qcow2Header h = Qcow2Header.Read(img)!;
        Assert.True(h.HasExternalDataFile);
        Assert.Equal(data, h.DataFile);
        KvmOperationException e = Assert.Throws<KvmOperationException>(() => ImageTrust.RefuseReferences(img, "image", h));
        Assert.Equal("ImageBackingRefused", e.ErrorId);
        Assert.Contains(data, e.Message);
    }

    [Fact]
    public void NotQcow2_IsNull_AndBadOffsets_Throw()
    {
        Assert.Null(Qcow2Header.Parse(Encoding.ASCII.GetBytes("just some raw bytes of a disk")));
        byte[] header = new byte[512];
        BinaryPrimitives.WriteUInt32BigEndian(header, 0x514649FB);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), 3);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(100), 104);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), 1UL << 40);   // backing name far beyond the bytes
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(16), 10);
        Assert.Throws<InvalidDataException>(() => Qcow2Header.Parse(header));

        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(16), 0);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(72), 1UL << 2);  // external data file bit without a name
        Assert.True(Qcow2Header.Parse(header)!.HasExternalDataFile);
    }
}

/// <summary>The allow-list a restored definition is rebuilt from.</summary>
public sealed class RestoreDefinitionTests
{
    private const string Tampered = """
        <domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
          <name>orig</name>
          <uuid>6f1e2c34-8a4b-4b0e-9a55-2c1e1d0f0a11</uuid>
          <memory unit='KiB'>262144</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64'>hvm</type><kernel>/etc/shadow</kernel><loader readonly='yes' type='pflash'>/etc/passwd</loader><nvram>/var/lib/other/VARS.fd</nvram><boot dev='hd'/></os>
          <seclabel type='none'/>
          <devices>
            <emulator>/bin/sh</emulator>
            <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/var/lib/libvirt/images/orig.img'/><target dev='vda' bus='virtio'/></disk>
            <disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vdb' bus='virtio'/></disk>
            <disk type='block' device='cdrom'><source dev='/dev/sr0'/><target dev='sda' bus='sata'/><readonly/></disk>
            <interface type='network'><mac address='52:54:00:11:22:33'/><source network='default'/><model type='virtio'/></interface>
            <interface type='ethernet'><script path='/tmp/evil.sh'/></interface>
            <serial type='pty'><target port='0'/></serial>
            <serial type='file'><source path='/etc/motd'/><target port='1'/></serial>
            <console type='pty'><target type='serial' port='0'/></console>
            <channel type='unix'><source mode='bind' path='/tmp/evil.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
            <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>
            <filesystem type='mount'><source dir='/'/><target dir='root'/></filesystem>
            <controller type='usb' model='qemu-xhci'/>
            <input type='tablet' bus='usb'/>
            <input type='evdev'><source dev='/dev/input/event0'/></input>
            <graphics type='vnc' port='5900' socket='/tmp/vnc.sock' listen='127.0.0.1'/>
            <video><model type='virtio'/></video>
            <memballoon model='virtio'/>
            <rng model='virtio'><backend model='random'>/etc/shadow</backend></rng>
          </devices>
          <qemu:commandline><qemu:arg value='-drive'/><qemu:arg value='file=/etc/shadow'/></qemu:commandline>
        </domain>
        """;

    [Fact]
    public void Tampered_Definition_KeepsOnlyAllowedDevices()
    {
        var disks = new Dictionary<string, string> { ["vda"] = "/var/lib/libvirt/images/new.qcow2" };
        (XElement d, List<string> dropped) = RestoreDefinition.Build(XElement.Parse(Tampered), "copy", newIdentity: true, disks);
        string xml = d.ToString();

        foreach (string host in new[] { "/etc/shadow", "/etc/passwd", "/bin/sh", "/dev/sda", "/dev/sr0", "evil", "/etc/motd", "/var/lib/other", "/dev/input", "vnc.sock" })
        {
            Assert.DoesNotContain(host, xml);
        }

        Assert.DoesNotContain("commandline", xml);
        Assert.DoesNotContain("hostdev", xml);
        Assert.DoesNotContain("filesystem", xml);
        Assert.DoesNotContain("seclabel", xml);
        Assert.DoesNotContain("52:54:00:11:22:33", xml);
        Assert.Null(d.Element("uuid"));
        Assert.Equal("copy", (string?)d.Element("name"));

        XElement[] diskEls = d.Element("devices")!.Elements("disk").ToArray();
        Assert.Equal(2, diskEls.Length);
        Assert.Equal("/var/lib/libvirt/images/new.qcow2", (string?)diskEls[0].Element("source")!.Attribute("file"));
        Assert.Equal("qcow2", (string?)diskEls[0].Element("driver")!.Attribute("type"));
        Assert.Equal("cdrom", (string?)diskEls[1].Attribute("device"));
        Assert.Null(diskEls[1].Element("source"));
        Assert.Single(d.Element("devices")!.Elements("interface"));
        Assert.Single(d.Element("devices")!.Elements("serial"));
        Assert.Single(d.Element("devices")!.Elements("input"));
        Assert.Equal("/dev/urandom", d.Element("devices")!.Element("rng")!.Element("backend")!.Value);
        Assert.Equal("127.0.0.1", (string?)d.Element("devices")!.Element("graphics")!.Attribute("listen"));

        string all = string.Join("\n", dropped);
        foreach (string named in new[] { "qemu:commandline", "hostdev", "filesystem", "seclabel", "/etc/shadow", "/bin/sh", "/dev/sr0", "vdb", "/etc/passwd", "evdev", "ethernet" })
        {
            Assert.Contains(named, all);
        }
    }

    [Fact]
    public void SameIdentity_KeepsUuidAndMac()
    {
        var disks = new Dictionary<string, string> { ["vda"] = "/x.qcow2" };
        (XElement d, _) = RestoreDefinition.Build(XElement.Parse(Tampered), "orig", newIdentity: false, disks);
        Assert.Equal("6f1e2c34-8a4b-4b0e-9a55-2c1e1d0f0a11", (string?)d.Element("uuid"));
        Assert.Contains("52:54:00:11:22:33", d.ToString());
    }
}
