using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Pauses running VMs (their memory stays in the host).</summary>
[Cmdlet(VerbsLifecycle.Suspend, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class SuspendKvmVmCommand : KvmVmBatchCmdlet
{
    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override Action<VmWorkContext>? Plan(KvmVm vm) => Apply(vm, "Suspend (pause)", VmLifecycle.Suspend, Passthru);
}
