using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Rebuilds a VM from a backup (its full backup plus the incrementals up to it) as new volumes, and defines it.</summary>
[Cmdlet(VerbsData.Restore, "KvmBackup", SupportsShouldProcess = true, DefaultParameterSetName = PathSet)]
[OutputType(typeof(KvmVm))]
public sealed class RestoreKvmBackupCommand : KvmCmdlet
{
    protected override bool CreatesOnOneHost => true;

    protected override object? CreationTarget => Backup is null ? Path : Backup.Path;

    private const string PathSet = "Path";
    private const string BackupSet = "Backup";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = BackupSet)]
    [ValidateNotNull]
    public KvmBackup? Backup { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    [Alias("NewName")]
    public string? Name { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? StoragePool { get; set; }

    [Parameter]
    public SwitchParameter Start { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
    {
        KvmBackup? backup = Backup;
        if (backup is null)
        {
            string full = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path).TrimEnd('/');
            Guard(Path, () =>
            {
                // a backup set's folder means its latest backup; one backup's own folder means that backup
                backup = File.Exists(System.IO.Path.Combine(full, BackupService.SetManifestName))
                    ? BackupService.List(full).LastOrDefault()
                    : System.IO.Path.GetDirectoryName(full) is { } parent && File.Exists(System.IO.Path.Combine(parent, BackupService.SetManifestName))
                        ? BackupService.List(parent).FirstOrDefault(b => b.Path == full)
                        : null;
                if (backup is null)
                {
                    WriteError(new ErrorRecord(new DirectoryNotFoundException($"No KvmPS backup in '{full}'."), "BackupNotFound", ErrorCategory.ObjectNotFound, Path));
                }
            });
            if (backup is null)
            {
                return;
            }
        }

        // The set is checked (names, files, checksums, headers) before anything is asked or written; what the restored
        // definition leaves out is part of the question, so -WhatIf shows it.
        IReadOnlyList<string>? dropped = null;
        KvmBackup chosen = backup;
        Guard(Backup is null ? Path : backup.Path, () => dropped = BackupService.PlanRestore(chosen, Name, this, CancelToken));
        if (dropped is null)
        {
            return;
        }

        string name = Name ?? backup.VMName;
        string leftOut = dropped.Count == 0 ? string.Empty : $" (left out of its definition: {string.Join("; ", dropped)})";
        if (!ShouldProcess($"{name} on {connection.HostName ?? connection.Uri}", $"Restore backup {backup.Name} of VM '{backup.VMName}'{leftOut}"))
        {
            return;
        }

        Guard(Backup is null ? Path : backup.Path, () =>
        {
            KvmVm vm = BackupService.Restore(connection, backup, Name, StoragePool, this, CancelToken);
            if (Start)
            {
                VmLifecycle.Start(vm, this);
                vm = VmService.Refresh(vm);
            }

            WriteObject(vm);
        });
    }
}
