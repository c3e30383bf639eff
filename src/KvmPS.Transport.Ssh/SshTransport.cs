using System.Net.Sockets;
using KvmPS.Core;
using KvmPS.Core.Backend;
using KvmPS.Core.Managed;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace KvmPS.Transport.Ssh;

/// <summary>
/// The <c>+ssh</c> (and <c>+libssh</c>, <c>+libssh2</c>) transport of the managed backend, with SSH.NET: logs in
/// (keys from <c>?keyfile=</c> or ~/.ssh/id_ed25519, id_ecdsa, id_rsa; the password from -Credential), checks the
/// host key against known_hosts, then runs the same remote command libvirt's client runs (virt-ssh-helper, or
/// nc on the daemon's socket) and speaks RPC over that command's stdin/stdout.
/// URI parameters: keyfile, known_hosts, known_hosts_verify (normal|auto|ignore), proxy (auto|native|netcat),
/// netcat, socket. SSH agents are not used.
/// </summary>
public sealed class SshTransport : IRpcTransport
{
    private static readonly string[] s_defaultKeys = ["id_ed25519", "id_ecdsa", "id_rsa"];

    public string Name => "ssh";

    /// <summary>Makes the managed backend use this transport for ssh, libssh and libssh2 URIs (idempotent).</summary>
    public static void Register()
    {
        var t = new Lazy<SshTransport>(() => new SshTransport());
        foreach (string name in new[] { "ssh", "libssh", "libssh2" })
        {
            ManagedBackend.RegisterTransport(name, () => t.Value);
        }
    }

