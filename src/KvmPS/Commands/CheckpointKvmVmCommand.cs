using System.Globalization;
using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Takes a snapshot (Hyper-V: checkpoint) of VMs: with memory when running, unless -DiskOnly.</summary>
[Cmdlet(VerbsData.Checkpoint, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmSnapshot))]
[OutputType(typeof(KvmPSJob))]
public sealed class CheckpointKvmVmCommand : KvmVmBatchCmdlet
{
    [Parameter(Position = 1)]
    [ValidateNotNullOrEmpty]
    public string? SnapshotName { get; set; }

    [Parameter]
    public string? Description { get; set; }

    [Parameter]
    public SwitchParameter DiskOnly { get; set; }

    [Parameter]
    public SwitchParameter Quiesce { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
    {
        string name = SnapshotName ?? DateTime.Now.ToString("yyyy-MM-dd'T'HH-mm-ss", CultureInfo.InvariantCulture);
        if (!ShouldProcess(Describe(vm), $"Take snapshot '{name}'{(DiskOnly || Quiesce ? " (disks only)" : string.Empty)}"))
        {
            return null;
        }

        string? description = Description;
        bool diskOnly = DiskOnly, quiesce = Quiesce, passthru = Passthru;
        return context =>
        {
            KvmSnapshot s = SnapshotService.Create(vm, name, description, diskOnly, quiesce, context);
            if (passthru)
            {
                context.Write(s);
            }
        };
    }
}
