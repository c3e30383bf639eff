using KvmPS.Core.Backend;

namespace KvmPS.Core.Native;

/// <summary>Bulk reads: the C API answers one call at a time, so these are plain loops.</summary>
internal sealed unsafe partial class NativeConnection
{
    public IReadOnlyList<string?> GetDomainXmls(IReadOnlyList<DomainRef> domains, DomainXmlFlags flags)
    {
        var result = new string?[domains.Count];
        for (int i = 0; i < result.Length; i++)
        {
            try
            {
                result[i] = GetDomainXml(domains[i], flags);
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomain)
            {
                result[i] = null;
            }
        }

        return result;
    }
}