    public Stream Connect(LibvirtUri uri, LibvirtOpenOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentNullException.ThrowIfNull(options);
        string host = uri.Host ?? "localhost";
        int port = uri.Port ?? 22;
        string user = uri.User ?? AskUser(options) ?? Environment.UserName;
        string target = $"{user}@{host}" + (port == 22 ? string.Empty : $":{port}");
        string command = RemoteCommand(uri, options.ReadOnly);   // validates proxy= before connecting

        var keys = new List<PrivateKeyFile>();
        SshClient? client = null;
        bool connected = false;
        try
        {
            keys.AddRange(LoadKeys(uri, options, target));
            var methods = new List<AuthenticationMethod>();
            if (keys.Count > 0)
            {
                methods.Add(new PrivateKeyAuthenticationMethod(user, [.. keys]));
            }

            string? password = options.Credentials?.Invoke(new LibvirtCredentialRequest(
                LibvirtCredentialType.Passphrase, $"{target}'s password", null, null));
            bool hasPassword = !string.IsNullOrEmpty(password);
            if (hasPassword)
            {
                methods.Add(new PasswordAuthenticationMethod(user, password));
                var interactive = new KeyboardInteractiveAuthenticationMethod(user);
                interactive.AuthenticationPrompt += (_, e) =>
                {
                    foreach (AuthenticationPrompt p in e.Prompts)
                    {
                        p.Response = password;
                    }
                };
                methods.Add(interactive);
            }

            if (methods.Count == 0)
            {
                // Lets the server say which methods it wants (the error then names them).
                methods.Add(new NoneAuthenticationMethod(user));
            }

            var info = new ConnectionInfo(host, port, user, [.. methods]);
            var check = new HostKeyCheck(uri, options, host, port);
            check.PreferKnownTypes(info);
            client = new SshClient(info);
            client.HostKeyReceived += check.OnHostKeyReceived;
            try
            {
                client.ConnectAsync(ct).GetAwaiter().GetResult();
            }
            catch (SshAuthenticationException e)
            {
                throw AuthFailed(target, keys, hasPassword, e);
            }
            catch (Exception e) when (e is SshException or SocketException or TimeoutException)
            {
                // A refused host key surfaces as a failed key exchange: report why it was refused.
                throw check.Failure ?? ConnectFailed(host, port, e);
            }

            check.Remember();
            SshChannelStream stream;
            try
            {
                SshCommand cmd = client.CreateCommand(command);
                Task execution = cmd.ExecuteAsync(CancellationToken.None);
                stream = new SshChannelStream(client, cmd, execution, target, keys);
            }
            catch (Exception e) when (e is SshException or SocketException or InvalidOperationException)
            {
                throw new LibvirtException(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc,
                    $"Cannot start the remote proxy command on {target}: {e.Message}", e)
                {
                    Hint = "The SSH server may not allow running commands (ForceCommand, restricted shell) for this user.",
                };
            }

            connected = true;   // the stream owns the client, the command and the keys now
            return stream;
        }
        finally
        {
            if (!connected)
            {
                client?.Dispose();
                foreach (PrivateKeyFile k in keys)
                {
                    k.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// The command run on the server, as libvirt builds it: <c>sh -c</c> with virt-ssh-helper (native), nc on the
    /// daemon's socket (netcat), or the helper when present, else nc (auto). Default: netcat when ?socket= or
    /// ?netcat= is given, native for session URIs, else auto.
    /// </summary>
    internal static string RemoteCommand(LibvirtUri uri, bool readOnly)
    {
        string? proxy = uri.Get("proxy")?.ToLowerInvariant();
        string? socket = uri.Get("socket");
        string? netcat = uri.Get("netcat");
        bool session = uri.Path == "/session" || uri.Path.StartsWith("/session/", StringComparison.Ordinal);
        proxy ??= socket is not null || netcat is not null ? "netcat" : session ? "native" : "auto";

        string helper = "virt-ssh-helper " + (readOnly ? "-r " : string.Empty) + Quote(uri.RemoteName);
        string nc = Quote(netcat ?? "nc");
        string path = Quote(socket ?? (readOnly ? "/var/run/libvirt/libvirt-sock-ro" : "/var/run/libvirt/libvirt-sock"));
        // Debian's nc needs -q0 to exit when stdin closes; others do not know the option.
        string viaNetcat = $"if {nc} -q 2>&1 | grep 'requires an argument' >/dev/null 2>&1; then exec {nc} -q0 -U {path}; else exec {nc} -U {path}; fi";
        string script = proxy switch
        {
            "native" => $"exec {helper}",
            "netcat" => viaNetcat,
            "auto" => $"if command -v virt-ssh-helper >/dev/null 2>&1; then exec {helper}; else {viaNetcat}; fi",
            _ => throw new LibvirtException(LibvirtErrorCode.InvalidArg, LibvirtErrorDomain.Uri,
                $"Invalid libvirt URI '{uri.Original}': unknown proxy '{proxy}' (use auto, native or netcat)."),
        };
        return "sh -c " + Quote(script);
    }

    /// <summary>POSIX single-quoting.</summary>
    internal static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string? AskUser(LibvirtOpenOptions options)
    {
        string? name = options.Credentials?.Invoke(new LibvirtCredentialRequest(LibvirtCredentialType.UserName, "User name", null, Environment.UserName));
        return string.IsNullOrEmpty(name) ? null : name;
    }

    /// <summary>?keyfile= (must load), else the default identities that exist and load.</summary>
    private static List<PrivateKeyFile> LoadKeys(LibvirtUri uri, LibvirtOpenOptions options, string target)
    {
        var keys = new List<PrivateKeyFile>();
        if (uri.Get("keyfile") is { Length: > 0 } explicitKey)
        {
            keys.Add(LoadKey(explicitKey, options, target) ?? throw new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Ssh,
                $"The SSH key file '{explicitKey}' for {target} cannot be used: it is encrypted and no passphrase was given.")
            {
                Hint = "Pass the key's passphrase with -Credential, or use a key without one.",
            });
            return keys;
        }

        string sshDir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh");
        foreach (string name in s_defaultKeys)
        {
            string path = Path.Combine(sshDir, name);
            if (!File.Exists(path))
            {
                continue;
            }

            try
            {
                if (LoadKey(path, options, target) is { } key)
                {
                    keys.Add(key);
                }
            }
            catch (LibvirtException)
            {
                // a default identity that does not load is skipped, as ssh does
            }
        }

        return keys;
    }

    private static PrivateKeyFile? LoadKey(string path, LibvirtOpenOptions options, string target)
    {
        try
        {
            try
            {
                return new PrivateKeyFile(path);
            }
            catch (SshPassPhraseNullOrEmptyException)
            {
                string? pass = options.Credentials?.Invoke(new LibvirtCredentialRequest(
                    LibvirtCredentialType.Passphrase, $"Passphrase for key '{path}'", null, null));
                return string.IsNullOrEmpty(pass) ? null : new PrivateKeyFile(path, pass);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SshException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            throw new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Ssh,
                $"The SSH key file '{path}' for {target} cannot be used: {e.Message}", e)
            {
                Hint = "Check the path and the passphrase (-Credential), or convert the key with ssh-keygen.",
            };
        }
    }

    private static LibvirtException AuthFailed(string target, List<PrivateKeyFile> keys, bool password, SshAuthenticationException e)
    {
        string tried = (keys.Count, password) switch
        {
            (0, false) => "no key file and no password",
            (_, false) => $"{keys.Count} key(s), no password",
            (0, true) => "the password",
            _ => $"{keys.Count} key(s) and the password",
        };
        return new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Ssh,
            $"SSH authentication as {target} failed (tried {tried}): {e.Message}", e)
        {
            Hint = "Check the user name and password (-Credential), or name a key authorized on the host with ?keyfile=PATH.",
        };
    }

    private static LibvirtException ConnectFailed(string host, int port, Exception e)
        => new(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc,
            $"unable to connect to server at '{host}:{port}': {e.Message}", e)
        {
            Hint = "Check the host name and port, and that an SSH server runs there.",
        };

    /// <summary>Checks the server's key against known_hosts; remembers why it refused, and what to add when accepting.</summary>
    private sealed class HostKeyCheck
    {
        private readonly string _host;
        private readonly int _port;
        private readonly string _hostName;
        private readonly string _writeFile;
        private readonly string _mode;
        private readonly bool _accept;
        private readonly KnownHosts _known;
        private byte[]? _toRemember;

        public HostKeyCheck(LibvirtUri uri, LibvirtOpenOptions options, string host, int port)
        {
            _host = host;
            _port = port;
            _hostName = KnownHosts.HostName(host, port);
            string? explicitFile = uri.Get("known_hosts");
            _writeFile = explicitFile ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh", "known_hosts");
            _mode = uri.Get("known_hosts_verify")?.ToLowerInvariant() ?? "normal";
            if (_mode is not ("normal" or "auto" or "ignore"))
            {
                throw new LibvirtException(LibvirtErrorCode.InvalidArg, LibvirtErrorDomain.Uri,
                    $"Invalid libvirt URI '{uri.Original}': unknown known_hosts_verify '{_mode}' (use normal, auto or ignore).");
            }

            _accept = options.AcceptUnknownHostKey || _mode == "auto";
            var files = new List<string> { _writeFile };
            if (explicitFile is null && !OperatingSystem.IsWindows())
            {
                files.Add("/etc/ssh/ssh_known_hosts");
            }

            _known = KnownHosts.Load(files);
        }

        public LibvirtException? Failure { get; private set; }

        /// <summary>Puts the host key algorithms known for this host first, as OpenSSH does, so a known key is offered.</summary>
        public void PreferKnownTypes(ConnectionInfo info)
        {
            IReadOnlyList<string> types = _known.KeyTypesFor(_hostName);
            if (types.Count == 0)
            {
                return;
            }

            var all = info.HostKeyAlgorithms.ToList();
            bool Preferred(string algorithm) => types.Any(t => algorithm == t || (t == "ssh-rsa" && algorithm is "rsa-sha2-512" or "rsa-sha2-256"));
            info.HostKeyAlgorithms.Clear();
            foreach (var a in all.Where(a => Preferred(a.Key)).Concat(all.Where(a => !Preferred(a.Key))))
            {
                info.HostKeyAlgorithms.Add(a.Key, a.Value);
            }
        }

        public void OnHostKeyReceived(object? sender, HostKeyEventArgs e)
        {
            if (_mode == "ignore")
            {
                e.CanTrust = true;
                return;
            }

            byte[] blob = e.HostKey;
            string fingerprint = KnownHosts.Fingerprint(blob);
            string type = KnownHosts.KeyType(blob);
            switch (_known.Check(_hostName, blob))
            {
                case HostKeyVerdict.Known:
                    e.CanTrust = true;
                    return;
                case HostKeyVerdict.Unknown when _accept:
                    _toRemember = blob;
                    e.CanTrust = true;
                    return;
                case HostKeyVerdict.Unknown:
                    Failure = new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Ssh,
                        $"The SSH host key of {_hostName} is not known: {type} {fingerprint}. It is not in {_writeFile}.")
                    {
                        ErrorId = "SshHostKeyUnknown",
                        Hint = $"If {fingerprint} is the host's key (on {_host}: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), "
                            + $"connect once with Connect-KvmHost -AcceptHostKey: the key is then added to {_writeFile}.",
                    };
                    break;
                case HostKeyVerdict.Changed:
                    Failure = new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Ssh,
                        $"The SSH host key of {_hostName} has CHANGED: the server sent {type} {fingerprint}, which does not match {_writeFile}. Someone could be intercepting the connection, or the host was reinstalled.")
                    {
                        ErrorId = "SshHostKeyChanged",
                        Hint = $"Refused, even with -AcceptHostKey. If the change is expected, remove the old key (ssh-keygen -R '{_hostName}' -f '{_writeFile}') and connect again.",
                    };
                    break;
                case HostKeyVerdict.OtherType:
                    string knownTypes = string.Join(", ", _known.KeyTypesFor(_hostName));
                    Failure = new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Ssh,
                        $"The SSH host key of {_hostName} has CHANGED type: known_hosts lists it with {knownTypes}, but the server sent {type} {fingerprint}. Someone could be intercepting the connection, or the host's keys were replaced.")
                    {
                        ErrorId = "SshHostKeyChanged",
                        Hint = $"Refused, even with -AcceptHostKey. If {fingerprint} is the host's key (on {_host}: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), "
                            + $"remove the old entry (ssh-keygen -R '{_hostName}' -f '{_writeFile}') and connect again with -AcceptHostKey.",
                    };
                    break;
                default:
                    Failure = new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Ssh,
                        $"The SSH host key of {_hostName} ({type} {fingerprint}) is marked @revoked in known_hosts.")
                    {
                        ErrorId = "SshHostKeyRevoked",
                        Hint = "The host's key was revoked: do not connect until its administrator installs a new one.",
                    };
                    break;
            }

            e.CanTrust = false;
        }

        /// <summary>After a successful login: adds an accepted new key to the known_hosts file.</summary>
        public void Remember()
        {
            if (_toRemember is null)
            {
                return;
            }

            try
            {
                KnownHosts.Append(_writeFile, _hostName, _toRemember);
            }
            catch (IOException)
            {
                // Trusted for this connection only; the next one asks again.
            }
            catch (UnauthorizedAccessException)
            {
                // Same: the file is not writable.
            }
        }
    }
}
