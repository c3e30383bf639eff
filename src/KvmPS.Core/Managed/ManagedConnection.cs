using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>
/// A connection opened by the managed backend: every <see cref="ILibvirtConnection"/> member is one or more
/// REMOTE_PROC_* calls over <see cref="RpcClient"/>. Thread-safe; concurrent callers pipeline on the one
/// socket. Each area lives in its own partial file (ManagedConnection.&lt;Area&gt;.cs) with its procedure numbers.
/// </summary>
internal sealed partial class ManagedConnection : ILibvirtConnection
{
    private const int ProcConnectOpen = 1;
    private const int ProcConnectClose = 2;
    private const int ProcConnectGetType = 3;
    private const int ProcConnectGetVersion = 4;
    private const int ProcConnectGetMaxVcpus = 5;
    private const int ProcNodeGetInfo = 6;
    private const int ProcConnectGetCapabilities = 7;
    private const int ProcConnectGetHostname = 59;
    private const int ProcConnectSupportsFeature = 60;
    private const int ProcAuthList = 66;
    private const int ProcAuthPolkit = 70;
    private const int ProcNodeGetFreeMemory = 102;
    private const int ProcConnectGetUri = 110;
    private const int ProcConnectIsSecure = 149;
    private const int ProcConnectGetLibVersion = 157;
    private const int ProcConnectGetDomainCapabilities = 342;

    /// <summary>VIR_DRV_FEATURE_PROGRAM_KEEPALIVE.</summary>
    private const int FeatureProgramKeepAlive = 10;

    /// <summary>VIR_CONNECT_RO.</summary>
    private const uint ConnectReadOnly = 1;

    /// <summary>REMOTE_AUTH_TYPE_LIST_MAX.</summary>
    private const int AuthTypeListMax = 20;

    private static readonly TimeSpan s_closeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long AUTH_LIST .. CONNECT_OPEN may take before the peer counts as unresponsive.</summary>
    private static readonly TimeSpan s_handshakeTimeout = TimeSpan.FromSeconds(60);

    private readonly RpcClient _rpc;
    private readonly LibvirtUri _uri;
    private readonly string _uriText;
    private string? _type;
    private int _disposed;

    private ManagedConnection(RpcClient rpc, LibvirtUri uri, string uriText, bool readOnly)
    {
        _rpc = rpc;
        _uri = uri;
        _uriText = uriText;
        IsReadOnly = readOnly;
        _rpc.MessageReceived += OnMessage;
        _rpc.Closed += OnRpcClosed;
    }

    /// <summary>Raised (on the reader or keepalive thread) when the connection closes for any reason but Dispose.</summary>
    public event EventHandler<ConnectionCloseReason>? Closed;

    public string BackendName => "Managed";

    public bool IsReadOnly { get; }

    /// <summary>The RPC client (tests, and helpers that pipeline with <see cref="RpcClient.Begin{T}"/>).</summary>
    internal RpcClient Rpc => _rpc;

    /// <summary>The transport this connection uses (unix, tcp, tls, ssh ...).</summary>
    internal string TransportName => _uri.EffectiveTransport;

