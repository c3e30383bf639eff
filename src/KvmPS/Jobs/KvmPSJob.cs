using System.Management.Automation;

namespace KvmPS.Jobs;

/// <summary>
/// A background job started by a KvmPS cmdlet's -AsJob (like Hyper-V's): Get-Job, Receive-Job, Wait-Job and
/// Stop-Job work on it. It runs inside this process on the thread pool, through the same connections.
/// </summary>
public sealed class KvmPSJob : Job, IBatchSink
{
    private readonly VmBatchRunner _runner;
    private int _finished;
    private string _location = string.Empty;

    internal KvmPSJob(string command, int throttleLimit, Func<Exception, object, ErrorRecord?> toError)
        : base(command)
    {
        PSJobTypeName = "KvmPSJob";
        _runner = new VmBatchRunner(throttleLimit, this, toError);
        SetJobState(JobState.Running);
    }

    public override string StatusMessage => $"{_runner.Count} VM(s)";

    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0 || Verbose.Count > 0 || Warning.Count > 0;

    public override string Location => _location;

    internal void Add(object target, object? key, Action<VmWorkContext> work) => _runner.Add(target, key, work);

    /// <summary>No more items: the job ends when the ones it has finish.</summary>
    internal void Seal(IEnumerable<string> hosts)
    {
        _location = string.Join(", ", hosts);
        _ = _runner.Completion.ContinueWith(_ => Finish(_runner.Token.IsCancellationRequested ? JobState.Stopped : JobState.Completed), TaskScheduler.Default);
    }

    public override void StopJob()
    {
        _runner.Cancel();
        // let the items undo what they started (aborting libvirt jobs, removing partial files) before Stopped
        _ = _runner.Completion.Wait(TimeSpan.FromSeconds(60));
        Finish(JobState.Stopped);
    }

    private void Finish(JobState state)
    {
        if (Interlocked.Exchange(ref _finished, 1) == 0)
        {
            SetJobState(state);
        }
    }

    void IBatchSink.Output(object value) => Output.Add(PSObject.AsPSObject(value));

    void IBatchSink.Error(ErrorRecord record) => Error.Add(record);

    void IBatchSink.Verbose(string message) => Verbose.Add(new VerboseRecord(message));

    void IBatchSink.Warning(string message) => Warning.Add(new WarningRecord(message));

    void IBatchSink.Progress(ProgressRecord record) => Progress.Add(record);

    protected override void Dispose(bool disposing)
    {
        if (disposing && _finished == 0)
        {
            _runner.Cancel();
        }

        base.Dispose(disposing);
    }
}
