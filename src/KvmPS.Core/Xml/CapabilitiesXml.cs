using System.Globalization;
using System.Xml.Linq;

namespace KvmPS.Core.Xml;

/// <summary>What libvirt's host capabilities document says (virConnectGetCapabilities).</summary>
public sealed class HostCapabilities
{
    public string? Arch { get; set; }
    public string? CpuModel { get; set; }
    public string? CpuVendor { get; set; }
    public HashSet<string> CpuFeatures { get; } = new(StringComparer.Ordinal);
    /// <summary>The iommu element's support attribute; null when the document has none.</summary>
    public bool? IommuSupport { get; set; }
    public int NumaCells { get; set; }
    public List<GuestCapability> Guests { get; } = [];
}

/// <summary>One guest architecture libvirt can run, with its machine types and domain types.</summary>
public sealed class GuestCapability
{
    public string OsType { get; set; } = "hvm";
    public string Arch { get; set; } = string.Empty;
    public string? Emulator { get; set; }
    public List<(string Name, string? Canonical, int? MaxCpus, bool Deprecated)> Machines { get; } = [];
    public List<string> DomainTypes { get; } = [];
}

/// <summary>What libvirt's domain capabilities document says (virConnectGetDomainCapabilities).</summary>
public sealed class DomainCapabilities
{
    public string? DomainType { get; set; }
    public string? Machine { get; set; }
    public int? MaxVcpus { get; set; }
    public List<string> FirmwareValues { get; } = [];
    public List<string> LoaderTypes { get; } = [];
    public List<string> LoaderSecure { get; } = [];
    public List<string> Loaders { get; } = [];
    public List<string> CpuModes { get; } = [];
}

/// <summary>Parses capabilities documents with System.Xml.Linq.</summary>
public static class CapabilitiesXml
{
    public static HostCapabilities ParseHost(string xml)
    {
        XElement root = XElement.Parse(xml);
        XElement? host = root.Element("host");
        XElement? cpu = host?.Element("cpu");
        var caps = new HostCapabilities
        {
            Arch = (string?)cpu?.Element("arch"),
            CpuModel = (string?)cpu?.Element("model"),
            CpuVendor = (string?)cpu?.Element("vendor"),
            NumaCells = (int?)host?.Element("topology")?.Element("cells")?.Attribute("num") ?? 0,
        };
        foreach (XElement f in cpu?.Elements("feature") ?? [])
        {
            if ((string?)f.Attribute("name") is { } n)
            {
                caps.CpuFeatures.Add(n);
            }
        }

        if ((string?)host?.Element("iommu")?.Attribute("support") is { } iommu)
        {
            caps.IommuSupport = iommu == "yes";
        }

        foreach (XElement g in root.Elements("guest"))
        {
            XElement? arch = g.Element("arch");
            var gc = new GuestCapability
            {
                OsType = (string?)g.Element("os_type") ?? "hvm",
                Arch = (string?)arch?.Attribute("name") ?? string.Empty,
                Emulator = (string?)arch?.Element("emulator"),
            };
            foreach (XElement m in arch?.Elements("machine") ?? [])
            {
                gc.Machines.Add((m.Value.Trim(), (string?)m.Attribute("canonical"),
                    int.TryParse((string?)m.Attribute("maxCpus"), NumberStyles.None, CultureInfo.InvariantCulture, out int mc) ? mc : null,
                    (string?)m.Attribute("deprecated") == "yes"));
            }

            foreach (XElement d in arch?.Elements("domain") ?? [])
            {
                if ((string?)d.Attribute("type") is { } t && !gc.DomainTypes.Contains(t))
                {
                    gc.DomainTypes.Add(t);
                }
            }

            caps.Guests.Add(gc);
        }

        return caps;
    }

    public static DomainCapabilities ParseDomain(string xml)
    {
        XElement root = XElement.Parse(xml);
        var caps = new DomainCapabilities
        {
            DomainType = (string?)root.Element("domain"),
            Machine = (string?)root.Element("machine"),
            MaxVcpus = (int?)root.Element("vcpu")?.Attribute("max"),
        };
        XElement? os = root.Element("os");
        if ((string?)os?.Attribute("supported") != "no")
        {
            caps.FirmwareValues.AddRange(EnumValues(os, "firmware"));
            XElement? loader = os?.Element("loader");
            if ((string?)loader?.Attribute("supported") == "yes")
            {
                caps.Loaders.AddRange(loader!.Elements("value").Select(v => v.Value.Trim()));
                caps.LoaderTypes.AddRange(EnumValues(loader, "type"));
                caps.LoaderSecure.AddRange(EnumValues(loader, "secure"));
            }
        }

        foreach (XElement m in root.Element("cpu")?.Elements("mode") ?? [])
        {
            if ((string?)m.Attribute("supported") == "yes" && (string?)m.Attribute("name") is { } n)
            {
                caps.CpuModes.Add(n);
            }
        }

        return caps;
    }

    private static IEnumerable<string> EnumValues(XElement? parent, string name)
        => parent?.Elements("enum").Where(e => (string?)e.Attribute("name") == name).SelectMany(e => e.Elements("value")).Select(v => v.Value.Trim()) ?? [];
}
