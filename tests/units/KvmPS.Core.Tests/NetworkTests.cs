using System.Net;
using System.Xml.Linq;
using KvmPS.Core.Backend;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

public sealed class NetworkTests
{
    [Fact]
    public void Parse_IPv4_GivesHostAddressNetmaskAndLast()
    {
        IpSubnet s = IpSubnet.Parse("10.250.1.0/24");
        Assert.Equal(KvmAddressFamily.IPv4, s.Family);
        Assert.Equal(24, s.PrefixLength);
        Assert.Equal(IPAddress.Parse("10.250.1.0"), s.Network);
        Assert.Equal(IPAddress.Parse("10.250.1.1"), s.HostAddress);
        Assert.Equal(IPAddress.Parse("255.255.255.0"), s.Netmask);
        Assert.Equal(IPAddress.Parse("10.250.1.255"), s.LastAddress);
        Assert.Equal("10.250.1.0/24", s.ToString());
    }

    [Theory]
    [InlineData("172.16.0.0/12", "255.240.0.0", "172.31.255.255")]
    [InlineData("192.168.8.0/22", "255.255.252.0", "192.168.11.255")]
    [InlineData("10.0.0.4/30", "255.255.255.252", "10.0.0.7")]
    public void Parse_IPv4_OtherPrefixes(string cidr, string mask, string last)
    {
        IpSubnet s = IpSubnet.Parse(cidr);
        Assert.Equal(IPAddress.Parse(mask), s.Netmask);
        Assert.Equal(IPAddress.Parse(last), s.LastAddress);
        Assert.Equal(s.PrefixLength, IpSubnet.PrefixFromNetmask(s.Netmask!));
    }

    [Fact]
    public void Parse_IPv6_GivesHostAddressAndPrefix()
    {
        IpSubnet s = IpSubnet.Parse("fd00:42:1::/64");
        Assert.Equal(KvmAddressFamily.IPv6, s.Family);
        Assert.Equal(64, s.PrefixLength);
        Assert.Equal(IPAddress.Parse("fd00:42:1::1"), s.HostAddress);
        Assert.Equal(IPAddress.Parse("fd00:42:1:0:ffff:ffff:ffff:ffff"), s.LastAddress);
        Assert.Null(s.Netmask);
        Assert.Equal("fd00:42:1::/64", s.ToString());
    }

    [Theory]
    [InlineData("10.250.1.0", "slash")]
    [InlineData("10.250.1.0/33", "prefix")]
    [InlineData("10.250.1.0/31", "prefix")]
    [InlineData("10.250.1.0/0", "prefix")]
    [InlineData("10.250.1.0/-1", "prefix")]
    [InlineData("10.250.1.0/2x", "prefix")]
    [InlineData("10.250.1.5/24", "host bits")]
    [InlineData("10.1/16", "not an IPv4 or IPv6")]
    [InlineData("300.1.1.0/24", "not an IPv4 or IPv6")]
    [InlineData("abc/24", "not an IPv4 or IPv6")]
    [InlineData("10.0.0.0/24/1", "slash")]
    [InlineData("fd00::/127", "prefix")]
    [InlineData("fd00::/129", "prefix")]
    [InlineData("fd00::1/64", "host bits")]
    [InlineData("fe80::1%eth0/64", "not an IPv4 or IPv6")]
    [InlineData("127.0.0.0/8", "loopback")]
    [InlineData("224.1.0.0/16", "multicast")]
    [InlineData("ff02::/16", "multicast")]
    [InlineData("", "slash")]
    public void TryParse_RejectsInvalid(string cidr, string reason)
    {
        Assert.False(IpSubnet.TryParse(cidr, out IpSubnet? s, out string? problem));
        Assert.Null(s);
        Assert.Contains(reason, problem, StringComparison.OrdinalIgnoreCase);
        KvmOperationException e = Assert.Throws<KvmOperationException>(() => IpSubnet.Parse(cidr));
        Assert.Equal("InvalidSubnet", e.ErrorId);
        Assert.Equal(KvmErrorKind.InvalidArgument, e.Kind);
        Assert.Equal(cidr, e.Target);
    }

    [Fact]
    public void FromAddress_MasksTheHostBits()
    {
        Assert.Equal("192.168.122.0/24", IpSubnet.FromAddress(IPAddress.Parse("192.168.122.1"), 24).ToString());
        Assert.Equal("fd00:1::/64", IpSubnet.FromAddress(IPAddress.Parse("fd00:1::1"), 64).ToString());
    }

