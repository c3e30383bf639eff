using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Adds a SATA CD/DVD drive to VMs (Hyper-V: Add-VMDvdDrive), empty or with an ISO. On a running VM it appears at the next start.</summary>
[Cmdlet(VerbsCommon.Add, "KvmVmDvdDrive", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVmDisk))]
public sealed class AddKvmVmDvdDriveCommand : KvmVmCmdlet
{
    [Parameter(Position = 1)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (Path is not null && !Path.StartsWith('/'))
        {
            Path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        if (!ShouldProcess(Describe(vm), Path is null ? "Add an empty DVD drive" : $"Add a DVD drive with '{Path}'"))
        {
            return;
        }

        KvmVmDisk drive = DeviceService.AddDvdDrive(vm, Path, this);
        if (Passthru)
        {
            WriteObject(drive);
        }
    }
}
