using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Refreshes storage pools: libvirt rereads their volumes (files added or removed outside libvirt) and free space.</summary>
[Cmdlet(VerbsData.Update, "KvmStoragePool", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(KvmStoragePool))]
public sealed class UpdateKvmStoragePoolCommand : KvmStoragePoolTargetCommand
{
    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessPool(KvmStoragePool pool)
    {
        if (!ShouldProcess(Describe(pool), "Refresh storage pool (reread its volumes)"))
        {
            return;
        }

        StorageService.RefreshPool(pool, this);
        if (Passthru)
        {
            WritePool(pool);
        }
    }
}
