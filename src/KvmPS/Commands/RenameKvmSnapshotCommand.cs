using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Renames a snapshot (external snapshots; libvirt cannot rename internal ones).</summary>
[Cmdlet(VerbsCommon.Rename, "KvmSnapshot", SupportsShouldProcess = true, DefaultParameterSetName = SnapshotSet)]
[OutputType(typeof(KvmSnapshot))]
public sealed class RenameKvmSnapshotCommand : KvmSnapshotCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = SnapshotSet)]
    [ValidateNotNull]
    public KvmSnapshot? Snapshot { get; set; }

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMNameSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMSet)]
    [ArgumentCompleter(typeof(KvmSnapshotNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string NewName { get; set; } = string.Empty;

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessVm(KvmVm vm)
    {
        foreach (KvmSnapshot s in Match(vm, SnapshotService.List(vm), [Name], literal: true))
        {
            Rename(s);
        }
    }

    protected override void ProcessSnapshots() => Guard(Snapshot!.Name, () => Rename(Reresolve(Snapshot!)));

    private void Rename(KvmSnapshot s)
    {
        if (!ShouldProcess(Describe(s), $"Rename to '{NewName}'"))
        {
            return;
        }

        KvmSnapshot renamed = SnapshotService.Rename(s, NewName, this);
        if (Passthru)
        {
            WriteObject(renamed);
        }
    }
}
