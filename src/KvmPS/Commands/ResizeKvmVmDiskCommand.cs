using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>Grows a VM's disk (Hyper-V: Resize-VHD): live block resize when the VM runs, volume resize when it is off. Never shrinks.</summary>
[Cmdlet(VerbsCommon.Resize, "KvmVmDisk", SupportsShouldProcess = true, DefaultParameterSetName = DiskSet)]
[OutputType(typeof(KvmVmDisk))]
public sealed class ResizeKvmVmDiskCommand : KvmVmCmdlet
{
    private const string DiskSet = "InputObject";

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = NameSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = LiteralNameSet)]
    [ArgumentCompleter(typeof(KvmVmDiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Target { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = DiskSet)]
    [ValidateNotNullOrEmpty]
    public KvmVmDisk[] InputObject { get; set; } = [];

    [Parameter(Mandatory = true)]
    [ByteSizeTransformation]
    public ulong SizeBytes { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

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
            Guard(disk.Target, () => Resize(DeviceCmdletSupport.Owner(disk.Connection, disk.VMUuid, disk.VMName, disk), disk.Target));
        }
    }

    protected override void ProcessVm(KvmVm vm) => Guard(Target!, () => Resize(vm, Target!));

    private void Resize(KvmVm vm, string target)
    {
        if (!ShouldProcess(Describe(vm), $"Grow disk {target} to {ByteSize.Format(SizeBytes)}"))
        {
            return;
        }

        KvmVmDisk disk = DeviceService.ResizeDisk(vm, target, SizeBytes, this);
        if (Passthru)
        {
            WriteObject(disk);
        }
    }
}
