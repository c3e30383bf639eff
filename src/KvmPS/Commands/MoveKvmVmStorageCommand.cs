using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Moves a running VM's disks to another storage pool on its host while the guest runs (libvirt block copy and pivot).</summary>
[Cmdlet(VerbsCommon.Move, "KvmVmStorage", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class MoveKvmVmStorageCommand : KvmVmBatchCmdlet
{
    /// <summary>The pool the disks move to.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [Alias("DestinationPool")]
    public string DestinationStoragePool { get; set; } = string.Empty;

    /// <summary>Only these disks (targets such as vda); default: every writable disk.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Disk { get; set; }

    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public ulong BandwidthMiBps { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
    {
        IReadOnlyList<StorageMoveService.Move> moves;
        try
        {
            moves = StorageMoveService.Plan(vm, Disk, DestinationStoragePool);
        }
        catch (KvmOperationException e)
        {
            WriteError(ErrorRecords.FromOperation(e, e.Target ?? vm.Name));
            return null;
        }

        if (moves.Count == 0 || !ShouldProcess(Describe(vm), $"Move {string.Join(", ", moves.Select(m => $"{m.Target} ({m.Path})"))} to pool {DestinationStoragePool} while it runs"))
        {
            return null;
        }

        ulong? bandwidth = MyInvocation.BoundParameters.ContainsKey(nameof(BandwidthMiBps)) ? BandwidthMiBps : null;
        bool passthru = Passthru;
        return context =>
        {
            KvmVm now = StorageMoveService.MoveDisks(vm, moves, bandwidth, context, context.Cancel);
            if (passthru)
            {
                context.Write(now);
            }
        };
    }
}
