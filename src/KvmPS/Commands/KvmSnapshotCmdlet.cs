using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Base of the snapshot cmdlets, in Hyper-V's shape: the VM by -VMName (names or wildcards) or -VM objects,
/// the snapshot by -Name, or KvmSnapshot objects from the pipeline (the Snapshot set, where the cmdlet has one).
/// </summary>
public abstract class KvmSnapshotCmdlet : KvmCmdlet
{
    protected const string VMNameSet = "VMName";
    protected const string VMSet = "VM";
    protected const string SnapshotSet = "Snapshot";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = VMNameSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] VMName { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = VMSet)]
    [ValidateNotNullOrEmpty]
    public KvmVm[] VM { get; set; } = [];

    protected override void ProcessRecord()
    {
        if (ParameterSetName == VMSet)
        {
            foreach (KvmVm vm in VM)
            {
                Guard(vm.Name, () => ProcessVm(vm));
            }

            return;
        }

        if (ParameterSetName == SnapshotSet)
        {
            ProcessSnapshots();
            return;
        }

        base.ProcessRecord();
    }

    protected sealed override void ProcessConnection(KvmConnection connection)
    {
        foreach (KvmVm vm in ResolveVms(connection, VMName))
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(vm.Name, () => ProcessVm(vm));
        }
    }

    /// <summary>Work for one VM (the VMName and VM sets).</summary>
    protected abstract void ProcessVm(KvmVm vm);

    /// <summary>Work for piped KvmSnapshot objects (the Snapshot set).</summary>
    protected virtual void ProcessSnapshots()
    {
    }

    /// <summary>The VM's snapshots whose names match <paramref name="patterns"/>; an exact name that is missing is SnapshotNotFound.</summary>
    protected IEnumerable<KvmSnapshot> Match(KvmVm vm, IReadOnlyList<KvmSnapshot> all, string[]? patterns)
    {
        if (patterns is null || patterns.Length == 0)
        {
            return all;
        }

        var result = new List<KvmSnapshot>();
        foreach (string p in patterns)
        {
            if (!WildcardPattern.ContainsWildcardCharacters(p))
            {
                KvmSnapshot? s = all.FirstOrDefault(x => x.Name == p);
                if (s is null)
                {
                    WriteError(ErrorRecords.FromOperation(new KvmOperationException("SnapshotNotFound", $"VM '{vm.Name}' has no snapshot named '{p}'."), p));
                }
                else if (!result.Contains(s))
                {
                    result.Add(s);
                }

                continue;
            }

            if (!TryWildcard(p, WriteError, out WildcardPattern w))
            {
                continue;
            }

            result.AddRange(all.Where(x => w.IsMatch(x.Name) && !result.Contains(x)));
        }

        return result;
    }

    protected static string Describe(KvmSnapshot s) => $"snapshot '{s.Name}' of VM '{s.VMName}' on {s.Connection.HostName ?? s.Connection.Uri}";
}
