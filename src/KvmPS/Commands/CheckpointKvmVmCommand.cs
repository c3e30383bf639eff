using System.Globalization;
using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Takes a snapshot (Hyper-V: checkpoint) of VMs: with memory when running, unless -DiskOnly.</summary>
[Cmdlet(VerbsData.Checkpoint, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmSnapshot))]
public sealed class CheckpointKvmVmCommand : KvmVmCmdlet
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

    protected override void ProcessVm(KvmVm vm)
    {
        string name = SnapshotName ?? DateTime.Now.ToString("yyyy-MM-dd'T'HH-mm-ss", CultureInfo.InvariantCulture);
        if (!ShouldProcess(Describe(vm), $"Take snapshot '{name}'{(DiskOnly || Quiesce ? " (disks only)" : string.Empty)}"))
        {
            return;
        }

        KvmSnapshot s = SnapshotService.Create(vm, name, Description, DiskOnly, Quiesce, this);
        if (Passthru)
        {
            WriteObject(s);
        }
    }
}
