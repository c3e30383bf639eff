using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// A VM can start, or take a NIC live, only on active virtual networks. On a host without systemd libvirt's
/// 'default' network is often defined but not started; these checks name the network and the command that
/// fixes it (NetworkNotActive) instead of libvirt's bare "network 'x' is not active".
/// </summary>
public static class NetworkReadiness
{
    public static KvmOperationException NotActive(KvmConnection connection, string network, string action, Exception? inner = null)
        => new("NetworkNotActive", $"Virtual network '{network}' on {connection.HostName ?? connection.Uri} is not active, so {action}.", network, inner)
        {
            Kind = KvmErrorKind.Unavailable,
            Hint = $"Start the network with 'Start-KvmNetwork -Name {network}' (and run 'Set-KvmNetwork -Name {network} -Autostart $true' so it starts with the host), then try again.",
        };

    /// <summary>Throws NetworkNotActive for the first of <paramref name="networks"/> that exists but is not active.</summary>
    public static void RequireActive(KvmConnection connection, IEnumerable<string> networks, string action)
    {
        List<string> wanted = networks.Distinct(StringComparer.Ordinal).ToList();
        if (wanted.Count == 0)
        {
            return;
        }

        IReadOnlyList<NetworkData> all = connection.Invoke(c => c.ListNetworks());
        foreach (string name in wanted)
        {
            if (all.FirstOrDefault(n => n.Name == name) is { Active: false })
            {
                throw NotActive(connection, name, action);
            }
        }
    }

    /// <summary>The virtual networks (type='network' interfaces) a domain definition uses.</summary>
    public static IEnumerable<string> NetworksOf(string domainXml)
        => XElement.Parse(domainXml).Element("devices")?.Elements("interface")
            .Where(i => (string?)i.Attribute("type") == "network")
            .Select(i => (string?)i.Element("source")?.Attribute("network"))
            .Where(n => !string.IsNullOrEmpty(n))
            .Select(n => n!) ?? [];

    /// <summary>
    /// After libvirt refused to start a VM (operation invalid): NetworkNotActive when one of the VM's networks is
    /// down, else null (the original error stands).
    /// </summary>
    public static KvmOperationException? ExplainStartFailure(KvmVm vm, LibvirtException e)
    {
        if (e.Code != LibvirtErrorCode.OperationInvalid)
        {
            return null;
        }

        try
        {
            RequireActive(vm.Connection, NetworksOf(vm.Connection.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive))), $"VM '{vm.Name}' cannot start");
        }
        catch (KvmOperationException explained)
        {
            return new KvmOperationException(explained.ErrorId, explained.Message, explained.Target, e) { Kind = explained.Kind, Hint = explained.Hint };
        }
        catch (LibvirtException)
        {
            // the explanation is a courtesy: when it cannot be read, libvirt's own error stands
        }

        return null;
    }
}
