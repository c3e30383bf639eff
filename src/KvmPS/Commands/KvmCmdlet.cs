using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>
/// Base of every cmdlet that acts on hosts: owns -Connection, cancellation (Ctrl+C), and the loop over
/// connections. A connection that cannot be opened is one non-terminating error; the others still answer.
/// </summary>
public abstract partial class KvmCmdlet : PSCmdlet, IDisposable, IKvmLog
{
    private readonly CancellationTokenSource _cts = new();
    private readonly IDisposable _callScope;
    private readonly int _pipelineThread;
    private readonly System.Collections.Concurrent.ConcurrentQueue<Action> _fromOtherThreads = new();
    private WorkBatch? _batch;
    private HashSet<string>? _typed;

    /// <summary>Hosts to act on: KvmConnection objects or libvirt URIs. Default: the connections made by Connect-KvmHost.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [KvmConnectionTransformation]
    [ArgumentCompleter(typeof(KvmConnectionCompleter))]
    [ValidateNotNullOrEmpty]
    public KvmConnection[]? Connection { get; set; }

    protected CancellationToken CancelToken => _cts.Token;

    /// <summary>Every libvirt call this command makes sees its cancel token (Ctrl+C ends blocked calls).</summary>
    protected KvmCmdlet()
    {
        _pipelineThread = Environment.CurrentManagedThreadId;
        _callScope = KvmCallScope.Enter(_cts.Token, Pump);
    }

    protected override void ProcessRecord()
    {
        IReadOnlyList<KvmConnection> connections = Connection is { Length: > 0 } given ? given : ModuleState.Implicit();
        if (CreatesOnOneHost && Connection is not { Length: > 0 } && connections.Count > 1)
        {
            WriteError(ErrorRecords.AmbiguousConnection(MyInvocation.MyCommand.Name, CreationTarget, connections.Select(c => c.RequestedUri ?? c.Uri)));
            return;
        }

        ForEachConcurrently(connections, ReadConnection, ConnectionThrottleLimit);
    }

    /// <summary>Opens one connection and does the cmdlet's work for it; its failures are its own non-terminating errors.</summary>
    private void ReadConnection(KvmConnection c)
    {
        try
        {
            WriteVerbose($"Using connection '{c.RequestedUri ?? c.Uri}'");
            c.Open();
        }
        catch (LibvirtException e)
        {
            WriteError(ErrorRecords.ConnectionFailed(e, c.RequestedUri ?? c.Uri));
            return;
        }

        try
        {
            ProcessConnection(c);
        }
        catch (LibvirtException e)
        {
            WriteError(ErrorRecords.FromLibvirt(e, c.Uri));
        }
    }

    /// <summary>
    /// How many connections <see cref="ProcessRecord"/> asks at once. 1 (the default): one after the other. Reading
    /// cmdlets return their -ThrottleLimit: their <see cref="ProcessConnection"/> then runs on worker threads, so it
    /// must only read and write through this class's Write* methods (which it does without knowing).
    /// </summary>
    protected virtual int ConnectionThrottleLimit => 1;

