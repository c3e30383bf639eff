using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Resumes paused VMs.</summary>
[Cmdlet(VerbsLifecycle.Resume, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class ResumeKvmVmCommand : KvmVmBatchCmdlet
{
    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override Action<VmWorkContext>? Plan(KvmVm vm) => Apply(vm, "Resume", VmLifecycle.Resume, Passthru);
}
