using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Tests.Managed;

/// <summary>Networks through the managed backend compared with the native backend, on the daemon's test driver.</summary>
public sealed class ManagedNetworkTests : IDisposable
{
    private readonly ILibvirtConnection? _native;
    private readonly ILibvirtConnection? _managed;
    private readonly string _prefix = ManagedParity.NewName("net");

    public ManagedNetworkTests()
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
            foreach (NetworkData n in _native.ListNetworks().Where(n => n.Name.StartsWith(_prefix, StringComparison.Ordinal)))
            {
                ManagedParity.Quietly(() => _native.StopNetwork(n.Name));
                ManagedParity.Quietly(() => _native.UndefineNetwork(n.Name));
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

    private static string IsolatedXml(string name, string bridge)
        => new XElement("network",
            new XElement("name", name),
            new XElement("bridge", new XAttribute("name", bridge)),
            new XElement("ip", new XAttribute("address", "10.251.77.1"), new XAttribute("netmask", "255.255.255.0"),
                new XElement("dhcp", new XElement("range", new XAttribute("start", "10.251.77.100"), new XAttribute("end", "10.251.77.200"))))).ToString();

    [SkippableFact]
    public void ListNetworks_MatchesNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        NetworkData mine = m.ListNetworks().Single(x => x.Name == "default");
        Assert.Equal(n.ListNetworks().Single(x => x.Name == "default"), mine);
        Assert.True(mine.Active);
        Assert.True(mine.Persistent);
        Assert.NotEqual(Guid.Empty, mine.Uuid);
        Assert.Equal("default", XElement.Parse(mine.Xml).Element("name")!.Value);
        Assert.True(m.NetworkExists("default"));
        Assert.False(m.NetworkExists(_prefix + "-nope"));
    }

    [SkippableFact]
    public void Lifecycle_ThroughManaged_IsWhatNativeSees()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        string name = _prefix + "-iso";
        m.DefineNetwork(IsolatedXml(name, "kt" + Guid.NewGuid().ToString("N")[..8]));
        Assert.True(n.NetworkExists(name));
        NetworkData defined = m.ListNetworks().Single(x => x.Name == name);
        Assert.Equal(n.ListNetworks().Single(x => x.Name == name), defined);
        Assert.False(defined.Active);
        Assert.False(defined.Autostart);
        Assert.True(defined.Persistent);

        m.StartNetwork(name);
        m.SetNetworkAutostart(name, true);
        NetworkData started = n.ListNetworks().Single(x => x.Name == name);
        Assert.True(started.Active);
        Assert.True(started.Autostart);
        Assert.Equal(started, m.ListNetworks().Single(x => x.Name == name));

        m.SetNetworkAutostart(name, false);
        m.StopNetwork(name);
        Assert.False(n.ListNetworks().Single(x => x.Name == name).Active);
        m.UndefineNetwork(name);
        Assert.False(n.NetworkExists(name));
        Assert.False(m.NetworkExists(name));
    }

    [SkippableFact]
    public void Errors_MatchNative()
    {
        (ILibvirtConnection n, ILibvirtConnection m) = Both();
        string missing = _prefix + "-nope";
        LibvirtException e = ManagedParity.SameError(() => n.StartNetwork(missing), () => m.StartNetwork(missing));
        Assert.Equal(LibvirtErrorCode.NoNetwork, e.Code);
        ManagedParity.SameError(() => n.StopNetwork(missing), () => m.StopNetwork(missing));
        ManagedParity.SameError(() => n.UndefineNetwork(missing), () => m.UndefineNetwork(missing));
        ManagedParity.SameError(() => n.SetNetworkAutostart(missing, true), () => m.SetNetworkAutostart(missing, true));
        ManagedParity.SameError(() => n.GetNetworkLeases(missing), () => m.GetNetworkLeases(missing));
        ManagedParity.SameError(() => n.DefineNetwork("<network><name>x"), () => m.DefineNetwork("<network><name>x"));
        // The test driver has no DHCP leases: its NO_SUPPORT comes back unchanged.
        e = ManagedParity.SameError(() => n.GetNetworkLeases("default"), () => m.GetNetworkLeases("default"));
        Assert.Equal(LibvirtErrorCode.NoSupport, e.Code);
    }
}
