using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>
/// Base of cmdlets that act on VMs, in Hyper-V's shape: a Name set (names or wildcards, by value and by
/// property name, on -Connection or the default connections), a LiteralName set (names that are never patterns)
/// and a VM set (KvmVm objects, each acting on its own host). The VM set is the default, so PowerShell binds a piped
/// KvmVm to -VM before it looks at its Name property; derived cmdlets name it in DefaultParameterSetName (or their own
/// object set). Names follow <see cref="NameMatch"/>; a piped VM is found again by its UUID. Then <see cref="ProcessVm"/>
/// is called once per VM.
/// </summary>
public abstract class KvmVmCmdlet : KvmCmdlet
{
    protected const string NameSet = "Name";
    protected const string VMSet = "VM";
    protected const string LiteralNameSet = "LiteralName";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("VMName")]
    [SupportsWildcards]
    [NameTransformation]
    [ArgumentCompleter(typeof(KvmVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = [];

    /// <summary>VM names taken exactly as written: no character is a wildcard. (By property name too, which keeps
    /// PowerShell from preferring the VM set for every piped object that has a Connection property.)</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralNameSet)]
    [ArgumentCompleter(typeof(KvmVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] LiteralName { get; set; } = [];

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = VMSet)]
    [ValidateNotNullOrEmpty]
    public KvmVm[] VM { get; set; } = [];

    protected override void ProcessRecord()
    {
        if (ParameterSetName != VMSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (KvmVm piped in VM)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(piped.Name, () =>
            {
                if (Reresolve(piped) is { } vm)
                {
                    ProcessVm(vm);
                }
            });
        }
    }

    protected sealed override void ProcessConnection(KvmConnection connection)
    {
        bool literalSet = ParameterSetName == LiteralNameSet;
        foreach (KvmVm vm in ResolveVms(connection, literalSet ? LiteralName : Name, literalSet || FromPipeline(nameof(Name))))
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(vm.Name, () => ProcessVm(vm));
        }
    }

    /// <summary>Does the cmdlet's work on one VM (ShouldProcess inside).</summary>
    protected abstract void ProcessVm(KvmVm vm);

    /// <summary>"web1 on kvm1": the ShouldProcess target.</summary>
    protected static string Describe(KvmVm vm) => $"{vm.Name} on {vm.HostName ?? vm.Connection.Uri}";

    protected void WriteVm(KvmVm vm) => WriteObject(VmService.Refresh(vm));
}
