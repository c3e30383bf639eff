using KvmPS.Core.Services;

namespace KvmPS.Core;

/// <summary>How a virtual network reaches the outside world (its &lt;forward mode=...&gt;).</summary>
public enum KvmNetworkMode
{
    /// <summary>No &lt;forward&gt;: guests reach each other and the host, nothing else.</summary>
    Isolated = 0,

    /// <summary>forward mode='nat': outbound traffic is masqueraded behind the host's address.</summary>
    Nat = 1,

    /// <summary>forward mode='route': traffic is routed, not translated; the LAN needs a route back.</summary>
    Route = 2,

    /// <summary>forward mode='open': routed, and libvirt adds no firewall rules at all.</summary>
    Open = 3,

    /// <summary>forward mode='bridge': guests join an existing host bridge; libvirt manages no addresses.</summary>
    Bridge = 4,

    /// <summary>Any other forward mode (passthrough, private, vepa, hostdev).</summary>
    Other = 5,
}

/// <summary>The address family of an IP address.</summary>
public enum KvmAddressFamily
{
    IPv4 = 0,
    IPv6 = 1,
}

/// <summary>
/// A libvirt virtual network. A data object: it carries its <see cref="Connection"/> and <see cref="Name"/>
/// so the next command finds it again; it holds no libvirt handle.
/// </summary>
public sealed class KvmNetwork
{
    public string Name { get; init; } = string.Empty;

    public Guid Uuid { get; init; }

    public KvmNetworkMode Mode { get; init; }

    /// <summary>The forward mode as libvirt writes it (nat, route, bridge, ...); null for an isolated network.</summary>
    public string? ForwardMode { get; init; }

    /// <summary>The bridge device: the one libvirt creates (virbr0 ...) or, in Bridge mode, the host bridge used.</summary>
    public string? Bridge { get; init; }

    /// <summary>The network's subnets in CIDR notation (10.0.0.0/24, fd00::/64).</summary>
    public IReadOnlyList<string> Subnets { get; init; } = [];

    /// <summary>The addresses the host itself has on the network (the guests' gateway), one per subnet.</summary>
    public IReadOnlyList<string> HostAddresses { get; init; } = [];

    /// <summary>DHCP ranges as start-end (10.0.0.100-10.0.0.200).</summary>
    public IReadOnlyList<string> DhcpRanges { get; init; } = [];

    public bool Active { get; init; }

    public bool Autostart { get; init; }

    public bool Persistent { get; init; }

    public KvmConnection Connection { get; init; } = null!;

    /// <summary>The host name of the network's connection (the Host column).</summary>
    public string? HostName => Connection?.HostName;

    public override string ToString() => Name;
}

/// <summary>One DHCP lease handed out by a virtual network's dnsmasq.</summary>
public sealed class KvmNetworkLease
{
    public string Network { get; init; } = string.Empty;

    /// <summary>The bridge the lease was given on.</summary>
    public string? Interface { get; init; }

    public string? MacAddress { get; init; }

    public string? IPAddress { get; init; }

    public int Prefix { get; init; }

    public KvmAddressFamily AddressFamily { get; init; }

    public string? HostName { get; init; }

    public string? ClientId { get; init; }

    /// <summary>When the lease expires (local time); null for a lease that does not expire.</summary>
    public DateTime? Expiry { get; init; }

    public KvmConnection Connection { get; init; } = null!;

    public override string ToString() => $"{Network}: {IPAddress}/{Prefix} {MacAddress}";
}
