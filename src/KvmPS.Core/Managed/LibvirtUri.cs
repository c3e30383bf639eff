using System.Text;

namespace KvmPS.Core.Managed;

/// <summary>
/// A libvirt connection URI taken apart the way libvirt's remote driver does:
/// <c>driver[+transport]://[user@][host][:port]/path[?query][#fragment]</c>.
/// </summary>
public sealed class LibvirtUri
{
    /// <summary>Query parameters only the client uses; libvirt strips them from the name sent to the daemon.</summary>
    private static readonly HashSet<string> s_clientParameters = new(StringComparer.OrdinalIgnoreCase)
    {
        "name", "command", "socket", "auth", "sshauth", "netcat", "keyfile", "pkipath", "known_hosts",
        "known_hosts_verify", "tls_priority", "mode", "proxy", "no_sanity", "no_verify", "no_tty", "authfile",
    };

    private readonly List<KeyValuePair<string, string>> _query;

    private LibvirtUri(string original, string scheme, string? user, string? host, int? port, string path, List<KeyValuePair<string, string>> query, string? fragment)
    {
        Original = original;
        Scheme = scheme;
        int plus = scheme.IndexOf('+');
        Driver = plus < 0 ? scheme : scheme[..plus];
        Transport = plus < 0 ? null : scheme[(plus + 1)..].ToLowerInvariant();
        User = user;
        Host = host;
        Port = port;
        Path = path;
        _query = query;
        Fragment = fragment;
        Query = query.GroupBy(p => p.Key, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The URI as given.</summary>
    public string Original { get; }

    /// <summary>The whole scheme (<c>qemu+ssh</c>).</summary>
    public string Scheme { get; }

    /// <summary>The hypervisor driver (<c>qemu</c>, <c>test</c>, <c>remote</c> ...).</summary>
    public string Driver { get; }

    /// <summary>The transport written in the scheme (unix, tcp, tls, ssh, libssh2, libssh, ext), or null when none.</summary>
    public string? Transport { get; }

    /// <summary>
    /// The transport libvirt uses: the explicit one, else tls when a host is named (<c>qemu://host/system</c>),
    /// else unix (the local daemon).
    /// </summary>
    public string EffectiveTransport => Transport ?? (Host is null ? "unix" : "tls");

    public string? User { get; }

    /// <summary>The server, without IPv6 brackets; null when none.</summary>
    public string? Host { get; }

    public int? Port { get; }

    /// <summary>The path (<c>/system</c>), empty when none.</summary>
    public string Path { get; }

    public string? Fragment { get; }

    /// <summary>Query parameters by name (case-insensitive; the last one wins), values decoded.</summary>
    public IReadOnlyDictionary<string, string> Query { get; }

    /// <summary>True for <c>remote://</c> URIs: the daemon picks the driver.</summary>
    public bool IsProbe => Driver.Equals("remote", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The name sent in CONNECT_OPEN: <c>?name=</c> when given; empty for <c>remote://</c>; else the URI with
    /// no transport, user, host or port and without the client-only query parameters.
    /// </summary>
    public string RemoteName
    {
        get
        {
            if (Query.TryGetValue("name", out string? name))
            {
                return name;
            }

            if (IsProbe)
            {
                return string.Empty;
            }

            var sb = new StringBuilder(Driver).Append("://").Append(Path);
            string query = FormatQuery(keepClientParameters: false);
            if (query.Length > 0)
            {
                sb.Append('?').Append(query);
            }

            if (Fragment is not null)
            {
                sb.Append('#').Append(Fragment);
            }

            return sb.ToString();
        }
    }

    /// <summary>A query parameter's value, or null.</summary>
    public string? Get(string name) => Query.TryGetValue(name, out string? v) ? v : null;

    /// <summary>A 0/1 query parameter (<c>no_verify=1</c>); <paramref name="fallback"/> when absent.</summary>
    public bool GetFlag(string name, bool fallback = false)
    {
        string? v = Get(name);
        return v is null ? fallback : int.TryParse(v, out int i) ? i != 0 : throw InvalidUri(Original, $"the value of URI parameter '{name}' is not a number");
    }

    public override string ToString() => Original;

    /// <summary>Parses a libvirt URI; throws a <see cref="LibvirtException"/> (InvalidArg) when it is not one.</summary>
    public static LibvirtUri Parse(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        string s = uri.Trim();
        int colon = s.IndexOf(':');
        if (colon <= 0 || !IsScheme(s.AsSpan(0, colon)))
        {
            throw InvalidUri(uri, "it has no scheme such as qemu:// or test://");
        }

        string scheme = s[..colon];
        string rest = s[(colon + 1)..];
        string? fragment = null;
        int hash = rest.IndexOf('#');
        if (hash >= 0)
        {
            fragment = rest[(hash + 1)..];
            rest = rest[..hash];
        }

        string queryText = string.Empty;
        int q = rest.IndexOf('?');
        if (q >= 0)
        {
            queryText = rest[(q + 1)..];
            rest = rest[..q];
        }

        string? user = null;
        string? host = null;
        int? port = null;
        string path = rest;
        if (rest.StartsWith("//", StringComparison.Ordinal))
        {
            int slash = rest.IndexOf('/', 2);
            string authority = slash < 0 ? rest[2..] : rest[2..slash];
            path = slash < 0 ? string.Empty : rest[slash..];
            int at = authority.LastIndexOf('@');
            if (at >= 0)
            {
                user = Uri.UnescapeDataString(authority[..at]);
                authority = authority[(at + 1)..];
            }

            string hostPart = authority;
            if (authority.StartsWith('['))
            {
                int close = authority.IndexOf(']');
                if (close < 0)
                {
                    throw InvalidUri(uri, "an IPv6 address is missing its ']'");
                }

                hostPart = authority[1..close];
                string after = authority[(close + 1)..];
                if (after.Length > 0)
                {
                    port = after[0] == ':' ? ParsePort(uri, after[1..]) : throw InvalidUri(uri, "unexpected text after the IPv6 address");
                }
            }
            else
            {
                int pc = authority.LastIndexOf(':');
                if (pc >= 0)
                {
                    port = ParsePort(uri, authority[(pc + 1)..]);
                    hostPart = authority[..pc];
                }
            }

            host = hostPart.Length == 0 ? null : Uri.UnescapeDataString(hostPart);
        }

        var query = new List<KeyValuePair<string, string>>();
        foreach (string pair in queryText.Split(['&', ';'], StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            string name = Decode(eq < 0 ? pair : pair[..eq]);
            string value = eq < 0 ? string.Empty : Decode(pair[(eq + 1)..]);
            query.Add(new(name, value));
        }

        return new LibvirtUri(uri, scheme, string.IsNullOrEmpty(user) ? null : user, host, port, path, query, fragment);
    }

    /// <summary>Parses, or returns false with the reason.</summary>
    public static bool TryParse(string uri, out LibvirtUri? result, out string? error)
    {
        try
        {
            result = Parse(uri);
            error = null;
            return true;
        }
        catch (LibvirtException e)
        {
            result = null;
            error = e.Message;
            return false;
        }
    }

    /// <summary>The query string, optionally without the client-only parameters (like virURIFormatParams).</summary>
    public string FormatQuery(bool keepClientParameters)
    {
        var sb = new StringBuilder();
        foreach (KeyValuePair<string, string> p in _query)
        {
            if (!keepClientParameters && s_clientParameters.Contains(p.Key))
            {
                continue;
            }

            if (sb.Length > 0)
            {
                sb.Append('&');
            }

            sb.Append(Uri.EscapeDataString(p.Key)).Append('=').Append(Uri.EscapeDataString(p.Value));
        }

        return sb.ToString();
    }

    internal static LibvirtException InvalidUri(string uri, string why)
        => new(LibvirtErrorCode.InvalidArg, LibvirtErrorDomain.Uri, $"Invalid libvirt URI '{uri}': {why}.");

    private static string Decode(string s) => Uri.UnescapeDataString(s.Replace('+', ' '));

    private static int? ParsePort(string uri, string text)
    {
        if (text.Length == 0)
        {
            return null;
        }

        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p) && p is > 0 and <= 65535
            ? p
            : throw InvalidUri(uri, $"'{text}' is not a port number");
    }

    private static bool IsScheme(ReadOnlySpan<char> s)
    {
        if (s.Length == 0 || !char.IsAsciiLetter(s[0]))
        {
            return false;
        }

        foreach (char c in s)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.'))
            {
                return false;
            }
        }

        return true;
    }
}
