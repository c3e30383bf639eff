using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the VMs of one or more hosts.</summary>
[Cmdlet(VerbsCommon.Get, "KvmVm", DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class GetKvmVmCommand : KvmCmdlet
{
    private const string NameSet = "Name";
    private const string IdSet = "Id";
    private const string UuidSet = "Uuid";

    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("VMName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = IdSet)]
    public int[] Id { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = UuidSet)]
    public Guid[] Uuid { get; set; } = [];

    [Parameter]
    public KvmVmState[]? State { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
    {
        switch (ParameterSetName)
        {
            case IdSet:
                foreach (int id in Id)
                {
                    Emit(VmService.GetById(connection, id), id, $"with id {id}", connection);
                }

                return;
            case UuidSet:
                foreach (Guid uuid in Uuid)
                {
                    Emit(VmService.GetByUuid(connection, uuid), uuid, $"with UUID {uuid}", connection);
                }

                return;
        }

        if (Name is null || Name.Length == 0)
        {
            WriteVms(VmService.List(connection, CancelToken));
            return;
        }

        var patterns = new List<WildcardPattern>();
        foreach (string n in Name)
        {
            if (!WildcardPattern.ContainsWildcardCharacters(n))
            {
                Emit(VmService.GetByName(connection, n), n, $"named '{n}'", connection);
                continue;
            }

            if (TryWildcard(n, WriteError, out WildcardPattern p))
            {
                patterns.Add(p);
            }
        }

        if (patterns.Count > 0)
        {
            WriteVms(VmService.List(connection, CancelToken).Where(v => patterns.Any(p => p.IsMatch(v.Name))));
        }
    }

    private void Emit(KvmVm? vm, object input, string what, KvmConnection connection)
    {
        if (vm is null)
        {
            WriteError(ErrorRecords.VmNotFound(input, what, connection.Uri));
            return;
        }

        WriteVms([vm]);
    }

    private void WriteVms(IEnumerable<KvmVm> vms)
    {
        foreach (KvmVm vm in vms)
        {
            if (State is null || State.Contains(vm.State))
            {
                WriteObject(vm);
            }
        }
    }
}
