using System.Globalization;
using System.Xml;
using System.Xml.Linq;

namespace KvmPS.Core.Xml;

/// <summary>The parts of a libvirt domain definition KvmPS reads and writes.</summary>
public sealed class DomainConfig
{
    public string Name { get; set; } = string.Empty;
    public Guid? Uuid { get; set; }
    /// <summary>libvirt's domain type: kvm, qemu, test ...</summary>
    public string DomainType { get; set; } = "kvm";
    public string? Title { get; set; }
    public string? Description { get; set; }
    /// <summary>libvirt's memory (the ceiling), in KiB.</summary>
    public ulong MaxMemoryKiB { get; set; }
    /// <summary>libvirt's currentMemory, in KiB; equals <see cref="MaxMemoryKiB"/> when absent.</summary>
    public ulong MemoryKiB { get; set; }
    public int CpuCount { get; set; } = 1;
    public int MaxCpuCount { get; set; } = 1;
    public string Arch { get; set; } = "x86_64";
    public string? MachineType { get; set; }
    public string OsType { get; set; } = "hvm";
    public KvmFirmware Firmware { get; set; }
    public string? CpuMode { get; set; }
    public string? Kernel { get; set; }
    public string? Initrd { get; set; }
    public string? KernelArguments { get; set; }
    public List<string> BootDevices { get; } = [];
    public List<KvmVmDisk> Disks { get; } = [];
    public List<KvmVmNetworkAdapter> NetworkAdapters { get; } = [];
    public bool SerialConsole { get; set; }
    public bool GuestAgentChannel { get; set; }
    /// <summary>VNC listen address; null: no graphics.</summary>
    public string? VncListen { get; set; }

    /// <summary>A virtio-scsi controller (for SCSI disks and CD-ROMs; cloud kernels lack SATA drivers).</summary>
    public bool VirtioScsiController { get; set; }

    public KvmAccelerator Accelerator => DomainType switch
    {
        "kvm" => KvmAccelerator.Kvm,
        "qemu" => KvmAccelerator.Qemu,
        "" => KvmAccelerator.Unknown,
        _ => KvmAccelerator.Other,
    };
}

/// <summary>Builds and parses libvirt domain XML with System.Xml.Linq (never by string concatenation).</summary>
public static class DomainXml
{
    /// <summary>Parses a domain definition. Throws <see cref="FormatException"/> when it is not one.</summary>
    public static DomainConfig Parse(string xml)
    {
        XElement root;
        try
        {
            root = XElement.Parse(xml);
        }
        catch (XmlException e)
        {
            throw new FormatException($"The domain XML is not well-formed: {e.Message}", e);
        }

        if (root.Name != "domain")
        {
            throw new FormatException($"Expected a <domain> element, found <{root.Name}>.");
        }

        var c = new DomainConfig
        {
            Name = (string?)root.Element("name") ?? string.Empty,
            Uuid = Guid.TryParse((string?)root.Element("uuid"), out Guid g) ? g : null,
            DomainType = (string?)root.Attribute("type") ?? string.Empty,
            Title = (string?)root.Element("title"),
            Description = (string?)root.Element("description"),
        };
        c.MaxMemoryKiB = SizeKiB(root.Element("memory")) ?? 0;
        c.MemoryKiB = SizeKiB(root.Element("currentMemory")) ?? c.MaxMemoryKiB;
        XElement? vcpu = root.Element("vcpu");
        c.MaxCpuCount = ParseInt(vcpu?.Value, 1);
        c.CpuCount = ParseInt((string?)vcpu?.Attribute("current"), c.MaxCpuCount);

        XElement? os = root.Element("os");
        XElement? type = os?.Element("type");
        c.OsType = type?.Value.Trim() ?? "hvm";
        c.Arch = (string?)type?.Attribute("arch") ?? c.Arch;
        c.MachineType = (string?)type?.Attribute("machine");
        string? loaderType = (string?)os?.Element("loader")?.Attribute("type");
        c.Firmware = (string?)os?.Attribute("firmware") == "efi" || loaderType == "pflash" || os?.Element("nvram") is not null
            ? KvmFirmware.Uefi : KvmFirmware.Bios;
        c.Kernel = (string?)os?.Element("kernel");
        c.Initrd = (string?)os?.Element("initrd");
        c.KernelArguments = (string?)os?.Element("cmdline");
        foreach (XElement boot in os?.Elements("boot") ?? [])
        {
            if ((string?)boot.Attribute("dev") is { } dev)
            {
                c.BootDevices.Add(dev);
            }
        }

        c.CpuMode = (string?)root.Element("cpu")?.Attribute("mode");
        XElement? devices = root.Element("devices");
        foreach (XElement d in devices?.Elements("disk") ?? [])
        {
            c.Disks.Add(ParseDisk(d));
        }

        foreach (XElement n in devices?.Elements("interface") ?? [])
        {
            c.NetworkAdapters.Add(ParseInterface(n));
        }

        c.VirtioScsiController = devices?.Elements("controller").Any(x => (string?)x.Attribute("type") == "scsi" && (string?)x.Attribute("model") == "virtio-scsi") == true;
        c.SerialConsole = devices?.Element("serial") is not null || devices?.Element("console") is not null;
        c.GuestAgentChannel = devices?.Elements("channel").Any(ch => (string?)ch.Element("target")?.Attribute("name") == "org.qemu.guest_agent.0") == true;
        c.VncListen = devices?.Elements("graphics").Where(gr => (string?)gr.Attribute("type") == "vnc")
            .Select(gr => (string?)gr.Attribute("listen") ?? (string?)gr.Element("listen")?.Attribute("address") ?? string.Empty).FirstOrDefault();
        return c;
    }

