using System.Net;
using KvmPS.Core.Backend;
using KvmPS.Core.Native;

namespace KvmPS.Core.Services;

/// <summary>
/// A connection to one libvirt host. Safe to share between runspaces and threads. Opens on first use,
/// watches for the daemon going away (keepalive + close callback) and reopens itself on the next call
/// after a loss. Holds no handle visible to callers: everything goes through <see cref="Invoke{T}"/>.
/// </summary>
public sealed partial class KvmConnection : IDisposable
{
    private readonly object _lock = new();
    private readonly ILibvirtBackend _backend;
    private readonly NetworkCredential? _credential;
    private ILibvirtConnection? _conn;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> _snapshotNames = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> _names = new(StringComparer.Ordinal);
    private readonly List<EventSubscription> _subscriptions = [];
    private EventHandler<KvmVmEventArgs>? _vmStateChanged;
    private IDisposable? _allVmsSubscription;
    private bool _subscribingAll;
    private volatile bool _lost;
    private bool _disposed;
    private int _retrying;

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
        _backend = backend ?? KvmBackends.Get(KvmBackends.DefaultKind);
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

    /// <summary>SSH (managed backend): trust a host key that is not in known_hosts yet, and remember it.</summary>
    public bool AcceptUnknownHostKey { get; init; }

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

    /// <summary>True after Dispose (Disconnect-KvmHost or the caller's own Dispose): it never opens again.</summary>
    public bool IsDisposed => _disposed;

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

    /// <summary>
    /// Runs <paramref name="call"/> on the live connection, reconnecting first if it was lost. A call that
    /// blocks gives up when the current command is stopped (<see cref="KvmCallScope"/>) or after
    /// <see cref="OperationTimeout"/> (the call itself finishes, unseen, in the background).
    /// </summary>
    public T Invoke<T>(Func<ILibvirtConnection, T> call) => InvokeWatched(call, null);

