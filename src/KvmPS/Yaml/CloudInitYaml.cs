using System.Collections;
using System.Management.Automation;
using System.Text;
using KvmPS.Core;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace KvmPS.Yaml;

/// <summary>
/// Composes a cloud-init NoCloud seed from New-KvmVm's parameters: user data as text (checked to be valid
/// YAML when it is #cloud-config), as a hashtable (emitted as #cloud-config YAML), or from simple parameters
/// (host name, user, SSH keys, password). Secrets never leave the returned seed.
/// </summary>
internal static class CloudInitYaml
{
    public sealed class Options
    {
        public object? UserData { get; init; }
        public string[]? SshPublicKey { get; init; }
        public string? HostName { get; init; }
        public string? User { get; init; }
        public string? Password { get; init; }
        public object? NetworkConfig { get; init; }
    }

    /// <summary>Builds the seed; throws <see cref="VmSpecException"/> (key, line, column) for bad user data.</summary>
    public static CloudInitSeed Compose(string vmName, Options o, Func<string, string> resolvePath)
    {
        string hostName = o.HostName ?? HostNameFrom(vmName);
        if (!System.Text.RegularExpressions.Regex.IsMatch(hostName, "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"))
        {
            throw new VmSpecException("hostName", $"'{hostName}' is not a valid host name.");
        }

        var meta = new YamlMappingNode
        {
            { "instance-id", $"kvmps-{Guid.NewGuid():N}" },
            { "local-hostname", hostName },
        };

        string userData;
        object? ud = o.UserData is PSObject p ? p.BaseObject : o.UserData;
        bool simple = o.SshPublicKey is { Length: > 0 } || o.User is not null || o.Password is not null;
        switch (ud)
        {
            case null:
                userData = Emit(CloudConfig(new YamlMappingNode(), hostName, o));
                break;
            case IDictionary table:
                InputLimits.CheckObject(table, "userData");
                userData = Emit(CloudConfig(ToNode(table, "userData") as YamlMappingNode ?? new YamlMappingNode(), hostName, o));
                break;
            case string text:
                string content = LooksLikePath(text) ? ReadFile(resolvePath(text), "userData") : text;
                if (content.TrimStart().StartsWith("#cloud-config", StringComparison.Ordinal))
                {
                    YamlMappingNode parsed = ParseCloudConfig(content);
                    userData = simple || o.HostName is not null ? Emit(CloudConfig(parsed, hostName, o)) : Normalize(content);
                }
                else if (content.StartsWith("#!", StringComparison.Ordinal))
                {
                    if (simple)
                    {
                        throw new VmSpecException("userData", "a user-data script (#!) cannot be combined with -SshPublicKey, -User or -Password; use #cloud-config.");
                    }

                    userData = Normalize(content);
                }
                else
                {
                    throw new VmSpecException("userData", "user data must start with #cloud-config (YAML) or #! (a script), be a hashtable, or be the path of such a file.");
                }

                break;
            default:
                throw new VmSpecException("userData", $"-UserData takes text, a hashtable or a file path, not {ud.GetType().Name}.");
        }

        string? network = null;
        object? nc = o.NetworkConfig is PSObject np ? np.BaseObject : o.NetworkConfig;
        if (nc is IDictionary ntable)
        {
            InputLimits.CheckObject(ntable, "networkConfig");
            network = EmitDocument(ToNode(ntable, "networkConfig"));
        }
        else if (nc is string ntext)
        {
            string content = LooksLikePath(ntext) ? ReadFile(resolvePath(ntext), "networkConfig") : ntext;
            _ = ParseYaml(content, "networkConfig");
            network = Normalize(content);
        }
        else if (nc is not null)
        {
            throw new VmSpecException("networkConfig", $"-NetworkConfig takes YAML text, a hashtable or a file path, not {nc.GetType().Name}.");
        }

        var parts = new List<string> { $"host name {hostName}" };
        if (o.User is not null)
        {
            parts.Add($"user {o.User}");
        }

        if (o.SshPublicKey is { Length: > 0 })
        {
            parts.Add($"{o.SshPublicKey.Length} SSH key(s)");
        }

        if (o.Password is not null)
        {
            parts.Add("a password");
        }

        if (network is not null)
        {
            parts.Add("network config");
        }

        return new CloudInitSeed
        {
            MetaData = EmitDocument(meta),
            UserData = userData,
            NetworkConfig = network,
            Summary = "cloud-init: " + string.Join(", ", parts),
        };
    }

    private static YamlMappingNode CloudConfig(YamlMappingNode root, string hostName, Options o)
    {
        root.Children[new YamlScalarNode("hostname")] = new YamlScalarNode(hostName);
        root.Children[new YamlScalarNode("preserve_hostname")] = new YamlScalarNode("false") { Style = ScalarStyle.Plain };
        if (o.User is not null || o.SshPublicKey is { Length: > 0 } || o.Password is not null)
        {
            string name = o.User ?? "kvmps";
            var user = new YamlMappingNode
            {
                { "name", name },
                { "shell", "/bin/bash" },
                { "sudo", "ALL=(ALL) NOPASSWD:ALL" },
                { "groups", "sudo" },
            };
            if (o.SshPublicKey is { Length: > 0 })
            {
                user.Add("ssh_authorized_keys", new YamlSequenceNode(o.SshPublicKey.Select(k => (YamlNode)new YamlScalarNode(k.Trim()))));
            }

            if (o.Password is not null)
            {
                user.Add("lock_passwd", new YamlScalarNode("false") { Style = ScalarStyle.Plain });
                // Salted SHA-512 crypt: the seed stays readable in the guest (and in the pool), the password itself is never written.
                user.Add("hashed_passwd", new YamlScalarNode(KvmPS.Core.Images.Sha512Crypt.Hash(o.Password)) { Style = ScalarStyle.DoubleQuoted });
            }

            var users = root.Children.TryGetValue(new YamlScalarNode("users"), out YamlNode? existing) && existing is YamlSequenceNode seq
                ? seq : new YamlSequenceNode(new YamlScalarNode("default"));
            users.Add(user);
            root.Children[new YamlScalarNode("users")] = users;
        }

        return root;
    }