    /// <summary>Builds a domain definition from <paramref name="c"/>.</summary>
    public static string Build(DomainConfig c)
    {
        ArgumentException.ThrowIfNullOrEmpty(c.Name);
        var root = new XElement("domain", new XAttribute("type", c.DomainType),
            new XElement("name", c.Name),
            c.Uuid is { } u ? new XElement("uuid", u.ToString("D")) : null,
            string.IsNullOrEmpty(c.Title) ? null : new XElement("title", c.Title),
            string.IsNullOrEmpty(c.Description) ? null : new XElement("description", c.Description),
            new XElement("memory", new XAttribute("unit", "KiB"), c.MaxMemoryKiB),
            new XElement("currentMemory", new XAttribute("unit", "KiB"), c.MemoryKiB == 0 ? c.MaxMemoryKiB : c.MemoryKiB),
            new XElement("vcpu", new XAttribute("placement", "static"),
                c.CpuCount < c.MaxCpuCount ? new XAttribute("current", c.CpuCount) : null,
                Math.Max(c.CpuCount, c.MaxCpuCount)));

        var os = new XElement("os",
            c.Firmware == KvmFirmware.Uefi ? new XAttribute("firmware", "efi") : null,
            new XElement("type", new XAttribute("arch", c.Arch), c.MachineType is null ? null : new XAttribute("machine", c.MachineType), c.OsType),
            c.Kernel is null ? null : new XElement("kernel", c.Kernel),
            c.Initrd is null ? null : new XElement("initrd", c.Initrd),
            c.KernelArguments is null ? null : new XElement("cmdline", c.KernelArguments),
            c.BootDevices.Select(b => new XElement("boot", new XAttribute("dev", b))));
        root.Add(os);
        if (c.OsType == "hvm")
        {
            root.Add(new XElement("features", new XElement("acpi"), new XElement("apic")));
        }

        if (c.CpuMode is not null)
        {
            root.Add(new XElement("cpu", new XAttribute("mode", c.CpuMode)));
        }

        var devices = new XElement("devices");
        if (c.VirtioScsiController)
        {
            devices.Add(new XElement("controller", new XAttribute("type", "scsi"), new XAttribute("index", 0), new XAttribute("model", "virtio-scsi")));
        }

        foreach (KvmVmDisk d in c.Disks)
        {
            devices.Add(BuildDisk(d));
        }

        foreach (KvmVmNetworkAdapter n in c.NetworkAdapters)
        {
            devices.Add(BuildInterface(n));
        }

        if (c.SerialConsole)
        {
            devices.Add(new XElement("serial", new XAttribute("type", "pty"), new XElement("target", new XAttribute("port", 0))));
            devices.Add(new XElement("console", new XAttribute("type", "pty"), new XElement("target", new XAttribute("type", "serial"), new XAttribute("port", 0))));
        }

        if (c.GuestAgentChannel)
        {
            devices.Add(new XElement("channel", new XAttribute("type", "unix"),
                new XElement("target", new XAttribute("type", "virtio"), new XAttribute("name", "org.qemu.guest_agent.0"))));
        }

        if (c.VncListen is not null)
        {
            devices.Add(new XElement("graphics", new XAttribute("type", "vnc"), new XAttribute("port", -1), new XAttribute("autoport", "yes"),
                new XElement("listen", new XAttribute("type", "address"), new XAttribute("address", c.VncListen))));
        }

        root.Add(devices);
        return root.ToString(SaveOptions.None);
    }

    /// <summary>Reads a libvirt size element (value + unit attribute, default KiB) as KiB.</summary>
    internal static ulong? SizeKiB(XElement? e)
    {
        if (e is null || !ulong.TryParse(e.Value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong v))
        {
            return null;
        }

        string unit = (string?)e.Attribute("unit") ?? "KiB";
        decimal bytes = v * UnitBytes(unit);
        return (ulong)(bytes / 1024m);
    }

