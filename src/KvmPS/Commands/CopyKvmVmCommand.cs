using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>
/// Copies shut-off VMs with their disks into new VMs with their own identity: full copies (on the same host or on
/// -DestinationConnection) or linked copies (-Linked: qcow2 overlays on the source's disks).
/// </summary>
[Cmdlet(VerbsCommon.Copy, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class CopyKvmVmCommand : KvmVmBatchCmdlet
{
    /// <summary>The copy's name.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string NewName { get; set; } = string.Empty;

    [Parameter]
    public SwitchParameter Linked { get; set; }

    [Parameter]
    [KvmConnectionTransformation]
    [ArgumentCompleter(typeof(KvmConnectionCompleter))]
    [Alias("DestinationHost")]
    public KvmConnection[]? DestinationConnection { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? DestinationStoragePool { get; set; }

    [Parameter]
    public SwitchParameter Start { get; set; }

    private int _count;

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (DestinationConnection is { Length: not 1 })
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-DestinationConnection takes one host."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, DestinationConnection));
        }
    }

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
    {
        if (++_count > 1)
        {
            WriteError(new ErrorRecord(new ArgumentException($"-NewName names one copy; '{vm.Name}' is a second VM."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, vm.Name));
            return null;
        }

        KvmConnection? destination = DestinationConnection?[0];
        string where = destination is null ? "on the same host" : $"on {destination.Uri}";
        if (!ShouldProcess(Describe(vm), $"{(Linked ? "Linked copy (overlays on its disks)" : "Full copy of every disk")} as '{NewName}' {where}{(Start ? ", started" : string.Empty)}"))
        {
            return null;
        }

        string newName = NewName, pool = DestinationStoragePool!;
        bool linked = Linked, start = Start;
        return context =>
        {
            context.Write(VmCopyService.Copy(vm, newName, linked, destination, pool, start, context, context.Cancel));
            if (linked)
            {
                context.Warning($"'{newName}' is a linked copy: '{vm.Name}''s disks are now its base images. Starting '{vm.Name}' changes them under the copy; keep '{vm.Name}' shut off as a template.");
            }
        };
    }
}