    [Theory]
    [InlineData("255.255.255.0", 24)]
    [InlineData("255.255.0.0", 16)]
    [InlineData("255.255.255.255", 32)]
    [InlineData("0.0.0.0", 0)]
    [InlineData("255.0.255.0", -1)]
    [InlineData("255.255.255.1", -1)]
    public void PrefixFromNetmask(string mask, int prefix) => Assert.Equal(prefix, IpSubnet.PrefixFromNetmask(IPAddress.Parse(mask)));

    [Theory]
    [InlineData("10.0.0.0/16", "10.0.5.0/24", true)]
    [InlineData("10.0.5.0/24", "10.0.0.0/16", true)]
    [InlineData("10.0.0.0/24", "10.0.0.0/24", true)]
    [InlineData("10.0.0.0/24", "10.0.1.0/24", false)]
    [InlineData("10.0.0.0/23", "10.0.1.0/24", true)]
    [InlineData("10.0.0.0/8", "11.0.0.0/8", false)]
    [InlineData("fd00::/48", "fd00:0:0:5::/64", true)]
    [InlineData("fd00:1::/64", "fd00:2::/64", false)]
    [InlineData("10.0.0.0/24", "fd00::/64", false)]
    public void Overlaps(string a, string b, bool expected)
        => Assert.Equal(expected, IpSubnet.Parse(a).Overlaps(IpSubnet.Parse(b)));

    [Fact]
    public void Contains_ChecksFamilyAndBounds()
    {
        IpSubnet s = IpSubnet.Parse("10.251.3.0/24");
        Assert.True(s.Contains(IPAddress.Parse("10.251.3.0")));
        Assert.True(s.Contains(IPAddress.Parse("10.251.3.255")));
        Assert.False(s.Contains(IPAddress.Parse("10.251.4.0")));
        Assert.False(s.Contains(IPAddress.Parse("::ffff:10.251.3.7")));
    }

