using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Domain snapshots of the managed connection (REMOTE_PROC_DOMAIN_SNAPSHOT_*).</summary>
internal sealed partial class ManagedConnection
{
    private const int ProcSnapshotCreateXml = 185;
    private const int ProcSnapshotGetXmlDesc = 186;
    private const int ProcSnapshotLookupByName = 189;
    private const int ProcSnapshotRevert = 192;
    private const int ProcSnapshotDelete = 193;
    private const int ProcSnapshotIsCurrent = 271;
    private const int ProcSnapshotListAll = 274;

    /// <summary>Every snapshot with its XML and current flag; the per-snapshot calls go out together and pipeline.</summary>
    public IReadOnlyList<SnapshotData> ListSnapshots(DomainRef domain)
    {
        IReadOnlyList<SnapshotRef> snaps = Remote(ProcSnapshotListAll, w =>
        {
            w.WriteDomain(domain);
            w.WriteInt32(1);    // need_results
            w.WriteUInt32(0);
        }, r =>
        {
            IReadOnlyList<SnapshotRef> list = r.ReadArray(ReadSnapshot, XdrLimits.SnapshotListMax);
            _ = r.ReadInt32();
            return list;
        });

        var xmls = new RpcPendingCall<string>[snaps.Count];
        var current = new RpcPendingCall<bool>[snaps.Count];
        for (int i = 0; i < snaps.Count; i++)
        {
            SnapshotRef s = snaps[i];
            xmls[i] = _rpc.Begin(RpcPrograms.Remote, ProcSnapshotGetXmlDesc, w => SnapshotAndFlags(w, s, 0), r => r.ReadString());
            current[i] = _rpc.Begin(RpcPrograms.Remote, ProcSnapshotIsCurrent, w => SnapshotAndFlags(w, s, 0), r => r.ReadInt32() == 1);
        }

        var result = new SnapshotData[snaps.Count];
        LibvirtException? first = null;
        for (int i = 0; i < snaps.Count; i++)
        {
            // collect every reply (so none is left behind) and report the first failure, as native would
            try
            {
                string xml = xmls[i].Wait();
                result[i] = new SnapshotData(snaps[i].Name, xml, current[i].Wait());
            }
            catch (LibvirtException e)
            {
                first ??= e;
                try
                {
                    _ = current[i].Wait();
                }
                catch (LibvirtException)
                {
                    // already reporting the first error
                }
            }
        }

        return first is null ? result : throw first;
    }

    public string CreateSnapshot(DomainRef domain, string xml, SnapshotCreateFlags flags)
        => Remote(ProcSnapshotCreateXml, w =>
        {
            w.WriteDomain(domain);
            w.WriteString(xml);
            w.WriteUInt32((uint)flags);
        }, ReadSnapshot).Name;

    public void RevertToSnapshot(DomainRef domain, string name, SnapshotRevertFlags flags)
    {
        SnapshotRef s = LookupSnapshot(domain, name);
        Remote(ProcSnapshotRevert, w => SnapshotAndFlags(w, s, (uint)flags));
    }

    public void DeleteSnapshot(DomainRef domain, string name, SnapshotDeleteFlags flags)
    {
        SnapshotRef s = LookupSnapshot(domain, name);
        Remote(ProcSnapshotDelete, w => SnapshotAndFlags(w, s, (uint)flags));
    }

    /// <summary>Like native's virDomainSnapshotLookupByName: a missing snapshot fails here, with the daemon's error.</summary>
    private SnapshotRef LookupSnapshot(DomainRef domain, string name)
        => Remote(ProcSnapshotLookupByName, w =>
        {
            w.WriteDomain(domain);
            w.WriteString(name);
            w.WriteUInt32(0);
        }, ReadSnapshot);

    private static void SnapshotAndFlags(XdrWriter w, SnapshotRef s, uint flags)
    {
        w.WriteString(s.Name);
        w.WriteDomain(s.Domain);
        w.WriteUInt32(flags);
    }

    /// <summary>remote_nonnull_domain_snapshot.</summary>
    private static SnapshotRef ReadSnapshot(XdrReader r) => new(r.ReadString(), r.ReadDomain());

    /// <summary>remote_nonnull_domain_snapshot: a snapshot name and its domain.</summary>
    private readonly record struct SnapshotRef(string Name, DomainRef Domain);
}
