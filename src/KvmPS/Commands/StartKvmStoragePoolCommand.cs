using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Starts storage pools (activates them), optionally building their storage first.</summary>
[Cmdlet(VerbsLifecycle.Start, "KvmStoragePool", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(KvmStoragePool))]
public sealed class StartKvmStoragePoolCommand : KvmStoragePoolTargetCommand
{
    [Parameter]
    public SwitchParameter Build { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessPool(KvmStoragePool pool)
    {
        if (!ShouldProcess(Describe(pool), Build ? "Build and start storage pool" : "Start storage pool"))
        {
            return;
        }

        StorageService.StartPool(pool, Build, this);
        if (Passthru)
        {
            WritePool(pool);
        }
    }
}
