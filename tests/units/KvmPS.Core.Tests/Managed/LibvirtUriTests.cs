using KvmPS.Core.Managed;

namespace KvmPS.Core.Tests.Managed;

/// <summary>URIs taken apart the way libvirt's remote driver does, and the name it sends in CONNECT_OPEN.</summary>
public sealed class LibvirtUriTests
{
    [Theory]
    [InlineData("qemu:///system", "qemu", null, "unix", null, null, null, "/system", "qemu:///system")]
    [InlineData("test:///default", "test", null, "unix", null, null, null, "/default", "test:///default")]
    [InlineData("test+unix:///default?socket=/tmp/x.sock", "test", "unix", "unix", null, null, null, "/default", "test:///default")]
    [InlineData("qemu+ssh://admin@kvm1.example:2222/system?keyfile=/k&no_verify=1", "qemu", "ssh", "ssh", "admin", "kvm1.example", 2222, "/system", "qemu:///system")]
    [InlineData("qemu+tls://host/system?pkipath=/p&foo=bar", "qemu", "tls", "tls", null, "host", null, "/system", "qemu:///system?foo=bar")]
    [InlineData("qemu://host/system", "qemu", null, "tls", null, "host", null, "/system", "qemu:///system")]
    [InlineData("qemu+tcp://[::1]:16509/system", "qemu", "tcp", "tcp", null, "::1", 16509, "/system", "qemu:///system")]
    [InlineData("QEMU+SSH://h/session", "QEMU", "ssh", "ssh", null, "h", null, "/session", "QEMU:///session")]
    public void Parse_SplitsTheUri_AndBuildsTheRemoteName(string uri, string driver, string? transport, string effective, string? user, string? host, int? port, string path, string remoteName)
    {
        LibvirtUri u = LibvirtUri.Parse(uri);
        Assert.Equal(driver, u.Driver);
        Assert.Equal(transport, u.Transport);
        Assert.Equal(effective, u.EffectiveTransport);
        Assert.Equal(user, u.User);
        Assert.Equal(host, u.Host);
        Assert.Equal(port, u.Port);
        Assert.Equal(path, u.Path);
        Assert.Equal(remoteName, u.RemoteName);
        Assert.Equal(uri, u.ToString());
    }

    [Fact]
    public void Query_IsDecoded_AndClientParametersAreKept()
    {
        LibvirtUri u = LibvirtUri.Parse("qemu+ssh://root@h/system?keyfile=%2Froot%2Fmy%20key&no_tty=1&Name=qemu:///other");
        Assert.Equal("/root/my key", u.Get("keyfile"));
        Assert.True(u.GetFlag("no_tty"));
        Assert.False(u.GetFlag("no_verify"));
        Assert.Equal("qemu:///other", u.RemoteName);   // ?name= wins, as in libvirt
    }

    [Fact]
    public void RemoteScheme_LetsTheDaemonChoose()
    {
        LibvirtUri u = LibvirtUri.Parse("remote+unix:///");
        Assert.True(u.IsProbe);
        Assert.Equal(string.Empty, u.RemoteName);
    }

    [Theory]
    [InlineData("system")]
    [InlineData("://x")]
    [InlineData("qemu+ssh://h:notaport/system")]
    [InlineData("qemu+ssh://[::1/system")]
    public void Parse_RejectsNonUris(string uri)
    {
        var e = Assert.Throws<LibvirtException>(() => LibvirtUri.Parse(uri));
        Assert.Equal(LibvirtErrorCode.InvalidArg, e.Code);
        Assert.False(LibvirtUri.TryParse(uri, out _, out string? error));
        Assert.NotNull(error);
    }

    [Fact]
    public void UnixSocketPath_FollowsReadOnly_AndTheSocketParameter()
    {
        Assert.Equal("/run/libvirt/libvirt-sock-ro", UnixTransport.SocketPath(LibvirtUri.Parse("qemu:///system?mode=legacy"), readOnly: true));
        Assert.Equal("/run/libvirt/libvirt-sock", UnixTransport.SocketPath(LibvirtUri.Parse("qemu:///system?mode=legacy"), readOnly: false));
        Assert.Equal("/run/libvirt/virtqemud-sock", UnixTransport.SocketPath(LibvirtUri.Parse("qemu:///system?mode=direct"), readOnly: false));
        Assert.Equal("/tmp/s", UnixTransport.SocketPath(LibvirtUri.Parse("qemu:///session?socket=/tmp/s"), readOnly: false));
        Assert.Throws<LibvirtException>(() => UnixTransport.SocketPath(LibvirtUri.Parse("qemu:///system?mode=weird"), readOnly: false));
    }
}
