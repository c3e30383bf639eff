using System.Runtime.InteropServices;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Native;

/// <summary>Guest agent calls of the native connection.</summary>
internal sealed unsafe partial class NativeConnection
{
    public string QemuAgentCommand(DomainRef domain, string json, int timeoutSeconds)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        return NativeCall.CheckString(NativeQemuMethods.virDomainQemuAgentCommand(h, json, timeoutSeconds, 0), "virDomainQemuAgentCommand");
    }

    public IReadOnlyList<TypedParameter> GetGuestInfo(DomainRef domain, uint types)
    {
        LibvirtLibrary.RequireExport("virDomainGetGuestInfo", "5.7.0");
        using SafeDomainHandle h = Open(domain.Uuid);
        NativeCall.Check(NativeMethods.virDomainGetGuestInfo(h, types, out IntPtr pars, out int n, 0), "virDomainGetGuestInfo");
        try
        {
            return ReadParams((VirTypedParameter*)pars, n);
        }
        finally
        {
            NativeMethods.virTypedParamsFree(pars, n);
        }
    }
}
