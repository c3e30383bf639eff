using System.Net;
using KvmPS.Core.Backend;
using KvmPS.Core.Native;

namespace KvmPS.Core.Services;

/// <summary>
/// A connection to one libvirt host. Safe to share between runspaces and threads. Opens on first use,
/// watches for the daemon going away (keepalive + close callback) and reopens itself on the next call
/// after a loss. Holds no handle visible to callers: everything goes through <see cref="Invoke{T}"/>.
/// </summary>
public sealed class KvmConnection : IDisposable
{
    private readonly object _lock = new();
    private readonly ILibvirtBackend _backend;
    private readonly NetworkCredential? _credential;
    private ILibvirtConnection? _conn;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> _snapshotNames = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> _names = new(StringComparer.Ordinal);
    private volatile bool _lost;
    private bool _disposed;

    public KvmConnection(string? uri, bool readOnly = false, NetworkCredential? credential = null, ILibvirtBackend? backend = null)
        : this(uri, readOnly, credential, backend, keepAliveIntervalSeconds: 5, keepAliveCount: 3)
    {
    }

    /// <summary>A connection with its own keepalive: a dead peer is detected after about interval × (count + 1) seconds.</summary>
    public KvmConnection(string? uri, bool readOnly, NetworkCredential? credential, ILibvirtBackend? backend, int keepAliveIntervalSeconds, uint keepAliveCount)
    {
        KeepAliveIntervalSeconds = keepAliveIntervalSeconds;
        KeepAliveCount = keepAliveCount;
        RequestedUri = string.IsNullOrWhiteSpace(uri) ? null : uri.Trim();
        Uri = RequestedUri ?? "(libvirt default)";
        IsReadOnly = readOnly;
        _credential = credential;
        _backend = backend ?? NativeBackend.Instance;
    }

    /// <summary>Keepalive ping interval in seconds (remote and daemon connections); 0 turns keepalive off.</summary>
    public int KeepAliveIntervalSeconds { get; }

    /// <summary>Unanswered pings after which the connection counts as dead.</summary>
    public uint KeepAliveCount { get; }

    /// <summary>The URI libvirt reports for this connection (or the one asked for, before it opens).</summary>
    public string Uri { get; private set; }

    /// <summary>The URI as the user gave it; null means libvirt's default (LIBVIRT_DEFAULT_URI or built-in).</summary>
    public string? RequestedUri { get; }

    public string? HostName { get; private set; }

    /// <summary>The hypervisor driver (QEMU, TEST ...).</summary>
    public string? Hypervisor { get; private set; }

    public Version? HypervisorVersion { get; private set; }

    /// <summary>The libvirt version of the daemon (or in-process driver) this connection talks to.</summary>
    public Version? LibvirtVersion { get; private set; }

    public bool IsReadOnly { get; }

    public bool IsSecure { get; private set; }

    public bool IsEncrypted { get; private set; }

    /// <summary>Native (libvirt client library) or Managed (KvmPS's own RPC client).</summary>
    public string Backend => _backend.Name;

    public DateTime? ConnectedAt { get; private set; }

    /// <summary>True when the URI names another machine (checks that read this machine do not apply).</summary>
    public bool IsRemote => IsRemoteUri(RequestedUri ?? Uri);

    /// <summary>True when the connection is open and libvirt says it is alive.</summary>
    public bool IsAlive
    {
        get
        {
            ILibvirtConnection? c = _conn;
            if (c is null || _lost)
            {
                return false;
            }

            try
            {
                return c.IsAlive();
            }
            catch (LibvirtException)
            {
                return false;
            }
        }
    }

    /// <summary>True once opened and not disposed (it may still be lost and reopen on next use).</summary>
    public bool IsOpen => _conn is not null && !_disposed;

    /// <summary>Raised when the connection to the daemon is lost (keepalive timeout, EOF, error).</summary>
    public event EventHandler<ConnectionCloseReason>? ConnectionLost;

    /// <summary>Names of VMs seen in the last listing: tab completion reads this, never the network.</summary>
    public IReadOnlyCollection<string> CachedVmNames { get; internal set; } = [];

    /// <summary>Snapshot names per VM from the last Get-KvmSnapshot: tab completion reads this, never the network.</summary>
    public IReadOnlyDictionary<string, string[]> CachedSnapshotNames => _snapshotNames;

    /// <summary>Remembers a VM's snapshot names for completion.</summary>
    public void CacheSnapshotNames(string vmName, IEnumerable<string> names) => _snapshotNames[vmName] = names.ToArray();

    /// <summary>Names of other objects (kind: "pool", "network", "volume:&lt;pool&gt;" ...) seen by the last listing, for completion.</summary>
    public IReadOnlyCollection<string> CachedNames(string kind) => _names.TryGetValue(kind, out string[]? n) ? n : [];

    /// <summary>Remembers object names of a kind for tab completion.</summary>
    public void CacheNames(string kind, IEnumerable<string> names) => _names[kind] = names.ToArray();

