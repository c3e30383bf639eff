using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Reverts VMs to a snapshot; a running VM is replaced by the snapshot's state.</summary>
[Cmdlet(VerbsData.Restore, "KvmSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = SnapshotSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class RestoreKvmSnapshotCommand : KvmSnapshotBatchCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = SnapshotSet)]
    [ValidateNotNullOrEmpty]
    public KvmSnapshot[] Snapshot { get; set; } = [];

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMNameSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMSet)]
    [ArgumentCompleter(typeof(KvmSnapshotNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter]
    public SwitchParameter Start { get; set; }

    [Parameter]
    public SwitchParameter Paused { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (Start && Paused)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-Start and -Paused cannot be used together."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, null));
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        foreach (KvmSnapshot s in Match(vm, SnapshotService.List(vm), [Name], literal: true))
        {
            Restore(s);
        }
    }

    protected override void ProcessSnapshots()
    {
        foreach (KvmSnapshot s in Snapshot)
        {
            Guard(s.Name, () => Restore(Reresolve(s)));
        }
    }

    private void Restore(KvmSnapshot s)
    {
        if (!ShouldProcess(Describe(s), "Restore (the VM's current state is replaced)"))
        {
            return;
        }

        bool start = Start, paused = Paused, passthru = Passthru;
        RunSnapshotWork(s, context =>
        {
            SnapshotService.Restore(s, start, paused, context);
            if (passthru && VmService.GetByUuid(s.Connection, s.VMUuid) is { } vm)
            {
                context.Write(vm);
            }
        });
    }
}
