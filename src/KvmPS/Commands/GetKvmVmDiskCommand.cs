using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the disks and CD-ROM drives of VMs (Hyper-V: Get-VMHardDiskDrive), running and configured.</summary>
[Cmdlet(VerbsCommon.Get, "KvmVmDisk", DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVmDisk))]
public sealed class GetKvmVmDiskCommand : KvmVmCmdlet
{
    [Parameter(Position = 1)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVmDiskTargetCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Target { get; set; }

    protected override void ProcessVm(KvmVm vm)
    {
        IEnumerable<KvmVmDisk> disks = DeviceService.GetDisks(vm);
        if (Target is { Length: > 0 })
        {
            WildcardPattern[] patterns = Target.Select(t => WildcardPattern.Get(t, WildcardOptions.IgnoreCase)).ToArray();
            disks = disks.Where(d => patterns.Any(p => p.IsMatch(d.Target)));
        }

        WriteObject(disks, enumerateCollection: true);
    }
}
