using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Backs VMs up into a self-describing folder: a full copy, or (-Incremental) only the blocks changed since the last backup.</summary>
[Cmdlet(VerbsData.Backup, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmBackup))]
[OutputType(typeof(KvmPSJob))]
public sealed class BackupKvmVmCommand : KvmVmBatchCmdlet
{
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = string.Empty;

    [Parameter]
    public SwitchParameter Incremental { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Disk { get; set; }

    [Parameter]
    public SwitchParameter Quiesce { get; set; }

    [Parameter]
    public SwitchParameter NoCheckpoint { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (Incremental && NoCheckpoint)
        {
            // an incremental builds on the last checkpoint and leaves one; -NoCheckpoint would end the chain early but is allowed
            WriteVerbose("-NoCheckpoint: this incremental backup ends the chain (no checkpoint for a next one)");
        }
    }

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
    {
        string dest = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Destination);
        if (!ShouldProcess(Describe(vm), $"{(Incremental ? "Incremental" : "Full")} backup into {dest}"))
        {
            return null;
        }

        bool incremental = Incremental, quiesce = Quiesce, noCheckpoint = NoCheckpoint;
        string[]? disks = Disk;
        return context => context.Write(BackupService.Backup(vm, dest, incremental, disks, quiesce, noCheckpoint, context, context.Cancel));
    }
}
