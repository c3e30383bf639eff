using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Device hot-plug, block resize and guest interface addresses of the managed connection.</summary>
internal sealed partial class ManagedConnection
{
    private const int ProcDeviceAttachFlags = 160;
    private const int ProcDeviceDetachFlags = 161;
    private const int ProcDeviceUpdateFlags = 174;
    private const int ProcDeviceBlockResize = 251;
    private const int ProcDeviceInterfaceAddresses = 353;

    /// <summary>VIR_DOMAIN_BLOCK_RESIZE_BYTES.</summary>
    private const uint DeviceBlockResizeBytes = 1;

    /// <summary>REMOTE_DOMAIN_INTERFACE_MAX / REMOTE_DOMAIN_IP_ADDR_MAX.</summary>
    private const int DeviceInterfaceMax = 2048;
    private const int DeviceIpAddrMax = 2048;

    public void AttachDevice(DomainRef domain, string xml, DomainModificationFlags flags)
        => DeviceXmlCall(ProcDeviceAttachFlags, domain, xml, flags);

    public void DetachDevice(DomainRef domain, string xml, DomainModificationFlags flags)
        => DeviceXmlCall(ProcDeviceDetachFlags, domain, xml, flags);

    public void UpdateDevice(DomainRef domain, string xml, DomainModificationFlags flags)
        => DeviceXmlCall(ProcDeviceUpdateFlags, domain, xml, flags);

    public void ResizeBlockDevice(DomainRef domain, string disk, ulong bytes)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        Remote(ProcDeviceBlockResize, w =>
        {
            w.WriteDomain(d);
            w.WriteString(disk);
            w.WriteUInt64(bytes);
            w.WriteUInt32(DeviceBlockResizeBytes);
        });
    }

    public IReadOnlyList<GuestInterface> GetInterfaceAddresses(DomainRef domain, int source)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        return Remote(ProcDeviceInterfaceAddresses, w =>
        {
            w.WriteDomain(d);
            w.WriteUInt32((uint)source);
            w.WriteUInt32(0);
        }, r => r.ReadArray(ReadGuestInterface, DeviceInterfaceMax));
    }

    // ---------------- device helpers ----------------

    /// <summary>Like the native backend: the domain is looked up by UUID first, then the call goes to it.</summary>
    private void DeviceXmlCall(int procedure, DomainRef domain, string xml, DomainModificationFlags flags)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        Remote(procedure, w =>
        {
            w.WriteDomain(d);
            w.WriteString(xml);
            w.WriteUInt32((uint)flags);
        });
    }

    /// <summary>remote_domain_interface.</summary>
    private static GuestInterface ReadGuestInterface(XdrReader r)
    {
        string name = r.ReadString();
        string? hwaddr = r.ReadOptionalString();
        IReadOnlyList<(int Type, string Address, int Prefix)> addrs = r.ReadArray(
            a => (a.ReadInt32(), a.ReadString(), (int)a.ReadUInt32()), DeviceIpAddrMax);
        return new GuestInterface(name, hwaddr, addrs);
    }
}
