using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>
/// Base of VM cmdlets that act on many VMs, with Hyper-V's -AsJob and a -ThrottleLimit. Each VM is asked
/// about (ShouldProcess) on the pipeline thread, then its work runs: inline (the default, one at a time, in
/// order), on up to -ThrottleLimit threads with the streams written back by the pipeline thread, or in a
/// <see cref="KvmPSJob"/>. Ctrl+C or Stop-Job cancels the work and waits for it to clean up.
/// </summary>
public abstract class KvmVmBatchCmdlet : KvmVmCmdlet
{
    private static readonly TimeSpan s_cleanupWait = TimeSpan.FromSeconds(60);
    private readonly HashSet<string> _hosts = new(StringComparer.OrdinalIgnoreCase);
    private VmBatchRunner? _runner;
    private QueueSink? _queue;
    private KvmPSJob? _job;

    /// <summary>How many VMs are worked on at once (1: one after the other, in order).</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 1;

    /// <summary>Runs the work as a background job and writes the job instead of waiting.</summary>
    [Parameter]
    public SwitchParameter AsJob { get; set; }

    /// <summary>Asks (ShouldProcess) on the pipeline thread and returns the VM's work, or null to skip it.</summary>
    protected abstract Action<VmWorkContext>? Plan(KvmVm vm);

    protected sealed override void ProcessVm(KvmVm vm)
    {
        Action<VmWorkContext>? work = Plan(vm);
        if (work is null)
        {
            return;
        }

        _hosts.Add(vm.HostName ?? vm.Connection.Uri);
        if (AsJob)
        {
            _job ??= NewJob();
            _job.Add(vm.Name, work);
            return;
        }

        if (ThrottleLimit <= 1)
        {
            work(new VmWorkContext(this, WriteObject, CancelToken));
            return;
        }

        _queue ??= new QueueSink();
        _runner ??= new VmBatchRunner(ThrottleLimit, _queue, ToErrorRecord);
        _runner.Add(vm.Name, work);
        _queue.Drain(this);
    }

    protected override void EndProcessing()
    {
        if (_job is not null)
        {
            _job.Seal(_hosts);
            WriteObject(_job);
            return;
        }

        if (_runner is null || _queue is null)
        {
            return;
        }

        Task all = _runner.Completion;
        while (!all.Wait(100))
        {
            if (Stopping)
            {
                return;
            }

            _queue.Drain(this);
        }

        _queue.Drain(this);
    }

    protected override void StopProcessing()
    {
        base.StopProcessing();
        _runner?.Cancel();
    }

    protected override void OnDisposing()
    {
        // Stopped (Ctrl+C) with work still running: let it undo what it started before the prompt returns.
        if (_runner is not null && !_runner.Completion.IsCompleted)
        {
            _runner.Cancel();
            _ = _runner.Completion.Wait(s_cleanupWait);
        }
    }

    /// <summary>The common shape: ask, act, and with -Passthru write the VM as it is now.</summary>
    protected Action<VmWorkContext>? Apply(KvmVm vm, string action, Action<KvmVm, VmWorkContext> operation, bool passthru)
    {
        if (!ShouldProcess(Describe(vm), action))
        {
            return null;
        }

        return context =>
        {
            operation(vm, context);
            if (passthru)
            {
                context.Write(VmService.Refresh(vm));
            }
        };
    }

    private KvmPSJob NewJob()
    {
        var job = new KvmPSJob(MyInvocation.Line.Trim() is { Length: > 0 } line ? line : MyInvocation.MyCommand.Name, ThrottleLimit, ToErrorRecord);
        JobRepository.Add(job);
        return job;
    }
}
