using System.Net.Sockets;

namespace KvmPS.Core.Tests;

/// <summary>
/// A unix-socket proxy in front of libvirtd's socket that a test can kill, so a connection dies
/// exactly as it does when the daemon goes away, without touching the shared daemon.
/// </summary>
internal sealed class SocketProxy : IDisposable
{
    public const string DaemonSocket = "/var/run/libvirt/libvirt-sock";
    private readonly List<Socket> _open = [];
    private Socket? _listener;
    private CancellationTokenSource _cts = new();
    private volatile bool _frozen;

    public SocketProxy()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"kvmps-proxy-{Guid.NewGuid():N}.sock");
    }

    public string Path { get; }

    public static bool DaemonAvailable => File.Exists(DaemonSocket) || new FileInfo(DaemonSocket).Exists;

    public void Start()
    {
        File.Delete(Path);
        _frozen = false;
        _cts = new CancellationTokenSource();
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(16);
        Socket listener = _listener;
        CancellationToken token = _cts.Token;
        _ = Task.Run(async () =>
        {
            while (!token.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await listener.AcceptAsync(token);
                }
                catch (Exception)
                {
                    return;
                }

                var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await upstream.ConnectAsync(new UnixDomainSocketEndPoint(DaemonSocket), token);
                lock (_open)
                {
                    _open.Add(client);
                    _open.Add(upstream);
                }

                _ = Pump(client, upstream, token);
                _ = Pump(upstream, client, token);
            }
        });
    }

    /// <summary>Stops forwarding but keeps every socket open: the peer looks alive but never answers.</summary>
    public void Freeze() => _frozen = true;

    /// <summary>Closes the listener and every proxied connection: the client sees EOF.</summary>
    public void Kill()
    {
        _cts.Cancel();
        _listener?.Close();
        lock (_open)
        {
            foreach (Socket s in _open)
            {
                try
                {
                    s.Shutdown(SocketShutdown.Both);
                }
                catch (SocketException)
                {
                }

                s.Close();
            }

            _open.Clear();
        }

        File.Delete(Path);
    }

    public void Dispose() => Kill();

    private async Task Pump(Socket from, Socket to, CancellationToken token)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, token);
                if (n == 0)
                {
                    break;
                }

                while (_frozen && !token.IsCancellationRequested)
                {
                    await Task.Delay(50, token);   // swallow nothing, forward nothing
                }

                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, token);
            }
        }
        catch (Exception)
        {
            // either side closed
        }

        try
        {
            to.Shutdown(SocketShutdown.Both);
        }
        catch (Exception)
        {
        }
    }
}
