using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>
/// Ranks the hosts by the room they keep after taking a VM of the given size (memory not committed to VMs, vCPU:CPU
/// ratio, pool space, networks). Hosts from the whole pipeline are gathered, read at once, then ranked; the ones that
/// cannot take the VM are left out (with -Verbose saying why) unless -IncludeExcluded.
/// </summary>
[Cmdlet(VerbsCommon.Find, "KvmHost")]
[OutputType(typeof(KvmHostPlacement))]
public sealed class FindKvmHostCommand : KvmCmdlet
{
    private readonly List<KvmConnection> _connections = [];

    /// <summary>vCPUs of the VM to place.</summary>
    [Parameter]
    [ValidateRange(1, 4096)]
    public int CpuCount { get; set; } = 1;

    /// <summary>Memory of the VM to place.</summary>
    [Parameter(Mandatory = true)]
    [ByteSizeTransformation]
    [Alias("MemoryStartupBytes")]
    public ulong MemoryBytes { get; set; }

    /// <summary>Size of its new disk (0 or absent: no pool space needed).</summary>
    [Parameter]
    [ByteSizeTransformation]
    [Alias("NewVHDSizeBytes")]
    public ulong DiskSizeBytes { get; set; }

    /// <summary>The pool the disk goes to.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    public string StoragePool { get; set; } = VmProvisioner.DefaultPool;

    /// <summary>Networks the VM needs: each must exist and be active on the host.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [Alias("SwitchName")]
    [ArgumentCompleter(typeof(KvmNetworkNameCompleter))]
    public string[]? Network { get; set; }

    /// <summary>Highest vCPU:CPU ratio a host may reach with the VM.</summary>
    [Parameter]
    [ValidateRange(0.01, 1000.0)]
    public double MaxCpuRatio { get; set; } = PlacementService.DefaultMaxCpuRatio;

    /// <summary>Highest share of a host's memory the VMs may take with the new one (1: no memory overcommit).</summary>
    [Parameter]
    [ValidateRange(0.01, 100.0)]
    public double MaxMemoryRatio { get; set; } = 1.0;

    /// <summary>Which VMs count as commitments: every defined VM (default) or only the active ones.</summary>
    [Parameter]
    public KvmPlacementCommitment Commitment { get; set; } = KvmPlacementCommitment.Defined;

    /// <summary>Also return the hosts that cannot take the VM (Fits false, rank 0, with ExcludedBecause).</summary>
    [Parameter]
    public SwitchParameter IncludeExcluded { get; set; }

    /// <summary>How many hosts are read at once.</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 16;

    protected override void ProcessRecord()
    {
        foreach (KvmConnection c in Connection is { Length: > 0 } given ? given : ModuleState.Implicit())
        {
            if (!_connections.Contains(c))
            {
                _connections.Add(c);
            }
        }
    }

    protected override void ProcessConnection(KvmConnection connection)
        => throw new NotSupportedException("Find-KvmHost reads its hosts in EndProcessing.");

    protected override void EndProcessing()
    {
        var request = new KvmPlacementRequest
        {
            CpuCount = CpuCount,
            MemoryBytes = MemoryBytes,
            DiskSizeBytes = DiskSizeBytes,
            StoragePool = StoragePool,
            Networks = Network ?? [],
            MaxCpuRatio = MaxCpuRatio,
            MaxMemoryRatio = MaxMemoryRatio,
            Commitment = Commitment,
        };
        IReadOnlyList<KvmHostPlacement> ranked = RankHosts(_connections, request, ThrottleLimit);
        foreach (KvmHostPlacement p in ranked)
        {
            if (p.Fits || IncludeExcluded)
            {
                WriteObject(p);
            }
        }

        if (ranked.Count > 0 && !ranked.Any(p => p.Fits) && !IncludeExcluded)
        {
            WriteError(ErrorRecords.NoHostFits(Describe(request), ranked));
        }
    }

    /// <summary>The request as the user gave it, for the NoHostFits error's TargetObject.</summary>
    internal static string Describe(KvmPlacementRequest r)
        => $"{r.CpuCount} vCPU, {ByteSize.Format(r.MemoryBytes)}"
            + (r.DiskSizeBytes > 0 ? $", {ByteSize.Format(r.DiskSizeBytes)} disk in pool '{r.StoragePool}'" : string.Empty)
            + (r.Networks.Count > 0 ? $", networks {string.Join(", ", r.Networks)}" : string.Empty);
}