    /// <summary>Connects, authenticates and opens <paramref name="uri"/> like libvirt's remote driver (doRemoteOpen).</summary>
    internal static ManagedConnection Open(string? uri, LibvirtOpenOptions options)
    {
        string text = string.IsNullOrWhiteSpace(uri) ? ManagedBackend.DefaultUri() : uri.Trim();
        LibvirtUri parsed = LibvirtUri.Parse(text);
        IRpcTransport transport = ManagedBackend.GetTransport(parsed);
        Stream stream = transport.Connect(parsed, options, CancellationToken.None);
        var rpc = new RpcClient(stream, parsed.Host ?? parsed.Original);

        // Keepalive only starts once the connection is open: until then a peer that accepted the connection
        // but never answers (not a libvirt daemon, a wedged one) must not hang the caller forever.
        using var handshake = new CancellationTokenSource(s_handshakeTimeout);
        try
        {
            Authenticate(rpc, parsed, handshake.Token);
            bool keepAlive = options.KeepAliveIntervalSeconds > 0
                && rpc.Call(RpcPrograms.Remote, ProcConnectSupportsFeature, w => w.WriteInt32(FeatureProgramKeepAlive), r => r.ReadInt32(), handshake.Token) != 0;
            string name = parsed.RemoteName;
            rpc.Call(RpcPrograms.Remote, ProcConnectOpen, w =>
            {
                w.WriteOptionalString(name);
                w.WriteUInt32(options.ReadOnly ? ConnectReadOnly : 0);
            }, handshake.Token);
            if (parsed.IsProbe)
            {
                // remote:/// lets the daemon choose: ask which URI it opened, as the remote driver does
                text = rpc.Call(RpcPrograms.Remote, ProcConnectGetUri, null, r => r.ReadString(), handshake.Token);
            }

            if (keepAlive)
            {
                rpc.StartKeepAlive(options.KeepAliveIntervalSeconds, options.KeepAliveCount);
            }

            return new ManagedConnection(rpc, parsed, text, options.ReadOnly);
        }
        catch (OperationCanceledException) when (handshake.IsCancellationRequested)
        {
            rpc.Dispose();
            throw new LibvirtException(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc,
                $"'{parsed.Original}' accepted the connection but did not answer within {s_handshakeTimeout.TotalSeconds:0} s.")
            {
                Hint = "Check that a libvirt daemon (not another service) listens there and that it is not stuck.",
            };
        }
        catch
        {
            rpc.Dispose();
            throw;
        }
    }

