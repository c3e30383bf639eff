using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>
/// Moves VMs to another host: live (libvirt migration) when they run, offline when they are shut off; the disks stay
/// on shared storage or are copied with -IncludeStorage. Every check runs before anything changes (-WhatIf shows them).
/// </summary>
[Cmdlet(VerbsCommon.Move, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class MoveKvmVmCommand : KvmVmBatchCmdlet
{
    /// <summary>The host the VMs move to: a KvmConnection or a libvirt URI.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [KvmConnectionTransformation]
    [ArgumentCompleter(typeof(KvmConnectionCompleter))]
    [Alias("DestinationHost")]
    public KvmConnection[] DestinationConnection { get; set; } = [];

    [Parameter]
    public SwitchParameter IncludeStorage { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? DestinationStoragePool { get; set; }

    [Parameter]
    public SwitchParameter KeepSource { get; set; }

    [Parameter]
    public SwitchParameter AllowUnsafe { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MigrationAddress { get; set; }

    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public ulong BandwidthMiBps { get; set; }

    [Parameter]
    [ValidateRange(1, 600_000)]
    public int MaxDowntimeMs { get; set; }

    [Parameter]
    public SwitchParameter AutoConverge { get; set; }

    [Parameter]
    public SwitchParameter PostCopy { get; set; }

    [Parameter]
    public SwitchParameter Compressed { get; set; }

    [Parameter]
    public SwitchParameter PeerToPeer { get; set; }

    [Parameter]
    [ValidateRange(1, 86400)]
    public int TimeoutSec { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (DestinationConnection.Length != 1)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-DestinationConnection takes one host."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, DestinationConnection));
        }
    }

    private KvmMigrationOptions Options() => new()
    {
        IncludeStorage = IncludeStorage,
        DestinationStoragePool = DestinationStoragePool,
        KeepSource = KeepSource,
        AllowUnsafe = AllowUnsafe,
        MigrationAddress = MigrationAddress,
        BandwidthMiBps = MyInvocation.BoundParameters.ContainsKey(nameof(BandwidthMiBps)) ? BandwidthMiBps : null,
        MaxDowntime = MyInvocation.BoundParameters.ContainsKey(nameof(MaxDowntimeMs)) ? TimeSpan.FromMilliseconds(MaxDowntimeMs) : null,
        AutoConverge = AutoConverge,
        PostCopy = PostCopy,
        Compressed = Compressed,
        PeerToPeer = PeerToPeer,
        Timeout = MyInvocation.BoundParameters.ContainsKey(nameof(TimeoutSec)) ? TimeSpan.FromSeconds(TimeoutSec) : null,
    };

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
    {
        KvmConnection destination = DestinationConnection[0];
        KvmMigrationOptions options = Options();
        KvmMigrationPlan plan;
        try
        {
            // the checks read both hosts and change nothing: they run (and fail) under -WhatIf too
            plan = MigrationService.Plan(vm, destination, options);
        }
        catch (LibvirtException e)
        {
            WriteError(ErrorRecords.FromLibvirt(e, vm.Name));
            return null;
        }

        foreach (KvmMigrationCheck check in plan.Checks)
        {
            WriteVerbose($"'{vm.Name}' → {destination.Uri}: {check}");
        }

        if (plan.FirstFailure is { } failed)
        {
            WriteError(ErrorRecords.FromOperation(MigrationService.CheckFailed(vm, failed), vm.Name));
            return null;
        }

        if (!ShouldProcess(Describe(vm), plan.Describe(options)))
        {
            return null;
        }

        bool passthru = Passthru;
        return context =>
        {
            KvmVm moved = MigrationService.Move(plan, options, context, context.Cancel);
            if (passthru)
            {
                context.Write(moved);
            }
        };
    }
}
