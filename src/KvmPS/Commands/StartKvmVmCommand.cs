using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Starts VMs (resuming from a managed save when there is one).</summary>
[Cmdlet(VerbsLifecycle.Start, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class StartKvmVmCommand : KvmVmStartingCmdlet
{
    protected override Action<VmWorkContext>? Plan(KvmVm vm) => StartAndWait(vm, "Start", VmLifecycle.Start);
}
