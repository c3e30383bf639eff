using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Deletes VMs (their definition, managed save, snapshot metadata, NVRAM) and, with -RemoveStorage, their own disks.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmVm", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = VMSet)]
[OutputType(typeof(void))]
[OutputType(typeof(KvmPSJob))]
public sealed class RemoveKvmVmCommand : KvmVmBatchCmdlet
{
    [Parameter]
    public SwitchParameter RemoveStorage { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
    {
        IReadOnlyList<string> disks = RemoveStorage ? VmChanges.OwnedDiskPaths(vm, this) : [];
        string action = RemoveStorage
            ? disks.Count == 0 ? "Remove VM (it has no disks of its own to delete)" : $"Remove VM and delete its disks: {string.Join(", ", disks)}"
            : "Remove VM (disks are kept)";
        if (!ShouldProcess(Describe(vm), action))
        {
            return null;
        }

        bool force = Force;
        return context => VmChanges.Remove(vm, force, disks, context);
    }
}