    /// <summary>Bytes per libvirt unit name (b, KB, KiB, k, MB, M, MiB, ...).</summary>
    internal static decimal UnitBytes(string unit) => unit switch
    {
        "b" or "bytes" => 1m,
        "KB" => 1000m,
        "k" or "K" or "KiB" => 1024m,
        "MB" => 1000m * 1000m,
        "M" or "MiB" => 1024m * 1024m,
        "GB" => 1000m * 1000m * 1000m,
        "G" or "GiB" => 1024m * 1024m * 1024m,
        "TB" => 1000m * 1000m * 1000m * 1000m,
        "T" or "TiB" => 1024m * 1024m * 1024m * 1024m,
        "PB" => 1000m * 1000m * 1000m * 1000m * 1000m,
        "P" or "PiB" => 1024m * 1024m * 1024m * 1024m * 1024m,
        _ => throw new FormatException($"Unknown size unit '{unit}'."),
    };

    private static int ParseInt(string? s, int fallback)
        => int.TryParse(s?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : fallback;

    /// <summary>Reads one &lt;disk&gt; element.</summary>
    internal static KvmVmDisk ParseDisk(XElement d)
    {
        XElement? source = d.Element("source");
        string? sourceType = (string?)d.Attribute("type");
        string? path = (string?)source?.Attribute("file") ?? (string?)source?.Attribute("dev") ?? (string?)source?.Attribute("dir");
        if (path is null && sourceType == "network")
        {
            path = (string?)source?.Attribute("name");
        }

        return new KvmVmDisk
        {
            Target = (string?)d.Element("target")?.Attribute("dev") ?? string.Empty,
            Bus = (string?)d.Element("target")?.Attribute("bus"),
            Device = (string?)d.Attribute("device") ?? "disk",
            Format = (string?)d.Element("driver")?.Attribute("type"),
            ReadOnly = d.Element("readonly") is not null,
            SourceType = sourceType,
            Path = path,
            Pool = (string?)source?.Attribute("pool"),
            Volume = (string?)source?.Attribute("volume"),
        };
    }

    /// <summary>Builds one &lt;disk&gt; element (also the device XML for attach and detach).</summary>
    internal static XElement BuildDisk(KvmVmDisk d)
    {
        string type = d.SourceType ?? (d.Pool is not null ? "volume" : "file");
        XElement? source = type switch
        {
            "volume" => new XElement("source", new XAttribute("pool", d.Pool ?? string.Empty), new XAttribute("volume", d.Volume ?? string.Empty)),
            "block" when d.Path is not null => new XElement("source", new XAttribute("dev", d.Path)),
            _ when d.Path is not null => new XElement("source", new XAttribute("file", d.Path)),
            _ => null,
        };
        return new XElement("disk", new XAttribute("type", type), new XAttribute("device", d.Device),
            new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", d.Format ?? (d.Device == "cdrom" ? "raw" : "qcow2"))),
            source,
            new XElement("target", new XAttribute("dev", d.Target), d.Bus is null ? null : new XAttribute("bus", d.Bus)),
            d.ReadOnly ? new XElement("readonly") : null);
    }

    /// <summary>Reads one &lt;interface&gt; element.</summary>
    internal static KvmVmNetworkAdapter ParseInterface(XElement n)
    {
        string type = (string?)n.Attribute("type") ?? "network";
        XElement? source = n.Element("source");
        return new KvmVmNetworkAdapter
        {
            Type = type,
            MacAddress = (string?)n.Element("mac")?.Attribute("address"),
            Source = (string?)source?.Attribute("network") ?? (string?)source?.Attribute("bridge") ?? (string?)source?.Attribute("dev"),
            Model = (string?)n.Element("model")?.Attribute("type"),
            Target = (string?)n.Element("target")?.Attribute("dev"),
            LinkState = (string?)n.Element("link")?.Attribute("state") == "down" ? KvmLinkState.Down : KvmLinkState.Up,
        };
    }

    /// <summary>Builds one &lt;interface&gt; element (also the device XML for attach and detach).</summary>
    internal static XElement BuildInterface(KvmVmNetworkAdapter n)
    {
        string attr = n.Type switch
        {
            "bridge" => "bridge",
            "direct" => "dev",
            _ => "network",
        };
        return new XElement("interface", new XAttribute("type", n.Type),
            n.MacAddress is null ? null : new XElement("mac", new XAttribute("address", n.MacAddress)),
            n.Source is null || n.Type == "user" ? null : new XElement("source", new XAttribute(attr, n.Source)),
            n.Model is null ? null : new XElement("model", new XAttribute("type", n.Model)),
            n.LinkState == KvmLinkState.Down ? new XElement("link", new XAttribute("state", "down")) : null);
    }
}
