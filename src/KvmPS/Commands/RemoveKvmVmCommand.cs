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
        IReadOnlyList<StorageDisposition> storage = RemoveStorage ? VmChanges.PlanStorageRemoval(vm, CancelToken) : [];
        List<StorageDisposition> delete = storage.Where(s => s.Delete).ToList();
        List<StorageDisposition> keep = storage.Where(s => !s.Delete).ToList();
        string kept = keep.Count == 0 ? string.Empty : "; " + string.Join("; ", keep.Select(k => $"kept: {k.Path} ({k.Reason})"));
        string action = !RemoveStorage ? "Remove VM (disks are kept)"
            : delete.Count == 0 ? $"Remove VM (it has no disks of its own to delete){kept}"
            : $"Remove VM and delete its disks: {string.Join(", ", delete.Select(d => d.Path))}{kept}";
        if (!ShouldProcess(Describe(vm), action))
        {
            return null;
        }

        bool force = Force;
        return context => VmChanges.Remove(vm, force, storage, context);
    }
}
