using System.Xml.Linq;
using KvmPS.Core.Services;

namespace KvmPS.Core;

/// <summary>Where a VM's display and serial console can be reached.</summary>
public sealed class KvmVmConsole
{
    public string VMName { get; init; } = string.Empty;
    public Guid Uuid { get; init; }
    /// <summary>vnc, spice; null when the VM has no graphics.</summary>
    public string? GraphicsType { get; init; }
    public string? ListenAddress { get; init; }
    /// <summary>The display port; null while the VM is off (autoport) or without graphics.</summary>
    public int? Port { get; init; }
    /// <summary>vnc://127.0.0.1:5900 style address; null when there is no port yet.</summary>
    public string? DisplayUri { get; init; }
    /// <summary>pty, file, unix, tcp ...</summary>
    public string? SerialType { get; init; }
    /// <summary>The host path of the serial console (a /dev/pts/N while running).</summary>
    public string? SerialPath { get; init; }
    public KvmConnection Connection { get; init; } = null!;

    /// <summary>Reads the console facts from a (live) domain XML.</summary>
    public static KvmVmConsole FromXml(string xml, KvmConnection connection)
    {
        XElement root = XElement.Parse(xml);
        XElement? devices = root.Element("devices");
        XElement? g = devices?.Elements("graphics").FirstOrDefault();
        string? type = (string?)g?.Attribute("type");
        int? port = (int?)g?.Attribute("port") is { } p && p > 0 ? p : null;
        string? listen = (string?)g?.Attribute("listen") ?? (string?)g?.Element("listen")?.Attribute("address");
        XElement? console = devices?.Element("console") ?? devices?.Element("serial");
        string? serialPath = (string?)console?.Attribute("tty") ?? (string?)console?.Element("source")?.Attribute("path");
        string host = string.IsNullOrEmpty(listen) || listen is "0.0.0.0" or "::" ? (connection.IsRemote && System.Uri.TryCreate(connection.Uri, UriKind.Absolute, out Uri? u) ? u.Host : "127.0.0.1") : listen;
        return new KvmVmConsole
        {
            VMName = (string?)root.Element("name") ?? string.Empty,
            Uuid = Guid.TryParse((string?)root.Element("uuid"), out Guid id) ? id : Guid.Empty,
            GraphicsType = type,
            ListenAddress = listen,
            Port = port,
            DisplayUri = type is not null && port is not null ? $"{type}://{(host.Contains(':') ? $"[{host}]" : host)}:{port}" : null,
            SerialType = (string?)console?.Attribute("type"),
            SerialPath = serialPath,
            Connection = connection,
        };
    }
}
