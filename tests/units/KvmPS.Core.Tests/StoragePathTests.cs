using System.Buffers.Binary;
using System.Text;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>One spelling per image path: what the ownership model (StorageUsage) compares.</summary>
public sealed class StoragePathTests
{
    [Theory]
    [InlineData("/var/lib/libvirt/images/a.qcow2", "/var/lib/libvirt/images/a.qcow2")]
    [InlineData("/var/lib/libvirt//images///a.qcow2", "/var/lib/libvirt/images/a.qcow2")]
    [InlineData("/var/lib/libvirt/./images/./a.qcow2", "/var/lib/libvirt/images/a.qcow2")]
    [InlineData("/var/lib/libvirt/other/../images/a.qcow2", "/var/lib/libvirt/images/a.qcow2")]
    [InlineData("//var/lib/libvirt/images/sub/../../images/a.qcow2/", "/var/lib/libvirt/images/a.qcow2")]
    [InlineData("/../../a.qcow2", "/a.qcow2")]
    [InlineData("/", "/")]
    public void Normalize_ResolvesSlashesDotsAndDotDots(string input, string expected)
        => Assert.Equal(expected, StoragePath.Normalize(input));

    [Theory]
    [InlineData("images/a.qcow2")]
    [InlineData("default/a.qcow2")]
    [InlineData("")]
    [InlineData(null)]
    public void Normalize_RefusesRelativePaths(string? input) => Assert.Null(StoragePath.Normalize(input));

    [Fact]
    public void ResolveLinks_FollowsFileAndFolderLinksAndDotDotAfterALink()
    {
        string root = Directory.CreateTempSubdirectory("kvmps-path-").FullName;
        try
        {
            string real = Directory.CreateDirectory(Path.Combine(root, "real", "images")).FullName;
            string image = Path.Combine(real, "a.qcow2");
            File.WriteAllText(image, "x");
            File.CreateSymbolicLink(Path.Combine(root, "file-link.qcow2"), image);
            Directory.CreateSymbolicLink(Path.Combine(root, "dir-link"), real);
            Directory.CreateSymbolicLink(Path.Combine(root, "relative-link"), "real/images");
            File.CreateSymbolicLink(Path.Combine(root, "chain.qcow2"), Path.Combine(root, "file-link.qcow2"));

            string expected = StoragePath.ResolveLinks(image);
            Assert.Equal(image, expected);
            Assert.Equal(expected, StoragePath.ResolveLinks(Path.Combine(root, "file-link.qcow2")));
            Assert.Equal(expected, StoragePath.ResolveLinks(Path.Combine(root, "dir-link", "a.qcow2")));
            Assert.Equal(expected, StoragePath.ResolveLinks(Path.Combine(root, "relative-link", "a.qcow2")));
            Assert.Equal(expected, StoragePath.ResolveLinks(Path.Combine(root, "chain.qcow2")));
            // ".." after a folder link climbs from the link's target (real/images -> real), as the kernel does
            Assert.Equal(Path.Combine(root, "real", "images", "a.qcow2"), StoragePath.ResolveLinks(Path.Combine(root, "dir-link", "..", "images", "a.qcow2")));
            // a missing tail is kept as written
            Assert.Equal(Path.Combine(real, "missing", "b.qcow2"), StoragePath.ResolveLinks(Path.Combine(root, "dir-link", "missing", "b.qcow2")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void ResolveLinks_StopsOnALinkLoop()
    {
        string root = Directory.CreateTempSubdirectory("kvmps-loop-").FullName;
        try
        {
            File.CreateSymbolicLink(Path.Combine(root, "a"), Path.Combine(root, "b"));
            File.CreateSymbolicLink(Path.Combine(root, "b"), Path.Combine(root, "a"));
            string resolved = StoragePath.ResolveLinks(Path.Combine(root, "a"));
            Assert.StartsWith(root, resolved, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Theory]
    [InlineData("/pool/overlay.qcow2", "/base/template.qcow2", "/base/template.qcow2")]
    [InlineData("/pool/overlay.qcow2", "template.qcow2", "/pool/template.qcow2")]
    [InlineData("/pool/sub/overlay.qcow2", "../base//t.qcow2", "/pool/base/t.qcow2")]
    [InlineData("/pool/overlay.qcow2", "nbd://host/export", null)]
    [InlineData("/pool/overlay.qcow2", "json:{\"file\":{}}", null)]
    [InlineData("/pool/overlay.qcow2", "", null)]
    public void BackingReference_ResolvesRelativeNamesAgainstTheImageFolder(string image, string reference, string? expected)
        => Assert.Equal(expected, StoragePath.BackingReference(image, reference));

    [Fact]
    public void ReadQcow2Backing_ReadsTheHeaderReference()
    {
        string root = Directory.CreateTempSubdirectory("kvmps-qcow-").FullName;
        try
        {
            string overlay = Path.Combine(root, "overlay.qcow2");
            byte[] name = Encoding.UTF8.GetBytes("base.qcow2");
            byte[] header = new byte[512];
            header[0] = (byte)'Q';
            header[1] = (byte)'F';
            header[2] = (byte)'I';
            header[3] = 0xFB;
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), 3);
            BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), 200);
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(16), (uint)name.Length);
            name.CopyTo(header, 200);
            File.WriteAllBytes(overlay, header);
            Assert.Equal(Path.Combine(root, "base.qcow2"), StoragePath.ReadQcow2Backing(overlay));

            string raw = Path.Combine(root, "raw.img");
            File.WriteAllBytes(raw, new byte[512]);
            Assert.Null(StoragePath.ReadQcow2Backing(raw));

            BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), 0);
            File.WriteAllBytes(overlay, header);
            Assert.Null(StoragePath.ReadQcow2Backing(overlay));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void HostUuidOf_ReadsTheCapabilitiesHostUuid()
    {
        Assert.Equal(Guid.Parse("8b46f517-c550-419f-922f-f9d4f519350c"),
            KvmConnection.HostUuidOf("<capabilities><host><uuid>8b46f517-c550-419f-922f-f9d4f519350c</uuid></host></capabilities>"));
        Assert.Null(KvmConnection.HostUuidOf("<capabilities><host/></capabilities>"));
    }

    [Fact]
    public void LibvirtDaemonPeer_IsNullForASocketServedByAnotherProcess()
    {
        string path = Path.Combine(Path.GetTempPath(), $"kvmps-peer-{Guid.NewGuid():N}.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        try
        {
            // this test process (dotnet / testhost) is no libvirt daemon: a forwarded socket looks like this
            Assert.Null(KvmConnection.LibvirtDaemonPeer(path, out int pid));
            Assert.Equal(Environment.ProcessId, pid);
            Assert.Null(KvmConnection.LibvirtDaemonPeer(path + ".missing", out _));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
