using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Placement (Find-KvmHost, New-KvmVm -Placement): every host's facts read at once, ranked by Core's PlacementService.</summary>
public abstract partial class KvmCmdlet
{
    /// <summary>
    /// Reads the facts of <paramref name="connections"/> (each once, up to <paramref name="throttleLimit"/> at once; a host
    /// that cannot be read is its own non-terminating error) and ranks them for <paramref name="request"/>.
    /// </summary>
    protected IReadOnlyList<KvmHostPlacement> RankHosts(IReadOnlyList<KvmConnection> connections, KvmPlacementRequest request, int throttleLimit)
    {
        List<KvmConnection> distinct = connections.Distinct().ToList();
        var facts = new KvmPlacementHost?[distinct.Count];
        ForEachConcurrently(Enumerable.Range(0, distinct.Count).ToList(), i =>
        {
            KvmConnection c = distinct[i];
            try
            {
                c.Open();
            }
            catch (LibvirtException e)
            {
                WriteError(ErrorRecords.ConnectionFailed(e, c.RequestedUri ?? c.Uri));
                return;
            }

            try
            {
                WriteVerbose($"Reading the capacity and commitments of '{c.Uri}'");
                facts[i] = PlacementService.Read(c, CancelToken);
            }
            catch (LibvirtException e)
            {
                WriteError(ErrorRecords.FromLibvirt(e, c.Uri));
            }
        }, throttleLimit);

        IReadOnlyList<KvmHostPlacement> ranked = PlacementService.Rank(facts.OfType<KvmPlacementHost>(), request);
        foreach (KvmHostPlacement p in ranked)
        {
            WriteVerbose(p.Fits
                ? $"'{p.Uri}': rank {p.PlacementRank}, score {p.Score:0.####}, {ByteSize.Format((ulong)p.FreeMemoryAfterBytes)} memory left, vCPU:CPU {p.CpuRatioAfter:0.##} after placing"
                : $"'{p.Uri}' cannot take it: {string.Join("; ", p.ExcludedBecause)}");
        }

        return ranked;
    }
}
