using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Base of cmdlets that act on VMs, in Hyper-V's shape: a Name set (names or wildcards, by value and by
/// property name, on -Connection or the default connections) and a VM set (KvmVm objects, each acting on
/// its own host). Resolves the targets, then calls <see cref="ProcessVm"/> once per VM.
/// </summary>
public abstract class KvmVmCmdlet : KvmCmdlet
{
    protected const string NameSet = "Name";
    protected const string VMSet = "VM";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("VMName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = [];

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

        foreach (KvmVm vm in VM)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(vm.Name, () => ProcessVm(vm));
        }
    }

    protected sealed override void ProcessConnection(KvmConnection connection)
    {
        foreach (KvmVm vm in ResolveVms(connection, Name))
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
