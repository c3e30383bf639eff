using System.Management.Automation;
using KvmPS.Core.Services;

namespace KvmPS.Jobs;

/// <summary>
/// How a cmdlet with -ThrottleLimit / -AsJob runs its items: inline (throttle 1, no job: one after the other,
/// in order, straight into the pipeline), on up to N threads with the streams written back by the pipeline
/// thread, or in a <see cref="KvmPSJob"/>. Items with the same key (one VM) never run at the same time.
/// </summary>
internal sealed class WorkBatch
{
    private static readonly TimeSpan s_cleanupWait = TimeSpan.FromSeconds(60);
    private readonly PSCmdlet _cmdlet;
    private readonly IKvmLog _log;
    private readonly Func<Exception, object, ErrorRecord?> _toError;
    private readonly CancellationToken _cancel;
    private readonly int _throttleLimit;
    private readonly bool _asJob;
    private readonly HashSet<string> _hosts = new(StringComparer.OrdinalIgnoreCase);
    private VmBatchRunner? _runner;
    private QueueSink? _queue;
    private KvmPSJob? _job;

    public WorkBatch(PSCmdlet cmdlet, IKvmLog log, Func<Exception, object, ErrorRecord?> toError, CancellationToken cancel, int throttleLimit, bool asJob)
    {
        _cmdlet = cmdlet;
        _log = log;
        _toError = toError;
        _cancel = cancel;
        _throttleLimit = throttleLimit;
        _asJob = asJob;
    }

    /// <summary>Runs (or queues) one item. Inline, its failure is thrown to the caller (the cmdlet's Guard).</summary>
    public void Run(object target, string host, object? key, Action<VmWorkContext> work)
    {
        _hosts.Add(host);
        if (_asJob)
        {
            _job ??= NewJob();
            _job.Add(target, key, work);
            return;
        }

        if (_throttleLimit <= 1)
        {
            work(new VmWorkContext(_log, _cmdlet.WriteObject, _cancel));
            return;
        }

        _queue ??= new QueueSink();
        _runner ??= new VmBatchRunner(_throttleLimit, _queue, _toError);
        _runner.Add(target, key, work);
        _queue.Drain(_cmdlet);
    }

    /// <summary>EndProcessing: writes the job, or waits for the items while writing their streams.</summary>
    public void End()
    {
        if (_job is not null)
        {
            _job.Seal(_hosts);
            _cmdlet.WriteObject(_job);
            return;
        }

        if (_runner is null || _queue is null)
        {
            return;
        }

        Task all = _runner.Completion;
        while (!((IAsyncResult)all).AsyncWaitHandle.WaitOne(100))
        {
            if (_cmdlet.Stopping)
            {
                return;
            }

            _queue.Drain(_cmdlet);
        }

        _queue.Drain(_cmdlet);
    }

    /// <summary>Ctrl+C: items not started are skipped, started ones see their token.</summary>
    public void Stop() => _runner?.Cancel();

    /// <summary>Disposal after Ctrl+C: lets started items undo what they began before the prompt returns.</summary>
    public void WaitForCleanup()
    {
        if (_runner is not null && !_runner.Completion.IsCompleted)
        {
            _runner.Cancel();
            _ = ((IAsyncResult)_runner.Completion).AsyncWaitHandle.WaitOne(s_cleanupWait);
        }
    }

    private KvmPSJob NewJob()
    {
        InvocationInfo i = _cmdlet.MyInvocation;
        var job = new KvmPSJob(i.Line.Trim() is { Length: > 0 } line ? line : i.MyCommand.Name, _throttleLimit, _toError);
        _cmdlet.JobRepository.Add(job);
        return job;
    }
}
