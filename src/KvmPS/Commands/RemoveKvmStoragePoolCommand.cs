using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Removes storage pools: stops and undefines them; with -DeleteContents deletes their volumes and storage too.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmStoragePool", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(void))]
public sealed class RemoveKvmStoragePoolCommand : KvmStoragePoolTargetCommand
{
    [Parameter]
    public SwitchParameter DeleteContents { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessPool(KvmStoragePool pool)
    {
        string action = DeleteContents
            ? $"Remove storage pool and DELETE its {(pool.IsRunning ? $"{pool.VolumeCount} volume(s)" : "volumes")} and its storage{(pool.Path is null ? string.Empty : $" ({pool.Path})")}"
            : $"Remove storage pool (its storage{(pool.Path is null ? string.Empty : $" {pool.Path}")} and volumes are kept)";
        if (DeleteContents && StorageService.VolumesInUse(pool, CancelToken) is { Count: > 0 } inUse)
        {
            string users = string.Join("; ", inUse.Select(u => $"{u.Volume} (used by {string.Join(", ", u.Users.Select(x => x.ToString()).Distinct())})"));
            action += Force
                ? $"; deleted although in use (-Force): {users}"
                : $"; in use, so nothing is deleted and the command stops (VolumeInUse) unless -Force: {users}";
        }

        if (!ShouldProcess(Describe(pool), action))
        {
            return;
        }

        StorageService.RemovePool(pool, DeleteContents, Force, this, CancelToken);
    }
}
