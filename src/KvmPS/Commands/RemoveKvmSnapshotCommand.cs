using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Deletes snapshots; children move up to the parent unless -IncludeChildren deletes them too.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = SnapshotSet)]
[OutputType(typeof(void))]
[OutputType(typeof(KvmPSJob))]
public sealed class RemoveKvmSnapshotCommand : KvmSnapshotBatchCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = SnapshotSet)]
    [ValidateNotNullOrEmpty]
    public KvmSnapshot[] Snapshot { get; set; } = [];

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMNameSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmSnapshotNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = [];

    [Parameter]
    public SwitchParameter IncludeChildren { get; set; }

    protected override void ProcessVm(KvmVm vm)
    {
        foreach (KvmSnapshot s in Match(vm, SnapshotService.List(vm), Name).ToList())
        {
            Guard(s.Name, () => Remove(s));
        }
    }

    protected override void ProcessSnapshots()
    {
        foreach (KvmSnapshot s in Snapshot)
        {
            Guard(s.Name, () => Remove(Reresolve(s)));
        }
    }

    private void Remove(KvmSnapshot s)
    {
        string action = IncludeChildren && s.Children.Count > 0 ? $"Remove with its children ({string.Join(", ", s.Children)})" : "Remove";
        if (ShouldProcess(Describe(s), action))
        {
            bool children = IncludeChildren;
            RunSnapshotWork(s, context => SnapshotService.Remove(s, children, context));
        }
    }
}