    /// <summary>Parses #cloud-config text; errors name the line and column.</summary>
    public static YamlMappingNode ParseCloudConfig(string content)
        => ParseYaml(content, "userData") as YamlMappingNode
           ?? throw new VmSpecException("userData", "#cloud-config user data must be a YAML mapping (key: value lines).");

    private static YamlNode ParseYaml(string content, string key)
    {
        try
        {
            InputLimits.CheckYaml(content, key);
            var stream = new YamlStream();
            stream.Load(new StringReader(content));
            if (stream.Documents.Count != 1)
            {
                throw new VmSpecException(key, $"expected one YAML document, found {stream.Documents.Count}.");
            }

            return stream.Documents[0].RootNode;
        }
        catch (YamlException e)
        {
            throw new VmSpecException(key, e.InnerException?.Message ?? e.Message, (int)e.Start.Line, (int)e.Start.Column, e);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // Some malformed input escapes YamlDotNet's own error reporting: find where parsing stops.
            (int line, int column) = WhereParsingStops(content);
            throw new VmSpecException(key, "not valid YAML: the document is malformed here (an unclosed [ or { perhaps).", line, column, e);
        }
    }

    private static (int Line, int Column) WhereParsingStops(string content)
    {
        var parser = new Parser(new StringReader(content));
        Mark last = Mark.Empty;
        try
        {
            while (parser.MoveNext())
            {
                last = parser.Current!.End;
            }
        }
        catch (YamlException e)
        {
            return ((int)e.Start.Line, (int)e.Start.Column);
        }
        catch (Exception)
        {
            // fall through to the last good position
        }

        return ((int)Math.Max(1, last.Line), (int)Math.Max(1, last.Column));
    }

    private static YamlNode ToNode(object? value, string key) => (value is PSObject p ? p.BaseObject : value) switch
    {
        null => new YamlScalarNode("null") { Style = ScalarStyle.Plain },
        IDictionary d => new YamlMappingNode(d.Keys.Cast<object>().Select(k =>
            new KeyValuePair<YamlNode, YamlNode>(new YamlScalarNode(k.ToString()!), ToNode(d[k], $"{key}.{k}")))),
        string s => new YamlScalarNode(s) { Style = NeedsQuotes(s) ? ScalarStyle.DoubleQuoted : ScalarStyle.Any },
        bool b => new YamlScalarNode(b ? "true" : "false") { Style = ScalarStyle.Plain },
        int or long or short or byte or uint or ulong or ushort or double or float or decimal
            => new YamlScalarNode(Convert.ToString(value is PSObject q ? q.BaseObject : value, System.Globalization.CultureInfo.InvariantCulture)) { Style = ScalarStyle.Plain },
        IEnumerable e => new YamlSequenceNode(e.Cast<object?>().Select(x => ToNode(x, key))),
        var other => throw new VmSpecException(key, $"a {other.GetType().Name} cannot be written as cloud-config YAML; use strings, numbers, booleans, arrays and hashtables."),
    };

    private static bool NeedsQuotes(string s)
        => s.Length == 0 || s.Trim() != s || s.IndexOfAny([':', '#', '\'', '"', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '%', '@', '`', '\n']) >= 0
           || s is "true" or "false" or "yes" or "no" or "on" or "off" or "null" or "~" || double.TryParse(s, out _);

    private static string Emit(YamlMappingNode cloudConfig) => "#cloud-config\n" + EmitDocument(cloudConfig);

    private static string EmitDocument(YamlNode node)
    {
        var doc = new YamlDocument(node);
        var sb = new StringBuilder();
        using var writer = new StringWriter(sb);
        new YamlStream(doc).Save(writer, assignAnchors: false);
        string text = sb.ToString().Replace("\r\n", "\n");
        return text.EndsWith("...\n", StringComparison.Ordinal) ? text[..^4] : text;
    }

    private static string ReadFile(string path, string key)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VmSpecException(key, $"cannot read '{path}': {e.Message}", inner: e);
        }
    }

    private static string Normalize(string content) => content.Replace("\r\n", "\n");

    private static bool LooksLikePath(string s)
        => !s.Contains('\n') && (s.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || s.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
            || s.EndsWith(".cfg", StringComparison.OrdinalIgnoreCase) || s.EndsWith(".sh", StringComparison.OrdinalIgnoreCase) || File.Exists(s));

    /// <summary>A host name from a VM name: letters, digits and dashes.</summary>
    private static string HostNameFrom(string vmName)
    {
        var sb = new StringBuilder();
        foreach (char c in vmName)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) ? c : '-');
        }

        string h = sb.ToString().Trim('-');
        return h.Length == 0 ? "kvmps-vm" : h.Length > 63 ? h[..63].TrimEnd('-') : h;
    }
}
