using System.Net.Sockets;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>
/// A way to reach a libvirt daemon for the managed backend: returns a connected duplex stream that speaks
/// the RPC protocol (after any handshake such as TLS). Register more with <see cref="ManagedBackend.RegisterTransport(string, IRpcTransport)"/>.
/// </summary>
public interface IRpcTransport
{
    /// <summary>The URI transport it serves (unix, tcp, tls, ssh ...).</summary>
    string Name { get; }

    /// <summary>Connects; throws a <see cref="LibvirtException"/> worded like libvirt's own client when it cannot.</summary>
    Stream Connect(LibvirtUri uri, LibvirtOpenOptions options, CancellationToken ct);
}

/// <summary>The local daemon's unix socket (qemu:///system, test+unix:///default, ?socket=).</summary>
internal sealed class UnixTransport : IRpcTransport
{
    /// <summary>Where libvirtd (monolithic) listens; modular daemons use virt&lt;driver&gt;d-sock beside it.</summary>
    internal const string RunDirectory = "/run/libvirt";

    public string Name => "unix";

    public Stream Connect(LibvirtUri uri, LibvirtOpenOptions options, CancellationToken ct)
    {
        string path = SocketPath(uri, options.ReadOnly);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).AsTask().GetAwaiter().GetResult();
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            // .NET reports a missing socket file as "Cannot assign requested address"; libvirt says what errno said
            string why = e.SocketErrorCode == SocketError.AddressNotAvailable && !File.Exists(path) ? "No such file or directory" : e.Message;
            throw new LibvirtException(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc, $"Failed to connect socket to '{path}': {why}", e)
            {
                Hint = "Check that the libvirt daemon is running (systemctl status libvirtd) and that you may use its socket.",
            };
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The socket a local URI goes to, as libvirt's remote driver picks it (system daemon only).</summary>
    internal static string SocketPath(LibvirtUri uri, bool readOnly)
    {
        if (uri.Get("socket") is { Length: > 0 } explicitPath)
        {
            return explicitPath;
        }

        if (uri.Path.Equals("/session", StringComparison.Ordinal) || uri.Path.StartsWith("/session/", StringComparison.Ordinal))
        {
            throw new LibvirtException(LibvirtErrorCode.NoSupport, LibvirtErrorDomain.Remote,
                $"'{uri.Original}' needs the per-user session daemon, which the managed backend does not start or locate.")
            {
                Hint = "Use a system URI (qemu:///system), pass the session daemon's socket with ?socket=, or use -Backend Native.",
            };
        }

        string suffix = readOnly ? "-ro" : string.Empty;
        string legacy = $"{RunDirectory}/libvirt-sock{suffix}";
        string mode = uri.Get("mode")?.ToLowerInvariant() ?? "auto";
        string direct = $"{RunDirectory}/virt{uri.Driver.ToLowerInvariant()}d-sock{suffix}";
        return mode switch
        {
            "legacy" => legacy,
            "direct" => direct,
            "auto" => File.Exists(legacy) || !File.Exists(direct) ? legacy : direct,
            _ => throw LibvirtUri.InvalidUri(uri.Original, $"unknown remote mode '{mode}'"),
        };
    }
}

/// <summary>Plain TCP (<c>qemu+tcp://host/system</c>, port 16509): normally protected by SASL on the daemon side.</summary>
internal sealed class TcpTransport : IRpcTransport
{
    internal const int DefaultPort = 16509;

    public string Name => "tcp";

    public Stream Connect(LibvirtUri uri, LibvirtOpenOptions options, CancellationToken ct)
        => new NetworkStream(ConnectSocket(uri, DefaultPort, ct), ownsSocket: true);

    /// <summary>A connected TCP socket to the URI's host and port (also the first step of TLS).</summary>
    internal static Socket ConnectSocket(LibvirtUri uri, int defaultPort, CancellationToken ct)
    {
        string host = uri.Host ?? "localhost";
        int port = uri.Port ?? defaultPort;
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.ConnectAsync(host, port, ct).AsTask().GetAwaiter().GetResult();
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            string what = e.SocketErrorCode is SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData
                ? $"Cannot resolve address '{host}' service '{port}': {e.Message}"
                : $"unable to connect to server at '{host}:{port}': {e.Message}";
            throw new LibvirtException(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc, what, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
