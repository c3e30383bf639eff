using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Snapshot cmdlets that change many snapshots: -ThrottleLimit and -AsJob, one VM's snapshots never at once.</summary>
public abstract class KvmSnapshotBatchCmdlet : KvmSnapshotCmdlet
{
    /// <summary>How many snapshots are worked on at once (snapshots of one VM always one after the other).</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 1;

    /// <summary>Runs the work as a background job and writes the job instead of waiting.</summary>
    [Parameter]
    public SwitchParameter AsJob { get; set; }

    protected override void EndProcessing() => EndWork();

    /// <summary>Runs one snapshot's (already confirmed) work the way -ThrottleLimit and -AsJob ask.</summary>
    protected void RunSnapshotWork(KvmSnapshot snapshot, Action<VmWorkContext> work)
        => RunWork(snapshot.Name, snapshot.Connection.HostName ?? snapshot.Connection.Uri, snapshot.VMUuid, work, ThrottleLimit, AsJob);
}
