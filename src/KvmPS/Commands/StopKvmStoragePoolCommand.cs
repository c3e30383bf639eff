using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Stops storage pools (deactivates them); their storage and volumes stay.</summary>
[Cmdlet(VerbsLifecycle.Stop, "KvmStoragePool", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(KvmStoragePool))]
public sealed class StopKvmStoragePoolCommand : KvmStoragePoolTargetCommand
{
    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessPool(KvmStoragePool pool)
    {
        string action = pool.Persistent ? "Stop storage pool (its storage and volumes are kept)" : "Stop transient storage pool (it disappears; its storage is kept)";
        if (!ShouldProcess(Describe(pool), action))
        {
            return;
        }

        StorageService.StopPool(pool, this);
        if (Passthru && pool.Persistent)
        {
            WritePool(pool);
        }
    }
}
