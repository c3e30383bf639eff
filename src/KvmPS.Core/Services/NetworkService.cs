using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>What New-KvmNetwork asks for.</summary>
public sealed class NetworkSpec
{
    public string Name { get; set; } = string.Empty;

    public KvmNetworkMode Mode { get; set; } = KvmNetworkMode.Nat;

    /// <summary>Subnets in CIDR notation (10.0.0.0/24, fd00:1::/64); the host takes the first address of each.</summary>
    public IList<string> Subnets { get; set; } = [];

    /// <summary>DHCP ranges as start-end; each must lie inside one of <see cref="Subnets"/>.</summary>
    public IList<string> DhcpRanges { get; set; } = [];

    /// <summary>Bridge mode: the existing host bridge. Other modes: the name of the bridge libvirt creates (default virbrN).</summary>
    public string? Bridge { get; set; }

    public bool Autostart { get; set; }

    public bool Start { get; set; }
}

/// <summary>An IP subnet (IPv4 or IPv6) in CIDR notation, with the arithmetic a virtual network needs.</summary>
public sealed class IpSubnet
{
    private readonly UInt128 _first;
    private readonly UInt128 _last;

    private IpSubnet(UInt128 network, int prefixLength, KvmAddressFamily family)
    {
        Family = family;
        PrefixLength = prefixLength;
        UInt128 mask = MaskOf(prefixLength, family);
        _first = network & mask;
        _last = _first | (~mask & AllOnes(family));
    }

    public KvmAddressFamily Family { get; }

    public int PrefixLength { get; }

    /// <summary>The network address (host bits zero).</summary>
    public IPAddress Network => Address(_first);

    /// <summary>The first address after the network address: the host's own address (the guests' gateway).</summary>
    public IPAddress HostAddress => Address(_first + 1);

    /// <summary>The last address of the subnet (the broadcast address for IPv4).</summary>
    public IPAddress LastAddress => Address(_last);

    /// <summary>The dotted netmask of an IPv4 subnet (255.255.255.0); null for IPv6.</summary>
    public IPAddress? Netmask => Family == KvmAddressFamily.IPv4 ? Address(MaskOf(PrefixLength, Family)) : null;

    /// <summary>Parses a subnet for a new network; throws InvalidSubnet with the reason.</summary>
    public static IpSubnet Parse(string cidr)
        => TryParse(cidr, out IpSubnet? s, out string? problem) ? s! : throw new KvmOperationException("InvalidSubnet", $"'{cidr}' is not a valid subnet: {problem}", cidr)
        {
            Kind = KvmErrorKind.InvalidArgument,
            Hint = "Give the subnet in CIDR notation with the host bits zero, such as 10.251.7.0/24 or fd00:42::/64.",
        };

    /// <summary>
    /// Parses CIDR notation for a new network: an IPv4 (a.b.c.d) or IPv6 address with host bits zero and a prefix of
    /// 1-30 (IPv4) or 1-126 (IPv6), leaving room for the host's address and guests. <paramref name="problem"/> says why not.
    /// </summary>
    public static bool TryParse(string? cidr, out IpSubnet? subnet, out string? problem)
    {
        subnet = null;
        problem = null;
        string text = (cidr ?? string.Empty).Trim();
        int slash = text.IndexOf('/');
        if (slash < 0 || slash != text.LastIndexOf('/'))
        {
            problem = "expected an address, a slash and a prefix length (10.251.7.0/24).";
            return false;
        }

        if (!TryParseAddress(text[..slash], out IPAddress? address))
        {
            problem = $"'{text[..slash]}' is not an IPv4 or IPv6 address.";
            return false;
        }

        string prefixText = text[(slash + 1)..];
        KvmAddressFamily family = FamilyOf(address!);
        int maxPrefix = family == KvmAddressFamily.IPv4 ? 30 : 126;
        if (prefixText.Length is 0 or > 3 || !prefixText.All(char.IsAsciiDigit)
            || !int.TryParse(prefixText, NumberStyles.None, CultureInfo.InvariantCulture, out int prefix) || prefix < 1 || prefix > maxPrefix)
        {
            problem = $"the prefix length must be a number from 1 to {maxPrefix} for {family} (room for the host and at least one guest).";
            return false;
        }

        var s = new IpSubnet(ToNumber(address!), prefix, family);
        if (!s.Network.Equals(address))
        {
            problem = $"{address} has host bits set for a /{prefix}; the subnet containing it is {s}.";
            return false;
        }

        if (IsReserved(s, out string? why))
        {
            problem = why;
            return false;
        }

        subnet = s;
        return true;
    }

