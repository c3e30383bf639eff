using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Guest agent calls of the managed connection.</summary>
internal sealed partial class ManagedConnection
{
    /// <summary>QEMU_PROC_DOMAIN_AGENT_COMMAND (QEMU program).</summary>
    private const int ProcGuestQemuAgentCommand = 3;
    private const int ProcGuestGetGuestInfo = 418;

    /// <summary>REMOTE_DOMAIN_GUEST_INFO_PARAMS_MAX.</summary>
    private const int GuestInfoParamsMax = 2048;

    public string QemuAgentCommand(DomainRef domain, string json, int timeoutSeconds)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        string? result = Qemu(ProcGuestQemuAgentCommand, w =>
        {
            w.WriteDomain(d);
            w.WriteString(json);
            w.WriteInt32(timeoutSeconds);
            w.WriteUInt32(0);
        }, r => r.ReadOptionalString());
        return result ?? throw new LibvirtException(LibvirtErrorCode.InternalError, LibvirtErrorDomain.None,
            "virDomainQemuAgentCommand failed without an error from libvirt.") { Function = "virDomainQemuAgentCommand" };
    }

    public IReadOnlyList<TypedParameter> GetGuestInfo(DomainRef domain, uint types)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        return Remote(ProcGuestGetGuestInfo, w =>
        {
            w.WriteDomain(d);
            w.WriteUInt32(types);
            w.WriteUInt32(0);
        }, r => r.ReadTypedParameters(GuestInfoParamsMax));
    }
}
