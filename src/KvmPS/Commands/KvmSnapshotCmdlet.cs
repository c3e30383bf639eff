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
            foreach (KvmVm piped in VM)
            {
                Guard(piped.Name, () =>
                {
                    if (Reresolve(piped) is { } vm)
                    {
                        ProcessVm(vm);
                    }
                });
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
        foreach (KvmVm vm in ResolveVms(connection, VMName, FromPipeline(nameof(VMName))))
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

    /// <summary>
    /// The VM's snapshots named by <paramref name="patterns"/> (<see cref="NameMatch"/>: an exact name wins; patterns only
    /// where the parameter takes wildcards, <paramref name="literal"/> false); a name that finds nothing is SnapshotNotFound.
    /// </summary>
    protected IEnumerable<KvmSnapshot> Match(KvmVm vm, IReadOnlyList<KvmSnapshot> all, string[]? patterns, bool literal = false)
        => patterns is null || patterns.Length == 0
            ? all
            : NameMatch.Select(all, patterns, literal, x => x.Name, x => x.Name,
                p => WriteError(ErrorRecords.FromOperation(new KvmOperationException("SnapshotNotFound", $"VM '{vm.Name}' has no snapshot named '{p}'.", p) { Kind = KvmErrorKind.NotFound }, p)),
                WriteError);

    /// <summary>
    /// The piped snapshot as it is now: its VM found again by UUID, the snapshot by its exact name in that VM (never
    /// another VM's snapshot of the same name). VmNotFound or SnapshotNotFound when either is gone.
    /// </summary>
    protected static KvmSnapshot Reresolve(KvmSnapshot snapshot)
    {
        snapshot.Connection.Open();
        KvmVm vm = VmService.GetByUuid(snapshot.Connection, snapshot.VMUuid)
            ?? throw new KvmOperationException("VmNotFound", $"VM '{snapshot.VMName}' ({snapshot.VMUuid}) of snapshot '{snapshot.Name}' no longer exists on {snapshot.Connection.Uri}.", snapshot.Name)
            {
                Kind = KvmErrorKind.NotFound,
            };
        return SnapshotService.Get(vm, snapshot.Name)
            ?? throw new KvmOperationException("SnapshotNotFound", $"VM '{vm.Name}' has no snapshot named '{snapshot.Name}' any more.", snapshot.Name)
            {
                Kind = KvmErrorKind.NotFound,
            };
    }

    protected static string Describe(KvmSnapshot s) => $"snapshot '{s.Name}' of VM '{s.VMName}' on {s.Connection.HostName ?? s.Connection.Uri}";
}