    /// <summary>
    /// As <see cref="Invoke{T}(Func{ILibvirtConnection, T})"/>; when the caller stops waiting (Ctrl+C, OperationTimeout)
    /// while the call runs on, <paramref name="landedLate"/> gets its result if it still succeeds (on a pool thread):
    /// the place to undo what a call that was given up did after all.
    /// </summary>
    public T InvokeWatched<T>(Func<ILibvirtConnection, T> call, Action<T>? landedLate)
    {
        ILibvirtConnection c = Current();
        try
        {
            CancellationToken cancel = KvmCallScope.Token;
            TimeSpan? timeout = OperationTimeout;
            return (timeout is null && !cancel.CanBeCanceled) || IsInProcess ? call(c) : Bounded(c, call, timeout, cancel, landedLate);
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

    // Long calls that watch the token themselves (streams, backups) get this long to finish and clean up
    // after Ctrl+C before the caller stops waiting for them.
    private static readonly TimeSpan s_cancelGrace = TimeSpan.FromSeconds(2);

    private T Bounded<T>(ILibvirtConnection c, Func<ILibvirtConnection, T> call, TimeSpan? timeout, CancellationToken cancel, Action<T>? landedLate)
    {
        Action? pump = KvmCallScope.Pump;
        Task<T> task = Task.Run(() => call(c), CancellationToken.None);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan? cancelledAt = null;
        WaitHandle finished = ((IAsyncResult)task).AsyncWaitHandle;
        while (!finished.WaitOne(pump is null ? 200 : 50))
        {
            pump?.Invoke();
            if (cancelledAt is null && cancel.IsCancellationRequested)
            {
                cancelledAt = sw.Elapsed;
            }

            if (cancelledAt is { } at && sw.Elapsed - at > s_cancelGrace)
            {
                WhenLanded(task, landedLate);
                throw new OperationCanceledException(cancel);
            }

            if (timeout is { } t && sw.Elapsed > t)
            {
                WhenLanded(task, landedLate);
                throw new LibvirtException(LibvirtErrorCode.OperationTimeout, LibvirtErrorDomain.None,
                    $"libvirt did not answer within {t.TotalSeconds:0.#} s on '{Uri}' (OperationTimeout of the connection).")
                {
                    Hint = "The host or its daemon may be overloaded or frozen; a guest agent may be stuck. Raise Connect-KvmHost -OperationTimeoutSec if the call is just slow.",
                };
            }
        }

        pump?.Invoke();
        return task.GetAwaiter().GetResult();
    }

    // The caller gave up on the call; should it still succeed, its result goes to the caller's clean-up.
    private static void WhenLanded<T>(Task<T> task, Action<T>? landedLate)
    {
        if (landedLate is null)
        {
            return;
        }

        _ = task.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                landedLate(t.Result);
            }
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    /// <summary>Gives up on a libvirt call that takes longer than this (null: wait as long as libvirt does).</summary>
    public TimeSpan? OperationTimeout { get; set; }

    /// <summary>True for drivers that run inside this process (test:///): their calls never block on a peer.</summary>
    internal bool IsInProcess => _backend.Name == "Native"
        && (RequestedUri ?? Uri).StartsWith("test:", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Subscribes to lifecycle events of one VM (or all with null). The subscription survives a lost
    /// connection: it is registered again when the connection reopens (a background retry reopens it while
    /// any subscription exists). Dispose the result to unsubscribe.
    /// </summary>
    public IDisposable SubscribeDomainEvents(DomainRef? domain, Action<DomainLifecycleEvent> handler)
    {
        var s = new EventSubscription(this, domain, handler);
        lock (_subscriptions)
        {
            _subscriptions.Add(s);
        }

        try
        {
            Invoke(c => s.Attach(c));
        }
        catch
        {
            s.Dispose();
            throw;
        }

        return s;
    }

    /// <summary>How many event subscriptions are active (re-registered after a reconnect).</summary>
    public int EventSubscriptionCount
    {
        get
        {
            lock (_subscriptions)
            {
                return _subscriptions.Count;
            }
        }
    }

    /// <summary>
    /// Raised (on a libvirt event thread) when any VM on this host changes state: for scripts,
    /// <c>Register-ObjectEvent -InputObject $conn -EventName VmStateChanged</c>. Survives reconnects.
    /// </summary>
    public event EventHandler<KvmVmEventArgs>? VmStateChanged
    {
        add
        {
            bool subscribe;
            lock (_subscriptions)
            {
                _vmStateChanged += value;
                subscribe = _allVmsSubscription is null && !_subscribingAll;
                _subscribingAll |= subscribe;
            }

            if (!subscribe)
            {
                return;
            }

            try
            {
                IDisposable sub = SubscribeDomainEvents(null, RaiseVmStateChanged);
                lock (_subscriptions)
                {
                    _allVmsSubscription = sub;
                    _subscribingAll = false;
                }
            }
            catch
            {
                lock (_subscriptions)
                {
                    _vmStateChanged -= value;
                    _subscribingAll = false;
                }

                throw;
            }
        }

        remove
        {
            IDisposable? sub = null;
            lock (_subscriptions)
            {
                _vmStateChanged -= value;
                if (_vmStateChanged is null)
                {
                    sub = _allVmsSubscription;
                    _allVmsSubscription = null;
                }
            }

            sub?.Dispose();
        }
    }

    /// <summary>Raised when the connection reopened after a loss (by a command or the background retry).</summary>
    public event EventHandler? Reconnected;

    private void RaiseVmStateChanged(DomainLifecycleEvent e)
        => _vmStateChanged?.Invoke(this, new KvmVmEventArgs(this, e.Domain.Name, e.Domain.Uuid, e.Event, e.Detail));

    /// <summary>Runs <paramref name="call"/> on the live connection.</summary>
    public void Invoke(Action<ILibvirtConnection> call) => Invoke(c =>
    {
        call(c);
        return true;
    });

    public void Dispose()
    {
        ILibvirtConnection? c;
        lock (_subscriptions)
        {
            _subscriptions.Clear();
            _allVmsSubscription = null;
            _vmStateChanged = null;
        }

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

    /// <summary>The open backend connection (reopened when lost), for calls that run outside <see cref="Invoke{T}"/>'s bounds (a migration watches its own).</summary>
    internal ILibvirtConnection Raw() => Current();

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
                AcceptUnknownHostKey = AcceptUnknownHostKey,
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
            bool reconnected = old is not null;
            if (reconnected)
            {
                Reattach(opened);
                ThreadPool.QueueUserWorkItem(_ => Reconnected?.Invoke(this, EventArgs.Empty));
            }

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

    private EventSubscription[] Subscriptions()
    {
        lock (_subscriptions)
        {
            return [.. _subscriptions];
        }
    }

    private void Reattach(ILibvirtConnection c)
    {
        foreach (EventSubscription s in Subscriptions())
        {
            try
            {
                s.Attach(c);
            }
            catch (LibvirtException)
            {
                // the VM is gone (or events are not offered): the subscription stays, unattached
            }
        }
    }

    // While anyone listens for events, a lost connection is reopened in the background (every 2 s) so the
    // events come back when the daemon does, without waiting for the next command.
    private void RetryInBackground()
    {
        if (EventSubscriptionCount == 0 || Interlocked.Exchange(ref _retrying, 1) == 1)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                while (_lost && !_disposed && EventSubscriptionCount > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
                    try
                    {
                        _ = Current();
                    }
                    catch (LibvirtException)
                    {
                        // not back yet
                    }
                }
            }
            finally
            {
                Volatile.Write(ref _retrying, 0);
            }
        });
    }

    private void Unsubscribe(EventSubscription s)
    {
        lock (_subscriptions)
        {
            _ = _subscriptions.Remove(s);
        }
    }

    /// <summary>One event subscription: re-registered on every new underlying connection.</summary>
    private sealed class EventSubscription(KvmConnection owner, DomainRef? domain, Action<DomainLifecycleEvent> handler) : IDisposable
    {
        private ILibvirtConnection? _on;
        private int _id;
        private bool _disposed;

        public bool Attach(ILibvirtConnection c)
        {
            lock (this)
            {
                if (_disposed || ReferenceEquals(_on, c))
                {
                    return true;
                }

                _id = c.RegisterDomainLifecycleEvents(domain, handler);
                _on = c;
                return true;
            }
        }

        public void Dispose()
        {
            ILibvirtConnection? on;
            int id;
            lock (this)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
                on = _on;
                id = _id;
                _on = null;
            }

            owner.Unsubscribe(this);
            if (on is not null && ReferenceEquals(on, owner._conn) && !owner._lost)
            {
                try
                {
                    on.DeregisterDomainEvents(id);
                }
                catch (LibvirtException)
                {
                    // the connection went away: nothing left to deregister
                }
            }
        }
    }

    private bool MarkLost(ILibvirtConnection c)
    {
        if (!ReferenceEquals(c, _conn) || _lost)
        {
            return false;
        }

        _lost = true;
        RetryInBackground();
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