    /// <summary>The subnet <paramref name="address"/> lies in (as libvirt stores it: the host's address and a prefix).</summary>
    public static IpSubnet FromAddress(IPAddress address, int prefixLength)
    {
        KvmAddressFamily family = FamilyOf(address);
        int bits = family == KvmAddressFamily.IPv4 ? 32 : 128;
        return new IpSubnet(ToNumber(address), Math.Clamp(prefixLength, 0, bits), family);
    }

    /// <summary>The prefix length of a dotted IPv4 netmask; -1 when the mask is not contiguous ones then zeros.</summary>
    public static int PrefixFromNetmask(IPAddress netmask)
    {
        if (netmask.AddressFamily != AddressFamily.InterNetwork)
        {
            return -1;
        }

        uint m = (uint)ToNumber(netmask);
        int prefix = System.Numerics.BitOperations.LeadingZeroCount(~m);
        return prefix == 32 || (m << prefix) == 0 ? prefix : -1;
    }

    public bool Contains(IPAddress address)
    {
        if (FamilyOf(address) != Family)
        {
            return false;
        }

        UInt128 n = ToNumber(address);
        return n >= _first && n <= _last;
    }

    /// <summary>True when the two subnets share at least one address (always false across families).</summary>
    public bool Overlaps(IpSubnet other) => other.Family == Family && _first <= other._last && other._first <= _last;

    /// <summary>True when the range lies inside the addresses the host can hand out: not the network, broadcast or host address.</summary>
    public bool CanLease(IpRange range, out string? problem)
    {
        problem = null;
        if (range.Family != Family || !Contains(range.Start) || !Contains(range.End))
        {
            problem = $"it does not lie inside {this}.";
            return false;
        }

        UInt128 start = ToNumber(range.Start);
        UInt128 end = ToNumber(range.End);
        UInt128 host = _first + 1;
        if (start == _first)
        {
            problem = $"it includes the network address {Network}.";
            return false;
        }

        if (Family == KvmAddressFamily.IPv4 && end == _last)
        {
            problem = $"it includes the broadcast address {LastAddress}.";
            return false;
        }

        if (start <= host && host <= end)
        {
            problem = $"it includes {HostAddress}, the host's own address on {this}; start the range above it.";
            return false;
        }

        return true;
    }

    public override string ToString() => $"{Network}/{PrefixLength}";

    internal static bool TryParseAddress(string text, out IPAddress? address)
    {
        address = null;
        text = text.Trim();
        // IPAddress.TryParse also takes "10.1" and "10" (classful shorthand) and scope ids: only plain forms here.
        bool v4 = Regex.IsMatch(text, @"^\d{1,3}(\.\d{1,3}){3}$", RegexOptions.CultureInvariant);
        bool v6 = text.Contains(':') && !text.Contains('%') && Regex.IsMatch(text, @"^[0-9A-Fa-f:.]+$", RegexOptions.CultureInvariant);
        if ((!v4 && !v6) || !IPAddress.TryParse(text, out IPAddress? a))
        {
            return false;
        }

        if (v6 && a.IsIPv4MappedToIPv6)
        {
            return false;
        }

        address = a;
        return true;
    }

    internal static KvmAddressFamily FamilyOf(IPAddress a) => a.AddressFamily == AddressFamily.InterNetworkV6 ? KvmAddressFamily.IPv6 : KvmAddressFamily.IPv4;

    internal static UInt128 ToNumber(IPAddress a)
    {
        UInt128 v = 0;
        foreach (byte b in a.GetAddressBytes())
        {
            v = (v << 8) | b;
        }

        return v;
    }

    private IPAddress Address(UInt128 n)
    {
        var bytes = new byte[Family == KvmAddressFamily.IPv4 ? 4 : 16];
        for (int i = bytes.Length - 1; i >= 0; i--)
        {
            bytes[i] = (byte)(n & 0xFF);
            n >>= 8;
        }

        return new IPAddress(bytes);
    }

    private static UInt128 AllOnes(KvmAddressFamily family) => family == KvmAddressFamily.IPv4 ? uint.MaxValue : UInt128.MaxValue;

    private static UInt128 MaskOf(int prefix, KvmAddressFamily family)
    {
        int bits = family == KvmAddressFamily.IPv4 ? 32 : 128;
        return prefix <= 0 ? 0 : (UInt128.MaxValue << (bits - prefix)) & AllOnes(family);
    }