    private static void Authenticate(RpcClient rpc, LibvirtUri uri, CancellationToken ct)
    {
        IReadOnlyList<int> types = rpc.Call(RpcPrograms.Remote, ProcAuthList, null, r => r.ReadArray(x => x.ReadInt32(), AuthTypeListMax), ct);
        if (types.Count == 0)
        {
            return;
        }

        int type = types[0];
        if (uri.Get("auth") is { } wanted)
        {
            int asked = wanted.ToLowerInvariant() switch
            {
                "none" => 0,
                "polkit" => 2,
                _ when wanted.StartsWith("sasl", StringComparison.OrdinalIgnoreCase) => 1,
                _ => throw new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Remote, $"unknown authentication type {wanted}"),
            };
            type = types.Contains(asked)
                ? asked
                : throw new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Remote, $"requested authentication type {wanted} rejected");
        }

        switch (type)
        {
            case 0:
                return;
            case 2:
                rpc.Call(RpcPrograms.Remote, ProcAuthPolkit, null, r => r.ReadInt32(), ct);
                return;
            case 1:
                throw new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Remote,
                    $"The libvirt daemon at '{uri.Original}' requires SASL authentication, which the managed backend does not support.")
                {
                    Hint = "Connect over SSH or TLS (qemu+ssh://, qemu+tls://), or use -Backend Native for SASL.",
                };
            default:
                throw new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Remote, $"unsupported authentication type {type}");
        }
    }

    // ---------------- RPC helpers (every partial uses these) ----------------

    /// <summary>Calls a REMOTE procedure and decodes its reply.</summary>
    internal T Remote<T>(int procedure, Action<XdrWriter>? args, Func<XdrReader, T> ret)
        => _rpc.Call(RpcPrograms.Remote, procedure, args, ret);

    /// <summary>Calls a REMOTE procedure that returns nothing.</summary>
    internal void Remote(int procedure, Action<XdrWriter>? args)
        => _rpc.Call(RpcPrograms.Remote, procedure, args);

    /// <summary>Calls a QEMU (libvirt-qemu) procedure and decodes its reply.</summary>
    internal T Qemu<T>(int procedure, Action<XdrWriter>? args, Func<XdrReader, T> ret)
        => _rpc.Call(RpcPrograms.Qemu, procedure, args, ret);

    /// <summary>Calls a REMOTE stream procedure; returns the open stream after the daemon accepted the call.</summary>
    internal RpcStream RemoteStream(int procedure, Action<XdrWriter>? args)
        => _rpc.CallStream(RpcPrograms.Remote, procedure, args);

    // ---------------- connection / node ----------------

    /// <summary>The URI as opened (libvirt's virConnectGetURI is client-side too).</summary>
    public string GetUri() => _uriText;

    public string GetHostname() => Remote(ProcConnectGetHostname, null, r => r.ReadString());

    public string GetHypervisorType() => _type ??= Remote(ProcConnectGetType, null, r => r.ReadString());

    public ulong GetHypervisorVersion() => Remote(ProcConnectGetVersion, null, r => r.ReadUInt64());

    public ulong GetLibVersion() => Remote(ProcConnectGetLibVersion, null, r => r.ReadUInt64());

    public bool IsAlive() => _disposed == 0 && _rpc.IsOpen;

    /// <summary>Like the remote driver: a secure transport (unix, TLS, SSH) and a daemon-side driver that says it is secure.</summary>
    public bool IsSecure()
    {
        bool daemonSecure = Remote(ProcConnectIsSecure, null, r => r.ReadInt32()) != 0;
        return daemonSecure && TransportName is "unix" or "tls" or "ssh" or "libssh" or "libssh2";
    }

    /// <summary>Like the remote driver: only TLS encrypts (a unix socket or SSH tunnel is secure but not "encrypted" by libvirt).</summary>
    public bool IsEncrypted()
    {
        bool daemonSecure = Remote(ProcConnectIsSecure, null, r => r.ReadInt32()) != 0;
        return daemonSecure && TransportName == "tls";
    }

    public string GetCapabilities() => Remote(ProcConnectGetCapabilities, null, r => r.ReadString());

    public string GetDomainCapabilities(string? emulatorBinary, string? arch, string? machine, string? virtType, uint flags)
        => Remote(ProcConnectGetDomainCapabilities, w =>
        {
            w.WriteOptionalString(emulatorBinary);
            w.WriteOptionalString(arch);
            w.WriteOptionalString(machine);
            w.WriteOptionalString(virtType);
            w.WriteUInt32(flags);
        }, r => r.ReadString());

    public int GetMaxVcpus(string? type) => Remote(ProcConnectGetMaxVcpus, w => w.WriteOptionalString(type), r => r.ReadInt32());

    public NodeInfo GetNodeInfo() => Remote(ProcNodeGetInfo, null, r =>
    {
        // char model[32]: a fixed array of XDR chars, each a 4-byte unit
        Span<byte> model = stackalloc byte[32];
        for (int i = 0; i < model.Length; i++)
        {
            model[i] = (byte)r.ReadInt32();
        }

        int len = model.IndexOf((byte)0);
        string text = System.Text.Encoding.UTF8.GetString(model[..(len < 0 ? model.Length : len)]);
        ulong memory = r.ReadUInt64();
        int cpus = r.ReadInt32();
        int mhz = r.ReadInt32();
        int nodes = r.ReadInt32();
        int sockets = r.ReadInt32();
        int cores = r.ReadInt32();
        int threads = r.ReadInt32();
        return new NodeInfo(text, memory, cpus, mhz, nodes, sockets, cores, threads);
    });

    public ulong GetFreeMemory() => Remote(ProcNodeGetFreeMemory, null, r => r.ReadUInt64());

    // ---------------- lifetime ----------------

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        StopEvents();
        if (_rpc.IsOpen)
        {
            try
            {
                using var cts = new CancellationTokenSource(s_closeTimeout);
                _rpc.Call(RpcPrograms.Remote, ProcConnectClose, null, cts.Token);
            }
            catch (Exception e) when (e is LibvirtException or OperationCanceledException)
            {
                // best effort, like virConnectClose on a dead connection
            }
        }

        _rpc.Dispose();
    }

    private void OnRpcClosed(ConnectionCloseReason reason)
    {
        StopEvents();
        if (_disposed == 0)
        {
            Closed?.Invoke(this, reason);
        }
    }
}
