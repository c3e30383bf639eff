using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Virtual networks of the managed connection (REMOTE_PROC_NETWORK_*).</summary>
internal sealed partial class ManagedConnection
{
    private const int ProcNetworkCreate = 39;
    private const int ProcNetworkDefineXml = 41;
    private const int ProcNetworkDestroy = 42;
    private const int ProcNetworkGetXmlDesc = 43;
    private const int ProcNetworkGetAutostart = 44;
    private const int ProcNetworkLookupByName = 46;
    private const int ProcNetworkSetAutostart = 48;
    private const int ProcNetworkUndefine = 49;
    private const int ProcNetworkIsActive = 152;
    private const int ProcNetworkIsPersistent = 153;
    private const int ProcNetworkListAll = 283;
    private const int ProcNetworkGetDhcpLeases = 341;

    /// <summary>REMOTE_NETWORK_LIST_MAX / REMOTE_NETWORK_DHCP_LEASES_MAX.</summary>
    private const int NetworkListMax = 16384;
    private const int NetworkDhcpLeasesMax = 65536;

    /// <summary>remote_nonnull_network.</summary>
    private readonly record struct NetworkRef(string Name, Guid Uuid);

    public bool NetworkExists(string name)
    {
        try
        {
            _ = NetworkByName(name);
            return true;
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoNetwork)
        {
            return false;
        }
    }

    public IReadOnlyList<NetworkData> ListNetworks()
    {
        IReadOnlyList<NetworkRef> nets = Remote(ProcNetworkListAll, w =>
        {
            w.WriteInt32(1);    // need_results
            w.WriteUInt32(0);
        }, r =>
        {
            IReadOnlyList<NetworkRef> list = r.ReadArray(ReadNetwork, NetworkListMax);
            _ = r.ReadUInt32();
            return list;
        });
        var result = new List<NetworkData>(nets.Count);
        foreach (NetworkRef n in nets)
        {
            // Like the native backend: autostart and the active/persistent flags are best effort, the XML is not.
            bool autostart = TryRemote(ProcNetworkGetAutostart, w => WriteNetwork(w, n), r => r.ReadInt32() != 0);
            string xml;
            try
            {
                xml = Remote(ProcNetworkGetXmlDesc, w => { WriteNetwork(w, n); w.WriteUInt32(0); }, r => r.ReadString());
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoNetwork)
            {
                continue;   // removed since the list was taken (a transient network that stopped): not there any more
            }

            bool active = TryRemote(ProcNetworkIsActive, w => WriteNetwork(w, n), r => r.ReadInt32() == 1);
            bool persistent = TryRemote(ProcNetworkIsPersistent, w => WriteNetwork(w, n), r => r.ReadInt32() == 1);
            result.Add(new NetworkData(n.Name, n.Uuid, active, persistent, autostart, xml));
        }

        return result;
    }

    public void DefineNetwork(string xml) => _ = Remote(ProcNetworkDefineXml, w => w.WriteString(xml), ReadNetwork);

    public void StartNetwork(string name) => OnNetwork(name, ProcNetworkCreate);

    public void StopNetwork(string name) => OnNetwork(name, ProcNetworkDestroy);

    public void UndefineNetwork(string name) => OnNetwork(name, ProcNetworkUndefine);

    public void SetNetworkAutostart(string name, bool autostart)
    {
        NetworkRef n = NetworkByName(name);
        Remote(ProcNetworkSetAutostart, w => { WriteNetwork(w, n); w.WriteInt32(autostart ? 1 : 0); });
    }

    public IReadOnlyList<NetworkLease> GetNetworkLeases(string name)
    {
        NetworkRef n = NetworkByName(name);
        return Remote(ProcNetworkGetDhcpLeases, w =>
        {
            WriteNetwork(w, n);
            w.WriteOptionalString(null);    // mac: every lease
            w.WriteInt32(1);                // need_results
            w.WriteUInt32(0);
        }, r =>
        {
            IReadOnlyList<NetworkLease> leases = r.ReadArray(ReadLease, NetworkDhcpLeasesMax);
            _ = r.ReadUInt32();
            return leases;
        });
    }

    // ---------------- network helpers ----------------

    /// <summary>remote_network_dhcp_lease, shaped like the native backend's <see cref="NetworkLease"/>.</summary>
    private static NetworkLease ReadLease(XdrReader r)
    {
        string iface = r.ReadString();
        long expiry = r.ReadInt64();
        int type = r.ReadInt32();
        string? mac = r.ReadOptionalString();
        _ = r.ReadOptionalString();         // iaid (not exposed, as in the native backend)
        string ip = r.ReadString();
        uint prefix = r.ReadUInt32();
        string? hostname = r.ReadOptionalString();
        string? clientId = r.ReadOptionalString();
        return new NetworkLease(
            iface,
            expiry > 0 ? DateTimeOffset.FromUnixTimeSeconds(expiry).LocalDateTime : null,
            type,
            mac,
            ip,
            (int)prefix,
            hostname,
            clientId);
    }

    private void OnNetwork(string name, int procedure)
    {
        NetworkRef n = NetworkByName(name);
        Remote(procedure, w => WriteNetwork(w, n));
    }

    private NetworkRef NetworkByName(string name) => Remote(ProcNetworkLookupByName, w => w.WriteString(name), ReadNetwork);

    private static void WriteNetwork(XdrWriter w, NetworkRef n)
    {
        w.WriteString(n.Name);
        w.WriteUuid(n.Uuid);
    }

    private static NetworkRef ReadNetwork(XdrReader r) => new(r.ReadString(), r.ReadUuid());
}
