using System.Management.Automation;
using KvmPS.Core.Services;

namespace KvmPS.Jobs;

/// <summary>
/// What one VM's work may use while it runs, possibly off the pipeline thread (-ThrottleLimit, -AsJob):
/// a log, an output writer and the cancel token. Inline it writes straight to the cmdlet.
/// </summary>
public sealed class VmWorkContext : IKvmLog
{
    private readonly IKvmLog _log;
    private readonly Action<object> _write;

    internal VmWorkContext(IKvmLog log, Action<object> write, CancellationToken cancel)
    {
        _log = log;
        _write = write;
        Cancel = cancel;
    }

    /// <summary>Set by Ctrl+C, Stop-Job or the end of the pipeline.</summary>
    public CancellationToken Cancel { get; }

    /// <summary>Writes one output object.</summary>
    public void Write(object value) => _write(value);

    public void Verbose(string message) => _log.Verbose(message);

    public void Warning(string message) => _log.Warning(message);

    public void Progress(string activity, string status, int percent, bool completed = false) => _log.Progress(activity, status, percent, completed);
}

/// <summary>Where work running off the pipeline thread sends its streams.</summary>
internal interface IBatchSink
{
    void Output(object value);

    void Error(ErrorRecord record);

    void Verbose(string message);

    void Warning(string message);

    void Progress(ProgressRecord record);
}

/// <summary>Buffers the streams of parallel work until the pipeline thread drains them into the cmdlet.</summary>
internal sealed class QueueSink : IBatchSink
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<object> _items = new();

    public void Output(object value) => _items.Enqueue(new OutputItem(value));

    public void Error(ErrorRecord record) => _items.Enqueue(record);

    public void Verbose(string message) => _items.Enqueue(new VerboseRecord(message));

    public void Warning(string message) => _items.Enqueue(new WarningRecord(message));

    public void Progress(ProgressRecord record) => _items.Enqueue(record);

    /// <summary>Writes everything queued so far; on the pipeline thread only.</summary>
    public void Drain(Cmdlet cmdlet)
    {
        while (_items.TryDequeue(out object? item))
        {
            switch (item)
            {
                case OutputItem o:
                    cmdlet.WriteObject(o.Value);
                    break;
                case ErrorRecord e:
                    cmdlet.WriteError(e);
                    break;
                case VerboseRecord v:
                    cmdlet.WriteVerbose(v.Message);
                    break;
                case WarningRecord w:
                    cmdlet.WriteWarning(w.Message);
                    break;
                case ProgressRecord p:
                    cmdlet.WriteProgress(p);
                    break;
            }
        }
    }

    private sealed record OutputItem(object Value);
}

/// <summary>Turns Core's IKvmLog into a sink's records; each work item gets its own progress bar.</summary>
internal sealed class SinkLog(IBatchSink sink, int activityId) : IKvmLog
{
    public void Verbose(string message) => sink.Verbose(message);

    public void Warning(string message) => sink.Warning(message);

    public void Progress(string activity, string status, int percent, bool completed = false)
        => sink.Progress(new ProgressRecord(activityId, activity, status)
        {
            PercentComplete = completed ? 100 : Math.Clamp(percent, -1, 100),
            RecordType = completed ? ProgressRecordType.Completed : ProgressRecordType.Processing,
        });
}