    /// <summary>
    /// Runs <paramref name="work"/> for each item, up to <paramref name="throttleLimit"/> at once on worker threads, and
    /// writes what each item wrote (objects, errors, verbose, warnings, progress) on the pipeline thread, in the order of
    /// <paramref name="items"/>: the first item's output streams while it runs, the next item's follows once it is done.
    /// A slow item delays only the output behind it, not the work of the others. Ctrl+C stops the waiting at once
    /// (workers see the cancel token; what they still write is dropped). An exception an item's work lets fly is thrown
    /// here, in that item's turn. With a limit of 1 or a single item the work runs inline, as before.
    /// </summary>
    protected void ForEachConcurrently<T>(IReadOnlyList<T> items, Action<T> work, int throttleLimit)
    {
        if (throttleLimit <= 1 || items.Count <= 1)
        {
            foreach (T item in items)
            {
                CancelToken.ThrowIfCancellationRequested();
                work(item);
            }

            return;
        }

        var outputs = new ItemOutput[items.Count];
        for (int i = 0; i < outputs.Length; i++)
        {
            outputs[i] = new ItemOutput();
        }

        using var wake = new AutoResetEvent(false);
        int next = -1;
        void Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < items.Count)
            {
                ItemOutput output = outputs[i];
                try
                {
                    if (!CancelToken.IsCancellationRequested)
                    {
                        _sink.Value = output;
                        work(items[i]);
                    }
                }
                catch (Exception e)
                {
                    output.Failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
                }
                finally
                {
                    _sink.Value = null;
                    output.Done = true;
                    try
                    {
                        wake.Set();
                    }
                    catch (ObjectDisposedException)
                    {
                        // the pipeline thread stopped waiting (Ctrl+C)
                    }
                }
            }
        }

        // Dedicated threads: the work blocks on libvirt, and thread-pool threads would be injected too slowly.
        int threads = Math.Min(throttleLimit, items.Count);
        EnsurePoolThreads(threads);
        for (int t = 0; t < threads; t++)
        {
            new Thread(Worker) { IsBackground = true, Name = "KvmPS connection reader" }.Start();
        }

        WaitHandle[] handles = [wake, CancelToken.WaitHandle];
        foreach (ItemOutput output in outputs)
        {
            while (true)
            {
                bool done = output.Done;
                Pump();
                output.Drain();
                if (done)
                {
                    break;
                }

                _ = WaitHandle.WaitAny(handles, 100);
                CancelToken.ThrowIfCancellationRequested();
            }

            output.Failure?.Throw();
        }
    }

    /// <summary>
    /// Each worker's libvirt call runs on a thread-pool thread while the worker waits for it (KvmConnection.Invoke, so
    /// Ctrl+C and OperationTimeout can give up on it). The pool starts with one thread per core and adds more only about
    /// twice a second when all are blocked: ten hosts 50 ms away then took four times as long as one. So the pool keeps
    /// ready threads for every worker (and its own reader, for the managed backend), raised once, never lowered.
    /// </summary>
    private static void EnsurePoolThreads(int workers)
    {
        ThreadPool.GetMinThreads(out int worker, out int io);
        int wanted = Math.Min(1024, Environment.ProcessorCount + (2 * workers));
        if (worker < wanted)
        {
            _ = ThreadPool.SetMinThreads(wanted, io);
        }
    }

    // Where the Write* methods below send what a worker of ForEachConcurrently writes (null on the pipeline thread).
    private readonly AsyncLocal<ItemOutput?> _sink = new();

    /// <summary>What one item of <see cref="ForEachConcurrently"/> wrote, in order, until the pipeline thread writes it.</summary>
    private sealed class ItemOutput
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<Action> _writes = new();
        private volatile bool _done;

        public bool Done { get => _done; set => _done = value; }

        public System.Runtime.ExceptionServices.ExceptionDispatchInfo? Failure { get; set; }

        public void Add(Action write) => _writes.Enqueue(write);

        public void Drain()
        {
            while (_writes.TryDequeue(out Action? write))
            {
                write();
            }
        }
    }

    // Writing is only allowed on the pipeline thread: on a worker of ForEachConcurrently these queue the write for it.
    public new void WriteObject(object? sendToPipeline)
    {
        if (_sink.Value is { } s)
        {
            s.Add(() => base.WriteObject(sendToPipeline));
        }
        else
        {
            base.WriteObject(sendToPipeline);
        }
    }

    public new void WriteObject(object? sendToPipeline, bool enumerateCollection)
    {
        if (_sink.Value is { } s)
        {
            s.Add(() => base.WriteObject(sendToPipeline, enumerateCollection));
        }
        else
        {
            base.WriteObject(sendToPipeline, enumerateCollection);
        }
    }

    public new void WriteError(ErrorRecord errorRecord)
    {
        if (_sink.Value is { } s)
        {
            s.Add(() => base.WriteError(errorRecord));
        }
        else
        {
            base.WriteError(errorRecord);
        }
    }

    public new void WriteVerbose(string text)
    {
        if (_sink.Value is { } s)
        {
            s.Add(() => base.WriteVerbose(text));
        }
        else
        {
            base.WriteVerbose(text);
        }
    }

    public new void WriteWarning(string text)
    {
        if (_sink.Value is { } s)
        {
            s.Add(() => base.WriteWarning(text));
        }
        else
        {
            base.WriteWarning(text);
        }
    }

    public new void WriteDebug(string text)
    {
        if (_sink.Value is { } s)
        {
            s.Add(() => base.WriteDebug(text));
        }
        else
        {
            base.WriteDebug(text);
        }
    }

    public new void WriteProgress(ProgressRecord progressRecord)
    {
        if (_sink.Value is { } s)
        {
            s.Add(() => base.WriteProgress(progressRecord));
        }
        else
        {
            base.WriteProgress(progressRecord);
        }
    }

    /// <summary>
    /// True for cmdlets that create something: without -Connection they need exactly one default connection, and with
    /// several (Connect-KvmHost to two hosts) they create nothing and report AmbiguousConnection instead of creating on each.
    /// </summary>
    protected virtual bool CreatesOnOneHost => false;

    /// <summary>The user's input an AmbiguousConnection error names (the name or file of what was to be created).</summary>
    protected virtual object? CreationTarget => null;

    /// <summary>Does the cmdlet's work for one open connection.</summary>
    protected abstract void ProcessConnection(KvmConnection connection);

    protected override void StopProcessing()
    {
        _cts.Cancel();
        _batch?.Stop();
    }

    /// <summary>
    /// Runs one item's work (already confirmed) the way -ThrottleLimit and -AsJob ask: inline when 1 and no job,
    /// else on worker threads or in a job. Items with the same <paramref name="key"/> (a VM's UUID) never
    /// overlap. Call <see cref="EndWork"/> from EndProcessing.
    /// </summary>
    protected void RunWork(object target, string host, object? key, Action<VmWorkContext> work, int throttleLimit, bool asJob)
    {
        _batch ??= new WorkBatch(this, this, ToErrorRecord, CancelToken, throttleLimit, asJob);
        _batch.Run(target, host, key, work);
    }

    /// <summary>Writes the job (-AsJob), or waits for the parallel items while writing their output.</summary>
    protected void EndWork() => _batch?.End();

    /// <summary>The VMs named on one connection (<see cref="NameMatch"/>: an exact name wins, else a typed name with wildcards is
    /// a pattern; <paramref name="literal"/> names never are); misses are VmNotFound errors, unmatched patterns are silent.</summary>
    protected IEnumerable<KvmVm> ResolveVms(KvmConnection connection, IEnumerable<string> names, bool literal = false)
        => NameMatch.Select(names, literal, n => VmService.GetByName(connection, n), () => VmService.List(connection, CancelToken),
            v => v.Name, v => v.Uuid, n => WriteError(ErrorRecords.VmNotFound(n, $"named '{n}'", connection.Uri)), WriteError);

    /// <summary>
    /// The piped VM as it is now, found again by its UUID on its own host (never by name: a VM renamed or removed since
    /// it was listed is VmNotFound for that UUID, not another VM that now has the name). Null after writing VmNotFound.
    /// </summary>
    protected KvmVm? Reresolve(KvmVm vm)
    {
        vm.Connection.Open();
        KvmVm? now = VmService.GetByUuid(vm.Connection, vm.Uuid);
        if (now is null)
        {
            WriteError(ErrorRecords.VmNotFound(vm, $"with UUID {vm.Uuid} (listed as '{vm.Name}')", vm.Connection.Uri));
        }

        return now;
    }

    /// <summary>Remembers which parameters were given on the command line (derived cmdlets that override this call it first).</summary>
    protected override void BeginProcessing()
        => _typed = new HashSet<string>(MyInvocation.BoundParameters.Keys, StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// True when <paramref name="parameter"/> got its value from the pipeline (by value or by property name: CSV rows,
    /// Select-Object Name) rather than from the command line. Names that arrive this way are data: matched literally.
    /// </summary>
    protected bool FromPipeline(string parameter)
        => _typed is { } typed && !typed.Contains(parameter) && MyInvocation.BoundParameters.ContainsKey(parameter);

    /// <summary>A case-insensitive pattern for <paramref name="text"/>; an invalid one is an InvalidWildcard error (false).</summary>
    internal static bool TryWildcard(string text, Action<ErrorRecord> writeError, out WildcardPattern pattern)
    {
        try
        {
            pattern = WildcardPattern.Get(text, WildcardOptions.IgnoreCase);
            _ = pattern.IsMatch(string.Empty);   // the pattern is parsed on first use
            return true;
        }
        catch (WildcardPatternException e)
        {
            writeError(ErrorRecords.InvalidWildcard(text, e));
            pattern = null!;
            return false;
        }
    }

    /// <summary>How <see cref="Guard"/> reports a libvirt failure; VM cmdlets call "operation invalid" VmStateInvalid.</summary>
    protected virtual ErrorRecord FromLibvirt(LibvirtException e, object target)
        => ErrorRecords.FromLibvirt(e, target, e.Code == LibvirtErrorCode.OperationInvalid ? "VmStateInvalid" : null);

    /// <summary>Runs one item's work: KvmPS and libvirt failures become that item's non-terminating error.</summary>
    protected void Guard(object target, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (ToErrorRecord(e, target) is { } record)
        {
            WriteError(record);
        }
    }

    /// <summary>The error record for a failure <see cref="Guard"/> reports (null: not one of ours, let it fly). Thread-safe.</summary>
    protected ErrorRecord? ToErrorRecord(Exception e, object target) => e switch
    {
        KvmOperationException k => ErrorRecords.FromOperation(k, k.Target ?? target),
        VmSpecException v => ErrorRecords.FromSpec(v, target),
        LibvirtException l => FromLibvirt(l, target),
        IOException or UnauthorizedAccessException => new ErrorRecord(e, "FileSystemError", ErrorCategory.WriteError, target) { ErrorDetails = new ErrorDetails(e.Message) },
        _ => null,
    };

    private bool OnPipelineThread => Environment.CurrentManagedThreadId == _pipelineThread;

    // A libvirt call may run on another thread (so Ctrl+C can stop waiting for it) while it reports
    // progress: those reports wait here until the pipeline thread, waiting for the call, writes them.
    private void Pump()
    {
        if (!OnPipelineThread)
        {
            return;
        }

        while (_fromOtherThreads.TryDequeue(out Action? write))
        {
            if (!Stopping)
            {
                write();
            }
        }
    }

    private void Log(Action write)
    {
        if (_sink.Value is { } sink)
        {
            sink.Add(write);   // a worker of ForEachConcurrently: in order with that item's other output
        }
        else if (OnPipelineThread)
        {
            Pump();
            if (!Stopping)
            {
                write();
            }
        }
        else
        {
            _fromOtherThreads.Enqueue(write);
        }
    }

    // Once Ctrl+C is pressed, writing throws PipelineStoppedException: Core's clean-up (rollback, aborting a
    // job, removing partial files) must still run, so the log goes quiet instead and Core sees the cancel token.
    void IKvmLog.Verbose(string message) => Log(() => WriteVerbose(message));

    void IKvmLog.Warning(string message) => Log(() => WriteWarning(message));

    void IKvmLog.Progress(string activity, string status, int percent, bool completed) => Log(() => WriteProgress(new ProgressRecord(1, activity, status)
    {
        PercentComplete = completed ? 100 : Math.Clamp(percent, -1, 100),
        RecordType = completed ? ProgressRecordType.Completed : ProgressRecordType.Processing,
    }));

    public void Dispose()
    {
        _batch?.WaitForCleanup();
        _callScope.Dispose();
        // _cts is not disposed: work this command started (-AsJob, blocked calls) may still look at its token.
        GC.SuppressFinalize(this);
    }
}
