using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Starts VMs (resuming from a managed save when there is one).</summary>
[Cmdlet(VerbsLifecycle.Start, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class StartKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessVm(KvmVm vm) => Apply(vm, "Start", VmLifecycle.Start, Passthru);
}
