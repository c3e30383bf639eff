using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace KvmPS.Transport.Ssh;

/// <summary>What a known_hosts file says about a host key.</summary>
internal enum HostKeyVerdict
{
    /// <summary>The host and this key are listed.</summary>
    Known,

    /// <summary>The host is not listed at all.</summary>
    Unknown,

    /// <summary>
    /// The host is listed, but only with keys of other types: the server offers a type it never showed before (a
    /// downgrade or an interception as likely as a re-keyed host); never accepted on its own, as libssh refuses it.
    /// </summary>
    OtherType,

    /// <summary>The host is listed with another key of the same type: possibly an attack; never accepted.</summary>
    Changed,

    /// <summary>The key is marked @revoked.</summary>
    Revoked,
}

/// <summary>
/// OpenSSH known_hosts files: plain, comma-separated, wildcard (<c>*</c>, <c>?</c>), negated (<c>!</c>) and hashed
/// (<c>|1|salt|hash</c>) host patterns; <c>[host]:port</c> for ports other than 22; <c>@revoked</c> lines.
/// <c>@cert-authority</c> lines are ignored (host certificates are not supported).
/// </summary>
internal sealed class KnownHosts
{
    private readonly List<Entry> _entries = [];

    private KnownHosts()
    {
    }

    /// <summary>Reads the files that exist (a missing or unreadable file counts as empty).</summary>
    public static KnownHosts Load(IEnumerable<string> paths)
    {
        var k = new KnownHosts();
        foreach (string path in paths)
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            foreach (string line in lines)
            {
                if (Entry.TryParse(line) is { } entry)
                {
                    k._entries.Add(entry);
                }
            }
        }

        return k;
    }

    /// <summary>The name a host has in known_hosts: <c>host</c> on port 22, else <c>[host]:port</c>.</summary>
    public static string HostName(string host, int port) => port == 22 ? host : $"[{host}]:{port}";

    /// <summary>The key type inside an SSH public key blob (<c>ssh-ed25519</c>, <c>ssh-rsa</c> ...).</summary>
    public static string KeyType(byte[] blob)
    {
        if (blob.Length < 4)
        {
            return string.Empty;
        }

        uint n = BinaryPrimitives.ReadUInt32BigEndian(blob);
        return n <= (uint)(blob.Length - 4) ? Encoding.ASCII.GetString(blob, 4, (int)n) : string.Empty;
    }

    /// <summary>OpenSSH's fingerprint: <c>SHA256:</c> + unpadded base64 of the key blob's SHA-256.</summary>
    public static string Fingerprint(byte[] blob) => "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');

    /// <summary>The key types listed for a host (to prefer them when negotiating, as OpenSSH does).</summary>
    public IReadOnlyList<string> KeyTypesFor(string hostName)
        => _entries.Where(e => e.Marker is null && e.Matches(hostName)).Select(e => e.KeyType).Distinct(StringComparer.Ordinal).ToArray();

    public HostKeyVerdict Check(string hostName, byte[] blob)
    {
        string type = KeyType(blob);
        if (_entries.Any(e => e.Marker == "@revoked" && e.Key.AsSpan().SequenceEqual(blob)))
        {
            return HostKeyVerdict.Revoked;
        }

        bool sameTypeOther = false, otherType = false;
        foreach (Entry e in _entries)
        {
            if (e.Marker is not null || !e.Matches(hostName))
            {
                continue;
            }

            if (e.KeyType != type)
            {
                otherType = true;
                continue;
            }

            if (e.Key.AsSpan().SequenceEqual(blob))
            {
                return HostKeyVerdict.Known;
            }

            sameTypeOther = true;
        }

        return sameTypeOther ? HostKeyVerdict.Changed : otherType ? HostKeyVerdict.OtherType : HostKeyVerdict.Unknown;
    }

    /// <summary>Appends <c>hostName type base64</c> to a known_hosts file (creating it, and its folder, when missing).</summary>
    public static void Append(string path, string hostName, byte[] blob)
    {
        string? dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir) && !Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        string line = $"{hostName} {KeyType(blob)} {Convert.ToBase64String(blob)}\n";
        bool needsNewline = File.Exists(path) && new FileInfo(path).Length > 0 && !EndsWithNewline(path);
        File.AppendAllText(path, (needsNewline ? "\n" : string.Empty) + line, Encoding.ASCII);
    }

    private static bool EndsWithNewline(string path)
    {
        using FileStream f = File.OpenRead(path);
        f.Seek(-1, SeekOrigin.End);
        return f.ReadByte() == '\n';
    }

    private sealed record Entry(string? Marker, string[] Patterns, string KeyType, byte[] Key)
    {
        public static Entry? TryParse(string line)
        {
            string[] f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 0 || f[0].StartsWith('#'))
            {
                return null;
            }

            string? marker = null;
            int i = 0;
            if (f[0].StartsWith('@'))
            {
                marker = f[0].ToLowerInvariant();
                i = 1;
            }

            if (f.Length < i + 3)
            {
                return null;
            }

            try
            {
                byte[] key = Convert.FromBase64String(f[i + 2]);
                return new Entry(marker, f[i].Split(','), f[i + 1], key);
            }
            catch (FormatException)
            {
                return null;
            }
        }

        /// <summary>OpenSSH semantics: a negated pattern that matches excludes the host; else any positive match.</summary>
        public bool Matches(string hostName)
        {
            bool match = false;
            foreach (string p in Patterns)
            {
                if (p.StartsWith('!'))
                {
                    if (Glob(p[1..], hostName))
                    {
                        return false;
                    }
                }
                else if (p.StartsWith("|1|", StringComparison.Ordinal))
                {
                    match |= HashedMatch(p, hostName);
                }
                else
                {
                    match |= Glob(p, hostName);
                }
            }

            return match;
        }

        private static bool HashedMatch(string pattern, string hostName)
        {
            string[] parts = pattern.Split('|');   // "", "1", salt, hash
            if (parts.Length != 4)
            {
                return false;
            }

            try
            {
                byte[] salt = Convert.FromBase64String(parts[2]);
                byte[] hash = Convert.FromBase64String(parts[3]);
                return CryptographicOperations.FixedTimeEquals(HMACSHA1.HashData(salt, Encoding.UTF8.GetBytes(hostName)), hash);
            }
            catch (FormatException)
            {
                return false;
            }
        }

        private static bool Glob(string pattern, string text)
        {
            // Host names compare case-insensitively; '*' any run, '?' one character.
            int p = 0, t = 0, star = -1, mark = 0;
            while (t < text.Length)
            {
                if (p < pattern.Length && (pattern[p] == '?' || char.ToLowerInvariant(pattern[p]) == char.ToLowerInvariant(text[t])))
                {
                    p++;
                    t++;
                }
                else if (p < pattern.Length && pattern[p] == '*')
                {
                    star = p++;
                    mark = t;
                }
                else if (star >= 0)
                {
                    p = star + 1;
                    t = ++mark;
                }
                else
                {
                    return false;
                }
            }

            while (p < pattern.Length && pattern[p] == '*')
            {
                p++;
            }

            return p == pattern.Length;
        }
    }
}
