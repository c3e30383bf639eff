using System.Net;
using System.Xml.Linq;

namespace KvmPS.Core.Services;

/// <summary>
/// Rebuilds a VM definition read from a backup set from an allow-list. A backup set often sits on shared storage, so its
/// domain.xml is input, not configuration: only the VM's own settings and emulated devices come through (disks from the
/// set, NICs on networks/bridges, pty consoles, controllers, video and VNC/SPICE graphics, input, firmware, balloon, rng,
/// the guest agent channel). Whatever could make QEMU or libvirt touch a host file, device or process (qemu:commandline,
/// hostdev, filesystem, host CD-ROMs and their media, other disks, file/socket consoles, kernels, seclabel, emulator,
/// ...) is dropped and named in <c>Dropped</c>.
/// </summary>
internal static class RestoreDefinition
{
    private static readonly string[] s_topLevel =
    [
        "name", "uuid", "genid", "title", "description", "metadata", "memory", "currentMemory", "maxMemory", "vcpu", "vcpus",
        "iothreads", "cputune", "memtune", "cpu", "features", "clock", "on_poweroff", "on_reboot", "on_crash", "pm", "sysinfo",
    ];

    private static readonly string[] s_firmwareDirs = ["/usr/share/", "/usr/lib/"];

    /// <summary>The definition to define, and what was left out of it (for the warning and -WhatIf).</summary>
    public static (XElement Domain, List<string> Dropped) Build(XElement source, string name, bool newIdentity, IReadOnlyDictionary<string, string> disks)
    {
        var dropped = new List<string>();
        var domain = new XElement("domain");
        if ((string?)source.Attribute("type") is { } type && type is "kvm" or "qemu")
        {
            domain.SetAttributeValue("type", type);
        }
        else
        {
            domain.SetAttributeValue("type", "kvm");
            dropped.Add($"domain type '{(string?)source.Attribute("type")}' (kvm used)");
        }

        foreach (XElement e in source.Elements())
        {
            string local = e.Name.LocalName;
            if (e.Name.Namespace != XNamespace.None)
            {
                dropped.Add(Prefixed(source, e));
                continue;
            }

            switch (local)
            {
                case "name":
                    domain.Add(new XElement("name", name));
                    break;
                case "uuid" when newIdentity:
                    break;
                case "os":
                    domain.Add(Os(e, dropped));
                    break;
                case "devices":
                    domain.Add(Devices(e, newIdentity, disks, dropped));
                    break;
                default:
                    if (s_topLevel.Contains(local))
                    {
                        domain.Add(new XElement(e));
                    }
                    else
                    {
                        dropped.Add(local);
                    }

                    break;
            }
        }

        if (domain.Element("name") is null)
        {
            domain.AddFirst(new XElement("name", name));
        }

        return (domain, dropped);
    }

    private static string Prefixed(XElement root, XElement e)
        => root.GetPrefixOfNamespace(e.Name.Namespace) is { Length: > 0 } prefix ? $"{prefix}:{e.Name.LocalName}" : $"{{{e.Name.NamespaceName}}}{e.Name.LocalName}";

    private static XElement Os(XElement os, List<string> dropped)
    {
        var result = new XElement("os");
        foreach (XAttribute a in os.Attributes())
        {
            if (a.Name.LocalName == "firmware" && (string)a is "efi" or "bios")
            {
                result.SetAttributeValue("firmware", (string)a);
            }
        }

        foreach (XElement e in os.Elements())
        {
            switch (e.Name.LocalName)
            {
                case "type" or "boot" or "bootmenu" or "smbios" or "bios" or "firmware":
                    result.Add(new XElement(e));
                    break;
                case "loader":
                    string loader = e.Value.Trim();
                    if (loader.Length == 0 || FirmwareFile(loader))
                    {
                        result.Add(new XElement(e));
                    }
                    else
                    {
                        dropped.Add($"firmware loader '{loader}' (outside the system firmware folders)");
                    }

                    break;
                case "nvram":
                    // The VM's own NVRAM file path is never taken from the set (it could name any host file); libvirt makes a
                    // fresh one from the template.
                    string? template = (string?)e.Attribute("template");
                    if (template is not null && FirmwareFile(template))
                    {
                        result.Add(new XElement("nvram", new XAttribute("template", template)));
                    }
                    else if (template is not null)
                    {
                        dropped.Add($"NVRAM template '{template}' (outside the system firmware folders)");
                    }

                    break;
                default:
                    dropped.Add(e.Value.Trim() is { Length: > 0 } v ? $"os/{e.Name.LocalName} '{v}'" : $"os/{e.Name.LocalName}");
                    break;
            }
        }

        return result;
    }

    private static bool FirmwareFile(string path)
        => path.StartsWith('/') && !path.Contains("/../", StringComparison.Ordinal) && s_firmwareDirs.Any(d => path.StartsWith(d, StringComparison.Ordinal));

