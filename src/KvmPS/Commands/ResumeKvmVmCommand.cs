using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Resumes paused VMs.</summary>
[Cmdlet(VerbsLifecycle.Resume, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class ResumeKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessVm(KvmVm vm) => Apply(vm, "Resume", VmLifecycle.Resume, Passthru);
}
