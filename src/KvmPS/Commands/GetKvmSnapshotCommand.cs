using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the snapshots of VMs, with their place in the snapshot tree.</summary>
[Cmdlet(VerbsCommon.Get, "KvmSnapshot", DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmSnapshot))]
public sealed class GetKvmSnapshotCommand : KvmSnapshotCmdlet
{
    [Parameter(Position = 1)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmSnapshotNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    [Parameter]
    public SwitchParameter Current { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(KvmSnapshotNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? ParentOf { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(KvmSnapshotNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? ChildOf { get; set; }

    protected override void ProcessVm(KvmVm vm)
    {
        IReadOnlyList<KvmSnapshot> all = SnapshotService.List(vm);
        vm.Connection.CacheSnapshotNames(vm.Name, all.Select(s => s.Name));
        IEnumerable<KvmSnapshot> result = Match(vm, all, Name);
        if (Current)
        {
            result = result.Where(s => s.IsCurrent);
        }

        if (ParentOf is not null)
        {
            KvmSnapshot? child = Find(vm, all, ParentOf);
            result = child is null ? [] : result.Where(s => s.Name == child.Parent);
        }

        if (ChildOf is not null)
        {
            KvmSnapshot? parent = Find(vm, all, ChildOf);
            result = parent is null ? [] : result.Where(s => s.Parent == parent.Name);
        }

        WriteObject(result, enumerateCollection: true);
    }

    private KvmSnapshot? Find(KvmVm vm, IReadOnlyList<KvmSnapshot> all, string name)
    {
        KvmSnapshot? s = all.FirstOrDefault(x => x.Name == name);
        if (s is null)
        {
            WriteError(ErrorRecords.FromOperation(new KvmOperationException("SnapshotNotFound", $"VM '{vm.Name}' has no snapshot named '{name}'."), name));
        }

        return s;
    }
}
