using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// What a command that creates several things must take back when it fails or is stopped, so that it leaves nothing.
/// A step is registered BEFORE the call it undoes (a call that was stopped may still have done its work), so every undo
/// is idempotent: it does nothing when there is nothing to take back. <see cref="Rollback"/> runs every step, newest
/// first, to the end: with its own time budget instead of the command's cancelled token, and a step that fails (with
/// any exception) does not keep the later ones from running. A libvirt call the command stopped waiting for (Ctrl+C,
/// OperationTimeout) while it ran on is undone once more when it lands.
/// </summary>
public sealed class UndoLog
{
    private readonly List<Step> _steps = [];
    private readonly IKvmLog _log;

    public UndoLog(IKvmLog log) => _log = log;

    /// <summary>How long a rollback (or a late clean-up) may take in all; calls still running then are given up.</summary>
    public static TimeSpan RollbackTime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The steps still registered, oldest first (for messages and tests).</summary>
    public IReadOnlyList<string> Pending
    {
        get
        {
            lock (_steps)
            {
                return _steps.Select(s => s.What).ToArray();
            }
        }
    }

    /// <summary>Registers an idempotent undo step; <see cref="Step.Dismiss"/> drops it once the thing it undoes is kept or gone.</summary>
    public Step Add(string what, Action undo)
    {
        var step = new Step(this, what, undo);
        lock (_steps)
        {
            _steps.Add(step);
        }

        return step;
    }

    /// <summary>
    /// Makes a libvirt call that creates something. <paramref name="undoAny"/> (registered before the call) takes back
    /// whatever the call may have done without its answer (by name or UUID); once the call answers, the step undoes its
    /// result with <paramref name="undoResult"/>. A call that fails with libvirt's answer made nothing: its step is
    /// dropped. A call given up (Ctrl+C, OperationTimeout, lost connection) keeps its step, and should it still succeed
    /// later, <paramref name="undoResult"/> runs then.
    /// </summary>
    public T Call<T>(KvmConnection connection, string what, Func<ILibvirtConnection, T> call, Action<T> undoResult, Action? undoAny = null)
    {
        Step step = Add(what, undoAny ?? (() => { }));
        T result;
        try
        {
            result = connection.InvokeWatched(call, late => RunLate(what, () => undoResult(late)));
        }
        catch (Exception e) when (!IsUnknownOutcome(e))
        {
            step.Dismiss();
            throw;
        }

        step.Replace(() => undoResult(result));
        return result;
    }

    /// <summary>True when a call ended without libvirt's answer, so it may or may not have done its work.</summary>
    public static bool IsUnknownOutcome(Exception e)
        => e is OperationCanceledException || e is LibvirtException { Code: LibvirtErrorCode.OperationTimeout or LibvirtErrorCode.ConnectionLost };

    /// <summary>Forgets every step: what they would undo is kept (the command succeeded).</summary>
    public void Commit()
    {
        lock (_steps)
        {
            _steps.Clear();
        }
    }

    /// <summary>Runs every registered step, newest first, to the end; failures are warnings. Never throws.</summary>
    public void Rollback()
    {
        Step[] steps;
        lock (_steps)
        {
            steps = _steps.ToArray();
            _steps.Clear();
        }

        if (steps.Length == 0)
        {
            return;
        }

        using var budget = new CancellationTokenSource(RollbackTime);
        using IDisposable scope = KvmCallScope.Enter(budget.Token, KvmCallScope.Pump);
        for (int i = steps.Length - 1; i >= 0; i--)
        {
            Run(steps[i].What, steps[i].Undo, "Rolling back");
        }
    }

    // A call the command gave up on has landed: take back what it did, on this pool thread, with its own budget.
    private void RunLate(string what, Action undo)
    {
        using var budget = new CancellationTokenSource(RollbackTime);
        using IDisposable scope = KvmCallScope.Enter(budget.Token);
        Run(what, undo, "A call that was given up finished after all; undoing");
    }

    private void Run(string what, Action undo, string prefix)
    {
        try
        {
            Quiet(() => _log.Verbose($"{prefix}: {what}"));
            undo();
        }
        catch (Exception e)
        {
            Quiet(() => _log.Warning($"Could not undo {what}: {e.Message}"));
        }
    }

    // Logging must never stop a rollback (the command's host may be stopping or gone).
    private static void Quiet(Action write)
    {
        try
        {
            write();
        }
        catch (Exception)
        {
            // nothing to report to
        }
    }

    /// <summary>One registered undo step.</summary>
    public sealed class Step
    {
        private readonly UndoLog _owner;

        internal Step(UndoLog owner, string what, Action undo)
        {
            _owner = owner;
            What = what;
            Undo = undo;
        }

        public string What { get; }

        internal Action Undo { get; private set; }

        /// <summary>Drops the step (nothing to undo, or the thing is kept).</summary>
        public void Dismiss()
        {
            lock (_owner._steps)
            {
                _owner._steps.Remove(this);
            }
        }

        /// <summary>Undoes with <paramref name="undo"/> instead (now that the exact object is known).</summary>
        public void Replace(Action undo) => Undo = undo;
    }
}