    [Theory]
    [InlineData("10.251.3.0/24", "10.251.3.100-10.251.3.200", true, null)]
    [InlineData("10.251.3.0/24", "10.251.3.2-10.251.3.254", true, null)]
    [InlineData("10.251.3.0/24", "10.251.3.1-10.251.3.50", false, "host's own address")]
    [InlineData("10.251.3.0/24", "10.251.3.0-10.251.3.50", false, "network address")]
    [InlineData("10.251.3.0/24", "10.251.3.100-10.251.3.255", false, "broadcast")]
    [InlineData("10.251.3.0/24", "10.251.3.100-10.251.4.10", false, "inside")]
    [InlineData("10.251.3.0/24", "10.9.9.1-10.9.9.9", false, "inside")]
    [InlineData("fd00:7::/64", "fd00:7::100-fd00:7::1ff", true, null)]
    [InlineData("fd00:7::/64", "fd00:7::100-fd00:8::1", false, "inside")]
    [InlineData("10.251.3.0/24", "fd00:7::100-fd00:7::1ff", false, "inside")]
    public void CanLease_RangeInSubnet(string subnet, string range, bool ok, string? reason)
    {
        Assert.True(IpRange.TryParse(range, out IpRange? r, out _));
        Assert.Equal(ok, IpSubnet.Parse(subnet).CanLease(r!, out string? problem));
        if (reason is not null)
        {
            Assert.Contains(reason, problem, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("10.0.0.5")]
    [InlineData("10.0.0.5-")]
    [InlineData("10.0.0.5-10.0.0.9-10.0.0.10")]
    [InlineData("10.0.0.5-fd00::1")]
    [InlineData("x-y")]
    public void IpRange_RejectsInvalid(string text) => Assert.False(IpRange.TryParse(text, out _, out string? problem) || problem is null);

    [Fact]
    public void IpRange_KnowsItsOrder()
    {
        Assert.True(IpRange.TryParse(" 10.0.0.9 - 10.0.0.5 ", out IpRange? r, out _));
        Assert.False(r!.IsOrdered);
        Assert.Equal("10.0.0.9-10.0.0.5", r.ToString());
    }

    private static KvmNetwork Existing(string name, string xml, bool active = true)
        => NetworkService.FromData(null!, new NetworkData(name, Guid.NewGuid(), active, true, false, xml));

    private static readonly string s_defaultXml = """
        <network>
          <name>default</name>
          <uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid>
          <forward mode='nat'/>
          <bridge name='virbr0' stp='on' delay='0'/>
          <ip address='192.168.122.1' netmask='255.255.255.0'>
            <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
          </ip>
          <ip family='ipv6' address='fd00:99::1' prefix='64'/>
        </network>
        """;

    [Fact]
    public void FromData_ReadsModeBridgeSubnetsAndRanges()
    {
        KvmNetwork n = Existing("default", s_defaultXml);
        Assert.Equal(KvmNetworkMode.Nat, n.Mode);
        Assert.Equal("nat", n.ForwardMode);
        Assert.Equal("virbr0", n.Bridge);
        Assert.Equal(["192.168.122.0/24", "fd00:99::/64"], n.Subnets);
        Assert.Equal(["192.168.122.1", "fd00:99::1"], n.HostAddresses);
        Assert.Equal(["192.168.122.2-192.168.122.254"], n.DhcpRanges);
        Assert.True(n.Active);
    }

    [Theory]
    [InlineData("<network><name>i</name><bridge name='kt1'/></network>", KvmNetworkMode.Isolated)]
    [InlineData("<network><name>i</name><forward/></network>", KvmNetworkMode.Nat)]
    [InlineData("<network><name>i</name><forward mode='route'/></network>", KvmNetworkMode.Route)]
    [InlineData("<network><name>i</name><forward mode='open'/></network>", KvmNetworkMode.Open)]
    [InlineData("<network><name>i</name><forward mode='bridge'/><bridge name='br0'/></network>", KvmNetworkMode.Bridge)]
    [InlineData("<network><name>i</name><forward mode='passthrough'><interface dev='eth1'/></forward></network>", KvmNetworkMode.Other)]
    public void FromData_MapsForwardModes(string xml, KvmNetworkMode mode) => Assert.Equal(mode, Existing("i", xml).Mode);

    [Fact]
    public void BuildDefinition_Isolated_HasNoForwardAndAGatewayAddress()
    {
        var spec = new NetworkSpec
        {
            Name = "lab",
            Mode = KvmNetworkMode.Isolated,
            Subnets = ["10.250.1.0/24", "fd00:250:1::/64"],
            DhcpRanges = ["10.250.1.100-10.250.1.199"],
            Bridge = "ktlab",
        };
        XElement x = NetworkService.BuildDefinition(spec, [Existing("default", s_defaultXml)]);
        Assert.Null(x.Element("forward"));
        Assert.Equal("lab", (string?)x.Element("name"));
        Assert.Equal("ktlab", (string?)x.Element("bridge")?.Attribute("name"));
        XElement[] ips = x.Elements("ip").ToArray();
        Assert.Equal(2, ips.Length);
        Assert.Equal("10.250.1.1", (string?)ips[0].Attribute("address"));
        Assert.Equal("255.255.255.0", (string?)ips[0].Attribute("netmask"));
        Assert.Equal("10.250.1.100", (string?)ips[0].Element("dhcp")?.Element("range")?.Attribute("start"));
        Assert.Equal("10.250.1.199", (string?)ips[0].Element("dhcp")?.Element("range")?.Attribute("end"));
        Assert.Equal("ipv6", (string?)ips[1].Attribute("family"));
        Assert.Equal("fd00:250:1::1", (string?)ips[1].Attribute("address"));
        Assert.Equal("64", (string?)ips[1].Attribute("prefix"));
        Assert.Null(ips[1].Element("dhcp"));

        // What it builds, it reads back the same way.
        KvmNetwork back = Existing("lab", x.ToString());
        Assert.Equal(KvmNetworkMode.Isolated, back.Mode);
        Assert.Equal(["10.250.1.0/24", "fd00:250:1::/64"], back.Subnets);
        Assert.Equal(["10.250.1.100-10.250.1.199"], back.DhcpRanges);
    }

    [Fact]
    public void BuildDefinition_NatAndBridgeModes()
    {
        XElement nat = NetworkService.BuildDefinition(new NetworkSpec { Name = "n", Subnets = ["10.9.0.0/16"] }, []);
        Assert.Equal("nat", (string?)nat.Element("forward")?.Attribute("mode"));
        Assert.Null(nat.Element("bridge"));

        XElement br = NetworkService.BuildDefinition(new NetworkSpec { Name = "b", Mode = KvmNetworkMode.Bridge, Bridge = "br0" }, []);
        Assert.Equal("bridge", (string?)br.Element("forward")?.Attribute("mode"));
        Assert.Equal("br0", (string?)br.Element("bridge")?.Attribute("name"));
        Assert.Empty(br.Elements("ip"));
    }

    [Theory]
    [InlineData("lab", new[] { "192.168.0.0/16" }, new string[0], null, KvmNetworkMode.Nat, "SubnetOverlap", "default")]
    [InlineData("lab", new[] { "192.168.122.128/25" }, new string[0], null, KvmNetworkMode.Nat, "SubnetOverlap", "default")]
    [InlineData("lab", new[] { "fd00:99::/48" }, new string[0], null, KvmNetworkMode.Isolated, "SubnetOverlap", "default")]
    [InlineData("lab", new[] { "10.1.0.0/16", "10.1.2.0/24" }, new string[0], null, KvmNetworkMode.Nat, "SubnetOverlap", "10.1.2.0/24")]
    [InlineData("lab", new[] { "10.1.0.0/33" }, new string[0], null, KvmNetworkMode.Nat, "InvalidSubnet", "10.1.0.0/33")]
    [InlineData("lab", new[] { "10.1.0.0/24" }, new[] { "10.1.1.10-10.1.1.20" }, null, KvmNetworkMode.Nat, "DhcpRangeOutsideSubnet", "10.1.0.0/24")]
    [InlineData("lab", new[] { "10.1.0.0/24" }, new[] { "10.1.0.50-10.1.0.20" }, null, KvmNetworkMode.Nat, "DhcpRangeOutsideSubnet", "after its end")]
    [InlineData("lab", new[] { "10.1.0.0/24" }, new[] { "10.1.0.50" }, null, KvmNetworkMode.Nat, "InvalidDhcpRange", "hyphen")]
    [InlineData("default", new[] { "10.1.0.0/24" }, new string[0], null, KvmNetworkMode.Nat, "NetworkExists", "default")]
    [InlineData("a/b", new[] { "10.1.0.0/24" }, new string[0], null, KvmNetworkMode.Nat, "InvalidName", "a/b")]
    [InlineData("lab", new string[0], new string[0], null, KvmNetworkMode.Nat, "SubnetRequired", "Nat")]
    [InlineData("lab", new string[0], new string[0], null, KvmNetworkMode.Bridge, "BridgeRequired", "-Bridge")]
    [InlineData("lab", new[] { "10.1.0.0/24" }, new string[0], "br0", KvmNetworkMode.Bridge, "ConflictingParameters", "-Subnet")]
    [InlineData("lab", new[] { "10.1.0.0/24" }, new string[0], "virbr0", KvmNetworkMode.Nat, "BridgeInUse", "default")]
    [InlineData("lab", new[] { "10.1.0.0/24" }, new string[0], "a-bridge-name-too-long", KvmNetworkMode.Nat, "InvalidBridgeName", "15")]
    public void BuildDefinition_Refuses(string name, string[] subnets, string[] ranges, string? bridge, KvmNetworkMode mode, string errorId, string mentioned)
    {
        var spec = new NetworkSpec { Name = name, Mode = mode, Subnets = subnets, DhcpRanges = ranges, Bridge = bridge };
        KvmOperationException e = Assert.Throws<KvmOperationException>(() => NetworkService.BuildDefinition(spec, [Existing("default", s_defaultXml)]));
        Assert.Equal(errorId, e.ErrorId);
        Assert.Contains(mentioned, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BuildDefinition_IsolatedWithoutSubnetIsPlainLayer2()
    {
        XElement x = NetworkService.BuildDefinition(new NetworkSpec { Name = "l2", Mode = KvmNetworkMode.Isolated }, []);
        Assert.Null(x.Element("forward"));
        Assert.Empty(x.Elements("ip"));
    }

    [Fact]
    public void NormalizeMac_AcceptsDashesAndUpperCase() => Assert.Equal("52:54:00:ab:cd:ef", NetworkService.NormalizeMac("52-54-00-AB-CD-EF"));

    [Fact]
    public void Listing_SkipsNetworksRemovedWhileTheyAreRead()
    {
        // One thread defines and removes networks as fast as it can; the other lists. A network listed and then removed
        // before its XML was read is simply not there any more, never an error for the whole listing.
        using KvmConnection conn = new KvmConnection("test:///default").Open();
        string prefix = $"kvmps-race-{Guid.NewGuid():N}"[..20];
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        Task churn = Task.Run(() =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                string name = $"{prefix}-{i % 4}";
                conn.Invoke(c => { c.DefineNetwork($"<network><name>{name}</name><bridge name='kr{i % 4}{prefix[11..17]}'/></network>"); return 0; });
                conn.Invoke(c => { c.UndefineNetwork(name); return 0; });
            }
        });

        int listings = 0;
        while (!churn.IsCompleted)
        {
            _ = NetworkService.List(conn);
            listings++;
        }

        churn.GetAwaiter().GetResult();
        Assert.True(listings > 10, $"only {listings} listings ran");
        Assert.DoesNotContain(NetworkService.List(conn), n => n.Name.StartsWith(prefix, StringComparison.Ordinal));
    }
}
