using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Inserts an ISO into, or ejects the medium of, a VM's CD/DVD drive (Hyper-V: Set-VMDvdDrive). Live when the VM runs.</summary>
[Cmdlet(VerbsCommon.Set, "KvmVmDvdDrive", SupportsShouldProcess = true, DefaultParameterSetName = DriveSet)]
[OutputType(typeof(KvmVmDisk))]
public sealed class SetKvmVmDvdDriveCommand : KvmVmCmdlet
{
    private const string DriveSet = "InputObject";

    [Parameter(ParameterSetName = NameSet)]
    [Parameter(ParameterSetName = VMSet)]
    [Parameter(ParameterSetName = LiteralNameSet)]
    [ArgumentCompleter(typeof(KvmVmDiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Target { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = DriveSet)]
    [ValidateNotNullOrEmpty]
    public KvmVmDisk[] InputObject { get; set; } = [];

    [Parameter(Position = 1)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    [Parameter]
    public SwitchParameter Eject { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if ((Path is null) == !Eject)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give exactly one of -Path (insert an image) and -Eject."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, null));
        }

        if (Path is not null && !Path.StartsWith('/'))
        {
            Path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        }
    }

    protected override void ProcessRecord()
    {
        if (ParameterSetName != DriveSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (KvmVmDisk drive in InputObject)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(drive.Target, () => Set(DeviceCmdletSupport.Owner(drive.Connection, drive.VMUuid, drive.VMName, drive), drive.Target));
        }
    }

    protected override void ProcessVm(KvmVm vm) => Set(vm, Target);

    private void Set(KvmVm vm, string? target)
    {
        string drive = target ?? "the first DVD drive";
        if (!ShouldProcess(Describe(vm), Eject ? $"Eject the medium of {drive}" : $"Insert '{Path}' into {drive}"))
        {
            return;
        }

        KvmVmDisk result = DeviceService.SetDvdMedia(vm, target, Eject ? null : Path, this);
        if (Passthru)
        {
            WriteObject(result);
        }
    }
}
