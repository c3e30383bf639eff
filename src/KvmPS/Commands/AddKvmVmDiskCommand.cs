using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>Attaches a disk to VMs (Hyper-V: Add-VMHardDiskDrive): an existing volume or file, or a new qcow2 volume. Hot-plugs into running VMs.</summary>
[Cmdlet(VerbsCommon.Add, "KvmVmDisk", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVmDisk))]
public sealed class AddKvmVmDiskCommand : KvmVmCmdlet
{
    [Parameter]
    [ArgumentCompleter(typeof(KvmVmDiskVolumeCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Volume { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    [Parameter]
    [ByteSizeTransformation]
    public ulong? SizeBytes { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? StoragePool { get; set; }

    [Parameter]
    [ValidateSet("virtio", "scsi", "sata")]
    public string Bus { get; set; } = "virtio";

    [Parameter]
    [ValidateSet("qcow2", "raw")]
    public string? Format { get; set; }

    [Parameter]
    public SwitchParameter ReadOnly { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        int sources = (Volume is null ? 0 : 1) + (Path is null ? 0 : 1) + (SizeBytes is null ? 0 : 1);
        if (sources != 1)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give exactly one of -Volume, -Path and -SizeBytes."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, null));
        }

        if (StoragePool is not null && SizeBytes is null)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-StoragePool is only used with -SizeBytes (a new volume)."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, StoragePool));
        }

        if (Format is not null && SizeBytes is not null)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-Format describes an existing image (-Path or -Volume); a new disk (-SizeBytes) is always qcow2."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, Format));
        }

        if (Path is not null && !Path.StartsWith('/'))
        {
            Path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        string what = Volume is not null ? $"volume '{Volume}'" : Path is not null ? $"'{Path}'" : $"a new {ByteSize.Format(SizeBytes!.Value)} qcow2 volume in pool '{StoragePool ?? VmProvisioner.DefaultPool}'";
        if (!ShouldProcess(Describe(vm), $"Add {what} as a {Bus} disk{(ReadOnly ? " (read-only)" : string.Empty)}"))
        {
            return;
        }

        KvmVmDisk disk = DeviceService.AddDisk(vm, new DiskAddRequest
        {
            Volume = Volume,
            Path = Path,
            SizeBytes = SizeBytes,
            StoragePool = StoragePool,
            Bus = Bus,
            ReadOnly = ReadOnly,
            Format = Format,
        }, this, CancelToken);
        if (Passthru)
        {
            WriteObject(disk);
        }
    }
}