    private static XElement Devices(XElement source, bool newIdentity, IReadOnlyDictionary<string, string> disks, List<string> dropped)
    {
        var result = new XElement("devices");
        foreach (XElement e in source.Elements())
        {
            string kind = e.Name.LocalName;
            string type = (string?)e.Attribute("type") ?? string.Empty;
            switch (kind)
            {
                case "emulator":
                    string emulator = e.Value.Trim();
                    if (!Path.GetFileName(emulator).StartsWith("qemu-system-", StringComparison.Ordinal) && Path.GetFileName(emulator) != "kvm")
                    {
                        dropped.Add($"emulator '{emulator}'");
                    }

                    break;   // libvirt picks the host's emulator
                case "disk":
                    result.Add(Disk(e, disks, dropped));
                    break;
                case "interface" when type is "network" or "bridge" or "user":
                    result.Add(Interface(e, type, newIdentity));
                    break;
                case "serial" or "console" when type == "pty":
                    result.Add(new XElement(kind, new XAttribute("type", "pty"), Copy(e, "target", "address")));
                    break;
                case "channel" when type == "unix" && (string?)e.Element("target")?.Attribute("name") == "org.qemu.guest_agent.0":
                    result.Add(new XElement("channel", new XAttribute("type", "unix"),
                        new XElement("target", new XAttribute("type", "virtio"), new XAttribute("name", "org.qemu.guest_agent.0")), Copy(e, "address")));
                    break;
                case "channel" when type == "spicevmc":
                    result.Add(new XElement("channel", new XAttribute("type", "spicevmc"), Copy(e, "target", "address")));
                    break;
                case "controller" or "video" or "memballoon" or "watchdog" or "panic":
                    result.Add(new XElement(e));
                    break;
                case "input" when type is "mouse" or "keyboard" or "tablet":
                    result.Add(new XElement(e));
                    break;
                case "graphics" when type is "vnc" or "spice":
                    result.Add(Graphics(e, type));
                    break;
                case "audio" when type is "none" or "spice":
                    result.Add(new XElement("audio", e.Attributes().Where(a => a.Name.LocalName is "id" or "type")));
                    break;
                case "sound":
                    result.Add(new XElement("sound", e.Attributes().Where(a => a.Name.LocalName == "model"), Copy(e, "address", "codec")));
                    break;
                case "rng" when (string?)e.Element("backend")?.Attribute("model") == "random":
                    result.Add(new XElement("rng", new XAttribute("model", (string?)e.Attribute("model") ?? "virtio"),
                        new XElement("backend", new XAttribute("model", "random"), "/dev/urandom"), Copy(e, "rate", "address")));
                    break;
                default:
                    dropped.Add(Describe(e));
                    break;
            }
        }

        return result;
    }

    private static XElement? Disk(XElement e, IReadOnlyDictionary<string, string> disks, List<string> dropped)
    {
        string device = (string?)e.Attribute("device") ?? "disk";
        string? target = (string?)e.Element("target")?.Attribute("dev");
        XElement? targetElement = e.Element("target") is { } t
            ? new XElement("target", t.Attributes().Where(a => a.Name.LocalName is "dev" or "bus"))
            : null;
        if (device == "disk" && target is not null && disks.TryGetValue(target, out string? path))
        {
            XElement? driver = e.Element("driver");
            return new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "disk"),
                new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", "qcow2"),
                    driver?.Attributes().Where(a => a.Name.LocalName is "cache" or "discard" or "io" or "detect_zeroes")),
                new XElement("source", new XAttribute("file", path)),
                targetElement, Copy(e, "boot", "address", "serial"));
        }

        if (device == "cdrom" && target is not null)
        {
            // The drive stays, its medium does not: a file or host device named by the set is never handed to the guest.
            string? media = (string?)e.Element("source")?.Attribute("file") ?? (string?)e.Element("source")?.Attribute("dev");
            if (media is not null)
            {
                dropped.Add($"the medium '{media}' of CD-ROM drive {target} (restored empty)");
            }

            return new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "cdrom"),
                new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", "raw")),
                targetElement, new XElement("readonly"), Copy(e, "boot", "address"));
        }

        string? source = (string?)e.Element("source")?.Attribute("file") ?? (string?)e.Element("source")?.Attribute("dev")
            ?? (string?)e.Element("source")?.Attribute("name") ?? (string?)e.Element("source")?.Attribute("volume");
        dropped.Add($"{device} {target ?? "(no target)"}{(source is null ? string.Empty : $" ({source})")}{(device == "disk" ? ", not in the backup" : string.Empty)}");
        return null;
    }

    private static XElement Interface(XElement e, string type, bool newIdentity)
    {
        XElement? source = e.Element("source");
        XAttribute? sourceAttr = type switch
        {
            "network" => source?.Attribute("network"),
            "bridge" => source?.Attribute("bridge"),
            _ => null,
        };
        return new XElement("interface", new XAttribute("type", type),
            newIdentity ? null : Copy(e, "mac"),
            sourceAttr is null ? null : new XElement("source", new XAttribute(sourceAttr)),
            Copy(e, "model", "address", "boot", "link", "mtu", "bandwidth"));
    }

    private static XElement Graphics(XElement e, string type)
    {
        string? listen = (string?)e.Attribute("listen") ?? (string?)e.Elements("listen").FirstOrDefault(l => (string?)l.Attribute("type") == "address")?.Attribute("address");
        bool ip = listen is not null && IPAddress.TryParse(listen, out _);
        return new XElement("graphics", new XAttribute("type", type), new XAttribute("autoport", "yes"),
            e.Attribute("keymap") is { } keymap ? new XAttribute(keymap) : null,
            ip ? new XAttribute("listen", listen!) : null,
            ip ? new XElement("listen", new XAttribute("type", "address"), new XAttribute("address", listen!)) : null);
    }

    private static IEnumerable<XElement> Copy(XElement e, params string[] names)
        => e.Elements().Where(c => c.Name.Namespace == XNamespace.None && names.Contains(c.Name.LocalName)).Select(c => new XElement(c));

    private static string Describe(XElement e)
    {
        string? type = (string?)e.Attribute("type");
        string? detail = (string?)e.Element("source")?.Attribute("path") ?? (string?)e.Element("source")?.Attribute("dir")
            ?? (string?)e.Element("source")?.Attribute("dev") ?? (string?)e.Element("source")?.Attribute("file");
        return $"{e.Name.LocalName}{(type is null ? string.Empty : $" ({type})")}{(detail is null ? string.Empty : $" {detail}")}";
    }
}