    private static bool IsReserved(IpSubnet s, out string? why)
    {
        if (s.Family == KvmAddressFamily.IPv4)
        {
            why = s.Overlaps(FromAddress(IPAddress.Any, 8)) ? $"{s} overlaps 0.0.0.0/8 ('this network'), which cannot be used."
                : s.Overlaps(FromAddress(IPAddress.Loopback, 8)) ? $"{s} overlaps the loopback range 127.0.0.0/8."
                : s.Overlaps(FromAddress(new IPAddress([224, 0, 0, 0]), 3)) ? $"{s} overlaps the multicast and reserved ranges (224.0.0.0 and above)."
                : null;
        }
        else
        {
            why = s.Overlaps(FromAddress(new IPAddress([0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 8)) ? $"{s} is an IPv6 multicast range (ff00::/8)."
                : s.Overlaps(FromAddress(IPAddress.IPv6Loopback, 127)) ? $"{s} contains the unspecified (::) and loopback (::1) addresses."
                : null;
        }

        return why is not null;
    }
}

/// <summary>A range of IP addresses, written start-end (10.0.0.100-10.0.0.200, fd00::100-fd00::1ff).</summary>
public sealed class IpRange
{
    private IpRange(IPAddress start, IPAddress end)
    {
        Start = start;
        End = end;
    }

    public IPAddress Start { get; }

    public IPAddress End { get; }

    public KvmAddressFamily Family => IpSubnet.FamilyOf(Start);

    /// <summary>True when the range does not run backwards.</summary>
    public bool IsOrdered => IpSubnet.ToNumber(Start) <= IpSubnet.ToNumber(End);

    /// <summary>Parses start-end; both addresses must be of one family. The order is not checked here (see <see cref="IsOrdered"/>).</summary>
    public static bool TryParse(string? text, out IpRange? range, out string? problem)
    {
        range = null;
        string[] parts = (text ?? string.Empty).Split('-', StringSplitOptions.TrimEntries);
        if (parts.Length != 2)
        {
            problem = "expected two addresses joined by a hyphen (10.251.7.100-10.251.7.200).";
            return false;
        }

        if (!IpSubnet.TryParseAddress(parts[0], out IPAddress? start) || !IpSubnet.TryParseAddress(parts[1], out IPAddress? end))
        {
            problem = $"'{(IpSubnet.TryParseAddress(parts[0], out _) ? parts[1] : parts[0])}' is not an IPv4 or IPv6 address.";
            return false;
        }

        if (IpSubnet.FamilyOf(start!) != IpSubnet.FamilyOf(end!))
        {
            problem = "the start and end addresses are of different families (IPv4 and IPv6).";
            return false;
        }

        range = new IpRange(start!, end!);
        problem = null;
        return true;
    }

    public override string ToString() => $"{Start}-{End}";
}

/// <summary>Lists, creates, starts, stops and removes virtual networks, and reads their DHCP leases.</summary>
public static class NetworkService
{
    /// <summary>The completion cache key (KvmConnection.CacheNames) for network names.</summary>
    public const string CacheKind = "network";

    private static readonly Regex s_bridgeName = new(@"^[A-Za-z0-9_.-]{1,15}$", RegexOptions.CultureInvariant);

    /// <summary>Every network of the connection, in one libvirt call; refreshes the completion cache.</summary>
    public static IReadOnlyList<KvmNetwork> List(KvmConnection connection)
    {
        IReadOnlyList<NetworkData> data = connection.Invoke(c => c.ListNetworks());
        List<KvmNetwork> result = data.Select(d => FromData(connection, d)).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        connection.CacheNames(CacheKind, result.Select(n => n.Name));
        return result;
    }

    /// <summary>One network by exact name; null when there is none.</summary>
    public static KvmNetwork? Get(KvmConnection connection, string name) => List(connection).FirstOrDefault(n => n.Name == name);

    /// <summary>Reads the network again from its connection; NetworkNotFound when it is gone.</summary>
    public static KvmNetwork Refresh(KvmNetwork network)
        => Get(network.Connection, network.Name) ?? throw NotFound(network.Name, network.Connection);

    /// <summary>Builds a network from <paramref name="data"/> (as listed by libvirt).</summary>
    public static KvmNetwork FromData(KvmConnection connection, NetworkData data)
    {
        XElement root = XElement.Parse(data.Xml);
        XElement? forward = root.Element("forward");
        string? forwardMode = forward is null ? null : (string?)forward.Attribute("mode") ?? "nat";
        KvmNetworkMode mode = forwardMode switch
        {
            null => KvmNetworkMode.Isolated,
            "nat" => KvmNetworkMode.Nat,
            "route" => KvmNetworkMode.Route,
            "open" => KvmNetworkMode.Open,
            "bridge" => KvmNetworkMode.Bridge,
            _ => KvmNetworkMode.Other,
        };
        var subnets = new List<string>();
        var hosts = new List<string>();
        var ranges = new List<string>();
        foreach (XElement ip in root.Elements("ip"))
        {
            string? address = (string?)ip.Attribute("address");
            if (address is null || !IPAddress.TryParse(address, out IPAddress? a))
            {
                continue;
            }

            int prefix = PrefixOf(ip, a);
            subnets.Add(IpSubnet.FromAddress(a, prefix).ToString());
            hosts.Add(a.ToString());
            foreach (XElement r in ip.Elements("dhcp").Elements("range"))
            {
                ranges.Add($"{(string?)r.Attribute("start")}-{(string?)r.Attribute("end")}");
            }
        }

        string? bridge = (string?)root.Element("bridge")?.Attribute("name")
            ?? (string?)forward?.Attribute("dev")
            ?? (string?)forward?.Element("interface")?.Attribute("dev");
        return new KvmNetwork
        {
            Name = data.Name,
            Uuid = data.Uuid != Guid.Empty ? data.Uuid : Guid.TryParse((string?)root.Element("uuid"), out Guid u) ? u : Guid.Empty,
            Mode = mode,
            ForwardMode = forwardMode,
            Bridge = bridge,
            Subnets = subnets,
            HostAddresses = hosts,
            DhcpRanges = ranges,
            Active = data.Active,
            Autostart = data.Autostart,
            Persistent = data.Persistent,
            Connection = connection,
        };
    }

    /// <summary>
    /// Checks <paramref name="spec"/> against itself and the host's <paramref name="existing"/> networks and builds the
    /// network XML. Throws KvmOperationException: InvalidName, NetworkExists, InvalidSubnet, InvalidDhcpRange,
    /// DhcpRangeOutsideSubnet, SubnetOverlap, SubnetRequired, BridgeRequired, InvalidBridgeName, BridgeInUse, ConflictingParameters.
    /// </summary>
    public static XElement BuildDefinition(NetworkSpec spec, IReadOnlyList<KvmNetwork> existing)
    {
        string name = spec.Name;
        if (string.IsNullOrWhiteSpace(name) || name.Contains('/') || name != name.Trim() || name.Any(char.IsControl))
        {
            throw Invalid("InvalidName", $"'{name}' is not a valid network name: it must be non-empty, without '/', control characters or leading/trailing spaces.", name);
        }

        KvmNetwork? same = existing.FirstOrDefault(n => n.Name == name);
        if (same is not null)
        {
            throw new KvmOperationException("NetworkExists", $"A network named '{name}' already exists on {same.Connection?.Uri ?? "the host"}.", name)
            {
                Kind = KvmErrorKind.AlreadyExists,
                Hint = "Choose another -Name, or remove the old network with Remove-KvmNetwork.",
            };
        }

        if (spec.Bridge is { } br && !s_bridgeName.IsMatch(br))
        {
            throw Invalid("InvalidBridgeName", $"'{br}' is not a valid bridge name: use 1-15 letters, digits, '.', '_' or '-'.", br);
        }

        if (spec.Mode == KvmNetworkMode.Other)
        {
            throw Invalid("InvalidNetworkMode", "New-KvmNetwork creates Nat, Route, Open, Isolated and Bridge networks only.", spec.Mode);
        }

        var root = new XElement("network", new XElement("name", name));
        if (spec.Mode == KvmNetworkMode.Bridge)
        {
            if (spec.Subnets.Count > 0 || spec.DhcpRanges.Count > 0)
            {
                throw Invalid("ConflictingParameters",
                    "A Bridge-mode network joins an existing host bridge; its addresses come from that LAN, so -Subnet and -DhcpRange cannot be used.",
                    spec.Subnets.Count > 0 ? string.Join(", ", spec.Subnets) : string.Join(", ", spec.DhcpRanges));
            }

            if (spec.Bridge is null)
            {
                throw Invalid("BridgeRequired", "-Mode Bridge needs -Bridge: the name of an existing bridge on the host (such as br0).", name);
            }

            root.Add(new XElement("forward", new XAttribute("mode", "bridge")), new XElement("bridge", new XAttribute("name", spec.Bridge)));
            return root;
        }

        if (spec.Subnets.Count == 0 && spec.Mode != KvmNetworkMode.Isolated)
        {
            throw Invalid("SubnetRequired", $"A {spec.Mode} network needs at least one -Subnet (such as 10.251.7.0/24).", name);
        }

        if (spec.Subnets.Count == 0 && spec.DhcpRanges.Count > 0)
        {
            throw Invalid("SubnetRequired", "-DhcpRange needs the -Subnet it hands out addresses from.", string.Join(", ", spec.DhcpRanges));
        }

        if (spec.Bridge is { } bridge)
        {
            KvmNetwork? user = existing.FirstOrDefault(n => n.Mode != KvmNetworkMode.Bridge && string.Equals(n.Bridge, bridge, StringComparison.Ordinal));
            if (user is not null)
            {
                throw new KvmOperationException("BridgeInUse", $"The bridge name '{bridge}' is already used by network '{user.Name}'.", bridge)
                {
                    Kind = KvmErrorKind.InUse,
                    Hint = "Choose another -Bridge name, or leave it out to let libvirt pick a free virbrN.",
                };
            }
        }

        List<IpSubnet> subnets = spec.Subnets.Select(IpSubnet.Parse).ToList();
        CheckOverlaps(spec.Subnets, subnets, existing);
        var ranges = subnets.Select(_ => new List<IpRange>()).ToList();
        foreach (string text in spec.DhcpRanges)
        {
            if (!IpRange.TryParse(text, out IpRange? range, out string? problem))
            {
                throw Invalid("InvalidDhcpRange", $"'{text}' is not a valid DHCP range: {problem}", text,
                    "Give the range as start-end, such as 10.251.7.100-10.251.7.200.");
            }

            if (!range!.IsOrdered)
            {
                throw RangeOutside(text, $"it starts at {range.Start}, after its end {range.End}.");
            }

            int index = subnets.FindIndex(s => s.Contains(range.Start) || s.Contains(range.End));
            if (index < 0)
            {
                throw RangeOutside(text, $"it lies outside {(subnets.Count == 1 ? subnets[0].ToString() : "every subnet given (" + string.Join(", ", subnets) + ")")}.");
            }

            if (!subnets[index].CanLease(range, out string? why))
            {
                throw RangeOutside(text, why!);
            }

            ranges[index].Add(range);
        }

        if (spec.Mode != KvmNetworkMode.Isolated)
        {
            root.Add(new XElement("forward", new XAttribute("mode", spec.Mode.ToString().ToLowerInvariant())));
        }

        if (spec.Bridge is not null)
        {
            root.Add(new XElement("bridge", new XAttribute("name", spec.Bridge), new XAttribute("stp", "on"), new XAttribute("delay", "0")));
        }

        for (int i = 0; i < subnets.Count; i++)
        {
            IpSubnet s = subnets[i];
            root.Add(new XElement("ip",
                s.Family == KvmAddressFamily.IPv6 ? new XAttribute("family", "ipv6") : null,
                new XAttribute("address", s.HostAddress.ToString()),
                s.Family == KvmAddressFamily.IPv4
                    ? new XAttribute("netmask", s.Netmask!.ToString())
                    : new XAttribute("prefix", s.PrefixLength.ToString(CultureInfo.InvariantCulture)),
                ranges[i].Count == 0 ? null : new XElement("dhcp", ranges[i].Select(r =>
                    new XElement("range", new XAttribute("start", r.Start.ToString()), new XAttribute("end", r.End.ToString()))))));
        }

        return root;
    }

    /// <summary>
    /// Checks <paramref name="spec"/> against the host (its networks and, on a local QEMU host, its interfaces) and
    /// returns the network XML to define; throws KvmOperationException as <see cref="BuildDefinition"/>, and BridgeNotFound.
    /// </summary>
    public static XElement Prepare(KvmConnection connection, NetworkSpec spec)
    {
        XElement xml = BuildDefinition(spec, List(connection));
        if (spec.Mode == KvmNetworkMode.Bridge)
        {
            CheckHostBridge(connection, spec.Bridge!);
        }
        else if (spec.Bridge is not null)
        {
            CheckBridgeNameFree(connection, spec.Bridge);
        }

        return xml;
    }

    /// <summary>
    /// Creates a network: checks the spec against the host's networks, defines it, then (as asked) starts it and marks
    /// it autostart. A failure after the definition removes it again: nothing is left half-made.
    /// </summary>
    public static KvmNetwork Create(KvmConnection connection, NetworkSpec spec, IKvmLog log)
    {
        XElement xml = Prepare(connection, spec);
        log.Verbose($"Defining network '{spec.Name}' ({spec.Mode}{(spec.Subnets.Count > 0 ? ", " + string.Join(", ", spec.Subnets) : string.Empty)}) on {connection.Uri}");
        Call(connection, spec.Name, c => c.DefineNetwork(xml.ToString()));
        bool started = false;
        string step = "define";
        try
        {
            if (spec.Start)
            {
                step = "start";
                log.Verbose($"Starting network '{spec.Name}'");
                Call(connection, spec.Name, c => c.StartNetwork(spec.Name));
                started = true;
            }

            if (spec.Autostart)
            {
                step = "autostart";
                log.Verbose($"Marking network '{spec.Name}' to start with the host");
                Call(connection, spec.Name, c => c.SetNetworkAutostart(spec.Name, true));
            }
        }
        catch (Exception e) when (e is LibvirtException or KvmOperationException)
        {
            log.Verbose($"Could not {step} network '{spec.Name}': removing its definition again");
            Undo(connection, spec.Name, started, log);
            throw new KvmOperationException("NetworkCreateFailed",
                $"Network '{spec.Name}' could not be {(step == "start" ? "started" : "marked autostart")}: {e.Message.TrimEnd('.')}. Its definition was removed again; nothing was created.",
                spec.Name, e)
            {
                Step = step,
                Kind = KvmErrorKind.InvalidOperation,
                Hint = step == "start"
                    ? "Check that the subnet and bridge name are not used by a host interface (ip -br addr), then try again."
                    : null,
            };
        }

        KvmNetwork created = Get(connection, spec.Name) ?? throw NotFound(spec.Name, connection);
        return created;
    }

    public static void Start(KvmNetwork network, IKvmLog log)
    {
        KvmNetwork now = Refresh(network);
        if (now.Active)
        {
            throw StateInvalid(now, "start", "it is already active");
        }

        log.Verbose($"Starting network '{now.Name}'");
        Call(now.Connection, now.Name, c => c.StartNetwork(now.Name));
    }

    public static void Stop(KvmNetwork network, IKvmLog log)
    {
        KvmNetwork now = Refresh(network);
        if (!now.Active)
        {
            throw StateInvalid(now, "stop", "it is not active");
        }

        log.Verbose(now.Persistent ? $"Stopping network '{now.Name}'" : $"Stopping transient network '{now.Name}': this also removes it");
        Call(now.Connection, now.Name, c => c.StopNetwork(now.Name));
    }

    public static void SetAutostart(KvmNetwork network, bool autostart, IKvmLog log)
    {
        KvmNetwork now = Refresh(network);
        log.Verbose($"{(autostart ? "Marking" : "Unmarking")} network '{now.Name}' to start with the host");
        Call(now.Connection, now.Name, c => c.SetNetworkAutostart(now.Name, autostart));
    }

    /// <summary>
    /// Removes a network: stops it if active, then deletes its definition. Refuses (NetworkInUse) while a running VM has
    /// a NIC on it, unless <paramref name="force"/>. If the definition cannot be deleted, a network it stopped is restarted.
    /// </summary>
    public static void Remove(KvmNetwork network, bool force, IKvmLog log)
    {
        KvmNetwork now = Refresh(network);
        (IReadOnlyList<string> running, IReadOnlyList<string> stopped) = VmsUsing(now);
        if (running.Count > 0 && !force)
        {
            throw new KvmOperationException("NetworkInUse",
                $"Network '{now.Name}' is used by running VM{(running.Count == 1 ? string.Empty : "s")} {string.Join(", ", running.Select(v => $"'{v}'"))}; it was not removed.",
                now.Name)
            {
                Kind = KvmErrorKind.InUse,
                Hint = "Stop those VMs or move their network adapters first, or use -Force to remove the network anyway (their NICs lose connectivity).",
            };
        }

        if (running.Count > 0)
        {
            log.Warning($"Removing network '{now.Name}' while running VMs use it (-Force): {string.Join(", ", running)} lose connectivity.");
        }

        if (stopped.Count > 0)
        {
            log.Warning($"VMs that are not running still have NICs on network '{now.Name}' and cannot start until those are changed: {string.Join(", ", stopped)}.");
        }

        bool stoppedIt = false;
        if (now.Active)
        {
            log.Verbose($"Stopping network '{now.Name}'");
            Call(now.Connection, now.Name, c => c.StopNetwork(now.Name));
            stoppedIt = true;
        }

        if (now.Persistent)
        {
            log.Verbose($"Deleting the definition of network '{now.Name}'");
            try
            {
                Call(now.Connection, now.Name, c => c.UndefineNetwork(now.Name));
            }
            catch (Exception) when (stoppedIt)
            {
                try
                {
                    log.Verbose($"Restarting network '{now.Name}' after the failed removal");
                    now.Connection.Invoke(c => c.StartNetwork(now.Name));
                }
                catch (LibvirtException e)
                {
                    log.Warning($"Network '{now.Name}' could not be restarted after the failed removal: {e.Message}");
                }

                throw;
            }
        }

        now.Connection.CacheNames(CacheKind, now.Connection.CachedNames(CacheKind).Where(n => n != now.Name));
    }

    /// <summary>Names of the VMs with a NIC on the network: those running (active) and those that are not.</summary>
    public static (IReadOnlyList<string> Running, IReadOnlyList<string> Stopped) VmsUsing(KvmNetwork network)
    {
        var running = new List<string>();
        var stopped = new List<string>();
        foreach (KvmVm vm in VmService.List(network.Connection))
        {
            bool uses;
            try
            {
                uses = vm.NetworkAdapters.Any(a => a.Type == "network" && a.Source == network.Name);
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomain)
            {
                continue;   // removed meanwhile
            }

            if (uses)
            {
                (vm.Id is not null ? running : stopped).Add(vm.Name);
            }
        }

        return (running, stopped);
    }

    /// <summary>The DHCP leases of an active network, optionally only those of some MAC addresses.</summary>
    public static IReadOnlyList<KvmNetworkLease> GetLeases(KvmNetwork network, IReadOnlyCollection<string>? macAddresses)
    {
        HashSet<string>? macs = macAddresses is { Count: > 0 } ? macAddresses.Select(NormalizeMac).ToHashSet(StringComparer.Ordinal) : null;
        IReadOnlyList<NetworkLease> leases;
        try
        {
            leases = network.Connection.Invoke(c => c.GetNetworkLeases(network.Name));
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoSupport or LibvirtErrorCode.OperationUnsupported or LibvirtErrorCode.ArgumentUnsupported)
        {
            throw new KvmOperationException("LibvirtNotSupported",
                $"The libvirt driver of {network.Connection.Uri} cannot report DHCP leases of network '{network.Name}' ({e.Message}).", network.Name, e)
            {
                Kind = KvmErrorKind.NotSupported,
                Hint = "DHCP leases are read from the network's dnsmasq: use a qemu:// (network driver) connection.",
            };
        }
        catch (LibvirtException e)
        {
            throw Translate(e, network.Name, network.Connection);
        }

        return leases
            .Where(l => macs is null || (l.MacAddress is not null && macs.Contains(NormalizeMac(l.MacAddress))))
            .Select(l => new KvmNetworkLease
            {
                Network = network.Name,
                Interface = string.IsNullOrEmpty(l.Interface) ? null : l.Interface,
                MacAddress = l.MacAddress,
                IPAddress = l.IPAddress,
                Prefix = l.Prefix,
                AddressFamily = l.Type == 1 ? KvmAddressFamily.IPv6 : KvmAddressFamily.IPv4,
                HostName = l.HostName,
                ClientId = l.ClientId,
                Expiry = l.Expiry,
                Connection = network.Connection,
            })
            .ToList();
    }

    /// <summary>A MAC address in libvirt's form: lower case, colon separated.</summary>
    public static string NormalizeMac(string mac) => mac.Trim().Replace('-', ':').ToLowerInvariant();

    internal static KvmOperationException NotFound(string name, KvmConnection connection)
        => new("NetworkNotFound", $"There is no virtual network '{name}' on {connection.Uri}.", name)
        {
            Kind = KvmErrorKind.NotFound,
            Hint = "Run Get-KvmNetwork to list the networks on that host.",
        };

    private static void CheckOverlaps(IList<string> texts, List<IpSubnet> subnets, IReadOnlyList<KvmNetwork> existing)
    {
        for (int i = 0; i < subnets.Count; i++)
        {
            for (int j = 0; j < i; j++)
            {
                if (subnets[i].Overlaps(subnets[j]))
                {
                    throw Overlap(texts[i], $"Subnet {subnets[i]} overlaps {subnets[j]}, also given to -Subnet.");
                }
            }

            foreach (KvmNetwork n in existing)
            {
                foreach (string other in n.Subnets)
                {
                    int slash = other.IndexOf('/');
                    if (slash > 0 && IPAddress.TryParse(other[..slash], out IPAddress? a)
                        && int.TryParse(other[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int prefix)
                        && subnets[i].Overlaps(IpSubnet.FromAddress(a, prefix)))
                    {
                        throw Overlap(texts[i], $"Subnet {subnets[i]} overlaps {other} of network '{n.Name}'.");
                    }
                }
            }
        }
    }

    /// <summary>Only a local QEMU host's devices can be seen from here (the test driver's host is imaginary).</summary>
    private static bool CanSeeHostDevices(KvmConnection connection)
        => string.Equals(connection.Hypervisor, "QEMU", StringComparison.OrdinalIgnoreCase) && Directory.Exists("/sys/class/net") && connection.IsProvenLocal;

    private static void CheckBridgeNameFree(KvmConnection connection, string bridge)
    {
        if (CanSeeHostDevices(connection) && Directory.Exists(Path.Combine("/sys/class/net", bridge)))
        {
            throw new KvmOperationException("BridgeInUse", $"The host already has an interface named '{bridge}'; libvirt must create the network's bridge itself.", bridge)
            {
                Kind = KvmErrorKind.InUse,
                Hint = "Choose another -Bridge name, or leave it out to let libvirt pick a free virbrN. To join an existing host bridge, use -Mode Bridge.",
            };
        }
    }

    private static void CheckHostBridge(KvmConnection connection, string bridge)
    {
        if (!CanSeeHostDevices(connection))
        {
            return;
        }

        string dev = Path.Combine("/sys/class/net", bridge);
        if (!Directory.Exists(dev) || !Directory.Exists(Path.Combine(dev, "bridge")))
        {
            throw new KvmOperationException("BridgeNotFound",
                Directory.Exists(dev) ? $"The host interface '{bridge}' is not a bridge." : $"The host has no bridge named '{bridge}'.", bridge)
            {
                Kind = KvmErrorKind.NotFound,
                Hint = "A Bridge-mode network attaches guests to an existing host bridge: create it first (ip link add name br0 type bridge, or your distribution's network configuration).",
            };
        }
    }

    private static void Undo(KvmConnection connection, string name, bool started, IKvmLog log)
    {
        try
        {
            if (started)
            {
                connection.Invoke(c => c.StopNetwork(name));
            }

            connection.Invoke(c => c.UndefineNetwork(name));
        }
        catch (LibvirtException e)
        {
            log.Warning($"Could not remove network '{name}' after the failure: {e.Message} Remove it with Remove-KvmNetwork.");
        }
    }

    private static void Call(KvmConnection connection, string name, Action<ILibvirtConnection> call)
    {
        try
        {
            connection.Invoke(call);
        }
        catch (LibvirtException e)
        {
            throw Translate(e, name, connection);
        }
    }

    /// <summary>libvirt's errors about networks under KvmPS's network error ids; others pass through unchanged.</summary>
    private static Exception Translate(LibvirtException e, string name, KvmConnection connection) => e.Code switch
    {
        LibvirtErrorCode.NoNetwork => new KvmOperationException("NetworkNotFound", $"There is no virtual network '{name}' on {connection.Uri}.", name, e)
        {
            Kind = KvmErrorKind.NotFound,
            Hint = "Run Get-KvmNetwork to list the networks on that host.",
        },
        LibvirtErrorCode.OperationInvalid => new KvmOperationException("NetworkStateInvalid", $"Network '{name}': {e.Message}", name, e)
        {
            Kind = KvmErrorKind.InvalidOperation,
        },
        LibvirtErrorCode.NetworkExist => new KvmOperationException("NetworkExists", $"Network '{name}': {e.Message}", name, e)
        {
            Kind = KvmErrorKind.AlreadyExists,
        },
        LibvirtErrorCode.NoSupport or LibvirtErrorCode.OperationUnsupported or LibvirtErrorCode.ArgumentUnsupported
            => new KvmOperationException("LibvirtNotSupported", $"Network '{name}': {e.Message}", name, e) { Kind = KvmErrorKind.NotSupported },
        _ => e,
    };

    private static KvmOperationException StateInvalid(KvmNetwork n, string action, string why)
        => new("NetworkStateInvalid", $"Cannot {action} network '{n.Name}': {why}.", n.Name) { Kind = KvmErrorKind.InvalidOperation };

    private static KvmOperationException Invalid(string id, string message, object? target, string? hint = null)
        => new(id, message, target) { Kind = KvmErrorKind.InvalidArgument, Hint = hint };

    private static KvmOperationException RangeOutside(string text, string why)
        => new("DhcpRangeOutsideSubnet", $"DHCP range '{text}' is not usable: {why}", text)
        {
            Kind = KvmErrorKind.InvalidArgument,
            Hint = "Each -DhcpRange must lie inside one -Subnet, start at or before its end, and leave out the network, broadcast and host (gateway) addresses.",
        };

    private static KvmOperationException Overlap(string text, string message)
        => new("SubnetOverlap", message + " Nothing was created.", text)
        {
            Kind = KvmErrorKind.InvalidArgument,
            Hint = "Choose a subnet no other network on the host uses (Get-KvmNetwork | Select-Object Name, Subnets).",
        };

    private static int PrefixOf(XElement ip, IPAddress address)
    {
        if (int.TryParse((string?)ip.Attribute("prefix"), NumberStyles.None, CultureInfo.InvariantCulture, out int prefix))
        {
            return prefix;
        }

        if ((string?)ip.Attribute("netmask") is { } mask && IPAddress.TryParse(mask, out IPAddress? m))
        {
            int p = IpSubnet.PrefixFromNetmask(m);
            if (p >= 0)
            {
                return p;
            }
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return 64;
        }

        byte first = address.GetAddressBytes()[0];
        return first < 128 ? 8 : first < 192 ? 16 : 24;   // libvirt's classful default for an IPv4 address without a mask
    }
}
