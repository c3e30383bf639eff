using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Backup jobs, job statistics, file-system freeze and checkpoints of the managed connection.</summary>
internal sealed partial class ManagedConnection
{
    private const int ProcBackupAbortJob = 164;
    private const int ProcBackupGetJobStats = 298;
    private const int ProcBackupFsFreeze = 335;
    private const int ProcBackupFsThaw = 336;
    private const int ProcBackupListAllCheckpoints = 413;
    private const int ProcBackupCheckpointLookupByName = 415;
    private const int ProcBackupCheckpointDelete = 417;
    private const int ProcBackupBegin = 421;

    /// <summary>VIR_DOMAIN_JOB_STATS_COMPLETED.</summary>
    private const uint BackupJobStatsCompleted = 1;

    /// <summary>REMOTE_DOMAIN_JOB_STATS_MAX / REMOTE_DOMAIN_CHECKPOINT_LIST_MAX.</summary>
    private const int BackupJobStatsMax = 64;
    private const int BackupCheckpointListMax = 16384;

    public void BeginBackup(DomainRef domain, string backupXml, string? checkpointXml, uint flags)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        Remote(ProcBackupBegin, w =>
        {
            w.WriteDomain(d);
            w.WriteString(backupXml);
            w.WriteOptionalString(checkpointXml);
            w.WriteUInt32(flags);
        });
    }

    public (int Type, IReadOnlyList<TypedParameter> Stats) GetJobStats(DomainRef domain, bool completed)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        return Remote(ProcBackupGetJobStats, w =>
        {
            w.WriteDomain(d);
            w.WriteUInt32(completed ? BackupJobStatsCompleted : 0);
        }, r =>
        {
            int type = r.ReadInt32();
            IReadOnlyList<TypedParameter> stats = r.ReadTypedParameters(BackupJobStatsMax);
            return (type, stats);
        });
    }

    public void AbortJob(DomainRef domain)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        Remote(ProcBackupAbortJob, w => w.WriteDomain(d));
    }

    public IReadOnlyList<string> ListCheckpointNames(DomainRef domain)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        return Remote(ProcBackupListAllCheckpoints, w =>
        {
            w.WriteDomain(d);
            w.WriteInt32(1);    // need_results
            w.WriteUInt32(0);
        }, r =>
        {
            // remote_nonnull_domain_checkpoint: the name, then the domain it belongs to.
            IReadOnlyList<string> names = r.ReadArray(c =>
            {
                string name = c.ReadString();
                _ = c.ReadDomain();
                return name;
            }, BackupCheckpointListMax);
            _ = r.ReadInt32();
            return names;
        });
    }

    public int FreezeFileSystems(DomainRef domain) => FileSystemsCall(ProcBackupFsFreeze, domain);

    public int ThawFileSystems(DomainRef domain) => FileSystemsCall(ProcBackupFsThaw, domain);

    public void DeleteCheckpoint(DomainRef domain, string name, uint flags)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        (string cpName, DomainRef cpDomain) = Remote(ProcBackupCheckpointLookupByName, w =>
        {
            w.WriteDomain(d);
            w.WriteString(name);
            w.WriteUInt32(0);
        }, r => (r.ReadString(), r.ReadDomain()));
        Remote(ProcBackupCheckpointDelete, w =>
        {
            w.WriteString(cpName);
            w.WriteDomain(cpDomain);
            w.WriteUInt32(flags);
        });
    }

    /// <summary>virDomainFSFreeze/virDomainFSThaw on every mount point: how many file systems changed.</summary>
    private int FileSystemsCall(int procedure, DomainRef domain)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        return Remote(procedure, w =>
        {
            w.WriteDomain(d);
            w.WriteUInt32(0);   // no mount points: all of them
            w.WriteUInt32(0);
        }, r => r.ReadInt32());
    }
}
