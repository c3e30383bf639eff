using System.Collections.Concurrent;
using System.Management.Automation;

namespace KvmPS.Jobs;

/// <summary>
/// Runs VM work items on up to <c>throttleLimit</c> dedicated threads (work blocks on libvirt, so it stays off
/// the thread pool), sending their streams to a sink. Each item's failure becomes that item's error record;
/// the others go on. Items not started when it is cancelled are skipped.
/// </summary>
internal sealed class VmBatchRunner
{
    private readonly BlockingCollection<(object Target, object? Key, Action<VmWorkContext> Work, TaskCompletionSource Done)> _queue = [];
    private readonly ConcurrentDictionary<object, object> _keyLocks = new();
    private readonly List<Task> _tasks = [];
    private readonly IBatchSink _sink;
    private readonly Func<Exception, object, ErrorRecord?> _toError;
    private readonly CancellationTokenSource _cts = new();
    private readonly int _throttleLimit;
    private int _threads;
    private int _activity = 1;

    public VmBatchRunner(int throttleLimit, IBatchSink sink, Func<Exception, object, ErrorRecord?> toError)
    {
        _throttleLimit = Math.Max(1, throttleLimit);
        _sink = sink;
        _toError = toError;
    }

    /// <summary>Cancelled by <see cref="Cancel"/> (Ctrl+C, Stop-Job).</summary>
    public CancellationToken Token => _cts.Token;

    public int Count => _tasks.Count;

    /// <summary>Completes when every item added so far has finished (call after the last Add).</summary>
    public Task Completion => Task.WhenAll(_tasks);

    public void Cancel() => _cts.Cancel();

    /// <summary>Queues one item; items with the same non-null <paramref name="key"/> (a VM) run one at a time.</summary>
    public void Add(object target, object? key, Action<VmWorkContext> work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _tasks.Add(done.Task);
        _queue.Add((target, key, work, done));

        // One more thread while under the limit, whether or not a worker looks idle: an idle worker takes only one
        // of the items queued meanwhile, so "start one only when none is idle" left a second item waiting behind
        // the first (three frozen power-offs ran as 1 + 2). Surplus workers end after two idle seconds.
        if (TryTakeThreadSlot())
        {
            new Thread(Worker) { IsBackground = true, Name = "KvmPS worker" }.Start();
        }
    }

    private bool TryTakeThreadSlot()
    {
        int n;
        do
        {
            n = Volatile.Read(ref _threads);
            if (n >= _throttleLimit)
            {
                return false;
            }
        }
        while (Interlocked.CompareExchange(ref _threads, n + 1, n) != n);
        return true;
    }

    private void Worker()
    {
        while (true)
        {
            bool got = _queue.TryTake(out var item, TimeSpan.FromSeconds(2));
            if (!got)
            {
                Interlocked.Decrement(ref _threads);
                if (_queue.Count == 0 || !TryTakeThreadSlot())
                {
                    return;
                }

                continue;
            }

            if (item.Key is null)
            {
                Run(item.Target, item.Work);
            }
            else
            {
                lock (_keyLocks.GetOrAdd(item.Key, _ => new object()))
                {
                    Run(item.Target, item.Work);
                }
            }

            item.Done.TrySetResult();
        }
    }

    private void Run(object target, Action<VmWorkContext> work)
    {
        if (_cts.IsCancellationRequested)
        {
            return; // stopped before it started: nothing was done to this VM
        }

        // Blocked libvirt calls of this item end on Ctrl+C / Stop-Job too (not only on the command's token).
        using IDisposable scope = Core.Services.KvmCallScope.Enter(_cts.Token);
        try
        {
            work(new VmWorkContext(new SinkLog(_sink, Interlocked.Increment(ref _activity)), _sink.Output, _cts.Token));
        }
        catch (OperationCanceledException) when (_cts.IsCancellationRequested)
        {
            // stopped: Core has already undone what it started
        }
        catch (Exception e)
        {
            _sink.Error(_toError(e, target) ?? new ErrorRecord(e, "UnexpectedError", ErrorCategory.NotSpecified, target));
        }
    }
}
