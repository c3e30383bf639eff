using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Pauses running VMs (their memory stays in the host).</summary>
[Cmdlet(VerbsLifecycle.Suspend, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class SuspendKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessVm(KvmVm vm) => Apply(vm, "Suspend (pause)", VmLifecycle.Suspend, Passthru);
}
