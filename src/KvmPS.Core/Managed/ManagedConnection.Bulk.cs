using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Bulk reads: many calls in flight on the one connection (serials), collected as they come back.</summary>
internal sealed partial class ManagedConnection
{
    // Enough to keep the daemon's workers busy without queueing megabytes of replies.
    private const int BulkWindow = 64;

    public IReadOnlyList<string?> GetDomainXmls(IReadOnlyList<DomainRef> domains, DomainXmlFlags flags)
    {
        var result = new string?[domains.Count];
        var inFlight = new Queue<(int Index, RpcPendingCall<string> Call)>(BulkWindow);
        int next = 0;
        while (next < result.Length || inFlight.Count > 0)
        {
            while (next < result.Length && inFlight.Count < BulkWindow)
            {
                DomainRef d = domains[next];
                inFlight.Enqueue((next, Rpc.Begin(RpcPrograms.Remote, ProcDomainGetXmlDesc, w => DomainAndFlags(w, d, (uint)flags), r => r.ReadString())));
                next++;
            }

            (int index, RpcPendingCall<string> call) = inFlight.Dequeue();
            try
            {
                result[index] = call.Wait();
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomain)
            {
                result[index] = null;
            }
        }

        return result;
    }
}
