using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the VMs of one or more hosts: by name (an exact name wins over wildcard expansion), literal name, id or UUID.</summary>
[Cmdlet(VerbsCommon.Get, "KvmVm", DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class GetKvmVmCommand : KvmCmdlet
{
    private const string NameSet = "Name";
    private const string IdSet = "Id";
    private const string UuidSet = "Uuid";
    private const string LiteralNameSet = "LiteralName";

    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("VMName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>VM names taken exactly as written: no character is a wildcard.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralNameSet)]
    [ArgumentCompleter(typeof(KvmVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] LiteralName { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = IdSet)]
    public int[] Id { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = UuidSet)]
    public Guid[] Uuid { get; set; } = [];

    [Parameter]
    public KvmVmState[]? State { get; set; }

    /// <summary>How many hosts are asked at once (the output stays in the order the hosts were given).</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 16;

    protected override int ConnectionThrottleLimit => ThrottleLimit;

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

        bool literalSet = ParameterSetName == LiteralNameSet;
        string[]? names = literalSet ? LiteralName : Name;
        if (names is null || names.Length == 0)
        {
            WriteVms(VmService.List(connection, CancelToken));
            return;
        }

        // NameMatch: an exact name wins over a pattern; -LiteralName and names from the pipeline are never patterns.
        WriteVms(ResolveVms(connection, names, literalSet || FromPipeline(nameof(Name))));
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
