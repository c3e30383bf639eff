using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Xml.Linq;
using KvmPS.Core.Managed;

namespace KvmPS.Core.Services;

/// <summary>
/// Whether the daemon behind a connection runs on THIS machine, proven rather than guessed from the URI: only then may
/// KvmPS read or delete host files itself (disk files in no pool, snapshot memory files, image headers).
/// </summary>
public sealed partial class KvmConnection
{
    private static readonly ConcurrentDictionary<(string Socket, int Pid), Guid?> s_localDaemonUuids = new();
    private readonly object _localityLock = new();
    private (bool Local, string Detail)? _locality;

    /// <summary>
    /// True when the daemon is proven to run on this machine: its host UUID (capabilities) is this machine's SMBIOS UUID or
    /// machine id, or the one of a libvirt daemon whose unix socket here is served by a local libvirt process (checked with
    /// the socket's peer credentials, so a forwarded socket does not count). Read once per connection. The test driver keeps
    /// its storage in memory, so it is never local.
    /// </summary>
    public bool IsProvenLocal => Locality().Local;

    /// <summary>Why <see cref="IsProvenLocal"/> is what it is (shown in warnings and errors).</summary>
    public string LocalityDetail => Locality().Detail;

    private (bool Local, string Detail) Locality()
    {
        lock (_localityLock)
        {
            return _locality ??= ProveLocality();
        }
    }

    private (bool Local, string Detail) ProveLocality()
    {
        Guid? daemon;
        try
        {
            Open();
            if (string.Equals(Hypervisor, "TEST", StringComparison.OrdinalIgnoreCase))
            {
                return (false, "the test driver keeps its storage in memory, not in this machine's files");
            }

            daemon = HostUuidOf(Invoke(c => c.GetCapabilities()));
        }
        catch (LibvirtException e)
        {
            return (false, $"the daemon's host UUID could not be read ({e.Message})");
        }

        if (daemon is null)
        {
            return (false, "the daemon reports no host UUID");
        }

        foreach ((string source, Guid uuid) in MachineUuids())
        {
            if (uuid == daemon)
            {
                return (true, $"the daemon's host UUID {daemon} is this machine's {source}");
            }
        }

        LibvirtUri? uri = LibvirtUri.TryParse(RequestedUri ?? Uri, out LibvirtUri? parsed, out _) ? parsed : null;
        if (uri is not null && uri.EffectiveTransport == "unix" && !uri.IsProbe)
        {
            // The URI names a socket on this machine: proven when every socket libvirt may pick there is served by a
            // libvirt daemon process here (a socket forwarded by ssh or socat has another peer).
            IReadOnlyList<string> sockets = CandidateSockets(uri);
            List<(string Socket, string? Peer)> peers = sockets.Where(File.Exists).Select(s => (s, LibvirtDaemonPeer(s, out _))).ToList();
            if (peers.Count > 0 && peers.All(p => p.Peer is not null))
            {
                return (true, $"its socket {peers[0].Socket} is served by {peers[0].Peer} on this machine");
            }

            if (peers.FirstOrDefault(p => p.Peer is null) is { Socket: { } forwarded })
            {
                return (false, $"its socket {forwarded} is not served by a libvirt daemon process on this machine (a forwarded socket?)");
            }
        }

        foreach ((string socket, Guid uuid) in LocalDaemonUuids())
        {
            if (uuid == daemon)
            {
                return (true, $"the daemon's host UUID {daemon} is the one of the local libvirt daemon at {socket}");
            }
        }

        return (false, $"the daemon's host UUID {daemon} is neither this machine's nor a local libvirt daemon's");
    }

    /// <summary>The host UUID in a capabilities document.</summary>
    internal static Guid? HostUuidOf(string capabilities)
        => Guid.TryParse((string?)XElement.Parse(capabilities).Element("host")?.Element("uuid"), out Guid g) ? g : null;

    /// <summary>This machine's identities as libvirt would report them: SMBIOS system UUID, /etc/machine-id.</summary>
    private static IEnumerable<(string Source, Guid Uuid)> MachineUuids()
    {
        foreach ((string source, string file) in new[] { ("SMBIOS UUID", "/sys/class/dmi/id/product_uuid"), ("machine id", "/etc/machine-id") })
        {
            string? text = null;
            try
            {
                text = File.Exists(file) ? File.ReadAllText(file).Trim() : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // not readable by this user
            }

            if (Guid.TryParse(text, out Guid g) && g != Guid.Empty)
            {
                yield return (source, g);
            }
        }
    }

    private static IReadOnlyList<string> CandidateSockets(LibvirtUri uri)
    {
        if (uri.Get("socket") is { Length: > 0 } explicitPath)
        {
            return [explicitPath];
        }

        string driver = uri.Driver.ToLowerInvariant();
        bool session = uri.Path.StartsWith("/session", StringComparison.Ordinal);
        string dir = session
            ? (Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } xdg ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")) + "/libvirt"
            : UnixTransport.RunDirectory;
        return [$"{dir}/libvirt-sock", $"{dir}/virt{driver}d-sock", $"{dir}/virtproxyd-sock"];
    }

    /// <summary>Host UUIDs of the libvirt daemons listening on this machine's standard sockets (read through this connection's backend).</summary>
    private IEnumerable<(string Socket, Guid Uuid)> LocalDaemonUuids()
    {
        string driver = Hypervisor?.ToLowerInvariant() is "qemu" or null ? "qemu" : Hypervisor.ToLowerInvariant();
        LibvirtUri system = LibvirtUri.Parse($"{driver}:///system");
        foreach (string socket in CandidateSockets(system).Where(File.Exists))
        {
            if (LibvirtDaemonPeer(socket, out int pid) is null)
            {
                continue;
            }

            Guid? uuid = s_localDaemonUuids.GetOrAdd((socket, pid), key =>
            {
                try
                {
                    using var probe = new KvmConnection($"{driver}+unix:///system?socket={key.Socket}", readOnly: false, credential: null, backend: _backend,
                        keepAliveIntervalSeconds: 0, keepAliveCount: 0);
                    return HostUuidOf(probe.Invoke(c => c.GetCapabilities()));
                }
                catch (LibvirtException)
                {
                    return null;   // not allowed to talk to it: it proves nothing
                }
            });
            if (uuid is { } u)
            {
                yield return (socket, u);
            }
        }
    }

    /// <summary>
    /// The name of the process that serves a unix socket, when it is a libvirt daemon on this machine (libvirtd, virtqemud,
    /// virtproxyd ...); null for any other peer (ssh, socat), a peer in another PID namespace, or no listener.
    /// </summary>
    internal static string? LibvirtDaemonPeer(string socketPath, out int pid)
    {
        pid = 0;
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            byte[] cred = new byte[12];   // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
            if (socket.GetRawSocketOption(1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, cred) < 4)
            {
                return null;
            }

            pid = BitConverter.ToInt32(cred, 0);
            if (pid <= 0)
            {
                return null;
            }

            string comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
            return comm == "libvirtd" || (comm.StartsWith("virt", StringComparison.Ordinal) && comm.EndsWith('d')) ? $"{comm} (pid {pid})" : null;
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