    /// <summary>Opens the connection now (idempotent); reopens it when it was lost.</summary>
    public KvmConnection Open()
    {
        _ = Current();
        return this;
    }

    /// <summary>Runs <paramref name="call"/> on the live connection, reconnecting first if it was lost.</summary>
    public T Invoke<T>(Func<ILibvirtConnection, T> call)
    {
        ILibvirtConnection c = Current();
        try
        {
            return call(c);
        }
        catch (LibvirtException e) when (e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
        {
            MarkLost(c);
            throw new LibvirtException(LibvirtErrorCode.ConnectionLost, e.ErrorDomain,
                $"The connection to '{Uri}' was lost ({e.Message}). The next command reconnects.", e)
            {
                Function = e.Function,
                Hint = "Check that the libvirt daemon is running on the host, then run the command again.",
            };
        }
    }

    /// <summary>Runs <paramref name="call"/> on the live connection.</summary>
    public void Invoke(Action<ILibvirtConnection> call) => Invoke(c =>
    {
        call(c);
        return true;
    });

    public void Dispose()
    {
        ILibvirtConnection? c;
        lock (_lock)
        {
            _disposed = true;
            c = _conn;
            _conn = null;
        }

        c?.Dispose();
    }

    public override string ToString() => Uri;

    internal static bool IsRemoteUri(string uri)
    {
        if (!System.Uri.TryCreate(uri, UriKind.Absolute, out Uri? u))
        {
            return false;
        }

        string host = u.Host;
        return host.Length > 0 && !host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            && host != "127.0.0.1" && host != "[::1]" && host != "::1";
    }

    private ILibvirtConnection Current()
    {
        ILibvirtConnection? c = _conn;
        if (c is not null && !_lost)
        {
            return c;
        }

        try
        {
            return Reopen();
        }
        catch (LibvirtException e) when (ConnectedAt is not null && e.Code != LibvirtErrorCode.ConnectionLost)
        {
            // It worked before: the daemon went away and is not back yet.
            throw new LibvirtException(LibvirtErrorCode.ConnectionLost, e.ErrorDomain,
                $"The connection to '{Uri}' was lost and could not be reopened ({e.Message}). The next command tries again.", e)
            {
                Function = e.Function,
                Hint = "Check that the libvirt daemon is running on the host, then run the command again.",
            };
        }
    }

    private ILibvirtConnection Reopen()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                throw new LibvirtException(LibvirtErrorCode.NoConnect, LibvirtErrorDomain.None, $"The connection to '{Uri}' was closed (Disconnect-KvmHost).")
                {
                    Hint = $"Run Connect-KvmHost {RequestedUri} again, or pass the URI to -Connection.",
                };
            }

            if (_conn is not null && !_lost)
            {
                return _conn;
            }

            ILibvirtConnection? old = _conn;
            _conn = null;
            old?.Dispose();
            ILibvirtConnection opened = _backend.Open(RequestedUri, new LibvirtOpenOptions
            {
                ReadOnly = IsReadOnly,
                KeepAliveIntervalSeconds = KeepAliveIntervalSeconds,
                KeepAliveCount = KeepAliveCount,
                Credentials = _credential is null ? null : AnswerCredential,
            });
            try
            {
                Describe(opened);
            }
            catch
            {
                opened.Dispose();
                throw;
            }

            opened.Closed += OnClosed;
            _conn = opened;
            _lost = false;
            return opened;
        }
    }

    private void Describe(ILibvirtConnection c)
    {
        Uri = c.GetUri();
        Hypervisor = c.GetHypervisorType();
        HypervisorVersion = LibvirtLibrary.VersionFromLibvirt(c.GetHypervisorVersion());
        LibvirtVersion = LibvirtLibrary.VersionFromLibvirt(c.GetLibVersion());
        IsSecure = c.IsSecure();
        IsEncrypted = c.IsEncrypted();
        try
        {
            HostName = c.GetHostname();
        }
        catch (LibvirtException)
        {
            HostName = System.Uri.TryCreate(Uri, UriKind.Absolute, out Uri? u) && u.Host.Length > 0 ? u.Host : Environment.MachineName;
        }

        ConnectedAt = DateTime.Now;
    }

    private void OnClosed(object? sender, ConnectionCloseReason reason)
    {
        if (sender is ILibvirtConnection c && MarkLost(c))
        {
            ConnectionLost?.Invoke(this, reason);
        }
    }

    private bool MarkLost(ILibvirtConnection c)
    {
        if (!ReferenceEquals(c, _conn) || _lost)
        {
            return false;
        }

        _lost = true;
        return true;
    }

    private string? AnswerCredential(LibvirtCredentialRequest r) => r.Type switch
    {
        LibvirtCredentialType.AuthName or LibvirtCredentialType.UserName or LibvirtCredentialType.EchoPrompt => _credential!.UserName,
        LibvirtCredentialType.Passphrase or LibvirtCredentialType.NoEchoPrompt => _credential!.Password,
        LibvirtCredentialType.Realm => _credential!.Domain ?? string.Empty,
        _ => r.DefaultResult ?? string.Empty,
    };
}
