namespace KvmPS.Core.Services;

/// <summary>
/// The cancel token (Ctrl+C) of the commands running on this thread, seen by every libvirt call they make:
/// <see cref="KvmConnection.Invoke{T}"/> stops waiting for a call that blocks (a frozen daemon, a stuck guest
/// agent) when the token fires or the connection's <see cref="KvmConnection.OperationTimeout"/> passes.
/// A command enters a scope when it is created and ends it when it is disposed; scopes that ended are
/// skipped, so one that outlives its command on a thread does no harm.
/// </summary>
public static class KvmCallScope
{
    private static readonly AsyncLocal<Scope?> s_current = new();

    /// <summary>The token of the innermost command still running on this thread (none outside commands).</summary>
    public static CancellationToken Token => Live(s_current.Value)?.Token ?? CancellationToken.None;

    /// <summary>
    /// Called now and then by a thread that waits for a call running elsewhere, so the command can write
    /// what that call reported (progress, verbose) from its own thread. Null when there is nothing to pump.
    /// </summary>
    public static Action? Pump => Live(s_current.Value)?.Pump;

    /// <summary>Makes <paramref name="token"/> current for this thread and what it starts, until the scope is disposed.</summary>
    public static IDisposable Enter(CancellationToken token, Action? pump = null)
    {
        var scope = new Scope(token, pump, Live(s_current.Value));
        s_current.Value = scope;
        return scope;
    }

    private static Scope? Live(Scope? s)
    {
        while (s is { Ended: true })
        {
            s = s.Outer;
        }

        return s;
    }

    private sealed class Scope(CancellationToken token, Action? pump, Scope? outer) : IDisposable
    {
        private volatile bool _ended;

        public CancellationToken Token { get; } = token;

        public Action? Pump { get; } = pump;

        public Scope? Outer { get; } = outer;

        public bool Ended => _ended;

        public void Dispose()
        {
            _ended = true;
            if (ReferenceEquals(s_current.Value, this))
            {
                s_current.Value = Live(Outer);
            }
        }
    }
}
