using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Detaches disks or CD-ROM drives from VMs (Hyper-V: Remove-VMHardDiskDrive); with -DeleteVolume also deletes the image.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmVmDisk", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DiskSet)]
[OutputType(typeof(void))]
public sealed class RemoveKvmVmDiskCommand : KvmVmCmdlet
{
    private const string DiskSet = "InputObject";

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = NameSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = LiteralNameSet)]
    [ArgumentCompleter(typeof(KvmVmDiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Target { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = DiskSet)]
    [ValidateNotNullOrEmpty]
    public KvmVmDisk[] InputObject { get; set; } = [];

    [Parameter]
    public SwitchParameter DeleteVolume { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 30;

    protected override void ProcessRecord()
    {
        if (ParameterSetName != DiskSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (KvmVmDisk disk in InputObject)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(disk.Target, () => Remove(DeviceCmdletSupport.Owner(disk.Connection, disk.VMUuid, disk.VMName, disk), disk.Target, disk.Path));
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        foreach (string target in Target)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(target, () => Remove(vm, target, DeviceService.GetDisks(vm).FirstOrDefault(d => d.Target == target)?.Path));
        }
    }

    private void Remove(KvmVm vm, string target, string? path)
    {
        string image = path is null ? string.Empty : $" ({path})";
        StorageDisposition? plan = DeleteVolume ? DeviceService.PlanImageDeletion(vm, target, CancelToken) : null;
        string action = !DeleteVolume ? $"Remove disk {target}{image} (the image is kept)"
            : plan is null ? $"Remove disk {target}{image} (it has no image to delete)"
            : plan.Delete ? $"Remove disk {target} and delete its image ({plan.Path})"
            : $"Remove disk {target}; kept: {plan.Path} ({plan.Reason})";
        if (!ShouldProcess(Describe(vm), action))
        {
            return;
        }

        if (plan is { Delete: true } && !(Force || ShouldContinue($"Delete '{plan.Path}' ({target} of VM '{vm.Name}') permanently? Its data cannot be recovered.", "Delete disk image")))
        {
            return;
        }

        DeviceService.RemoveDisk(vm, target, DeleteVolume, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken);
    }
}
