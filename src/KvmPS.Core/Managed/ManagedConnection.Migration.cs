using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>
/// Migration of the managed connection. Peer-to-peer migration is one call to the source daemon; a managed migration
/// is driven by the client across the two connections, in the order libvirt's own client library uses (its
/// "version 3 with parameters" protocol): begin on the source, prepare on the destination, perform on the source,
/// finish on the destination, confirm on the source — each step passing the previous step's cookie on.
/// </summary>
internal sealed partial class ManagedConnection
{
    private const int ProcMigrateSetMaxDowntime = 166;
    private const int ProcMigrateBegin3Params = 302;
    private const int ProcMigratePrepare3Params = 303;
    private const int ProcMigratePerform3Params = 305;
    private const int ProcMigrateFinish3Params = 306;
    private const int ProcMigrateConfirm3Params = 307;
    private const int ProcMigrateStartPostCopy = 364;
    private const int ProcCompareHypervisorCpu = 393;

    /// <summary>REMOTE_MIGRATE_COOKIE_MAX.</summary>
    private const int MigrateCookieMax = 4 * 1024 * 1024;

    /// <summary>REMOTE_DOMAIN_MIGRATE_PARAM_LIST_MAX.</summary>
    private const int MigrateParamsMax = 64;

    public DomainRef MigrateDomain(DomainRef domain, ILibvirtConnection destination, IReadOnlyList<TypedParameter> parameters, MigrateFlags flags)
    {
        if (destination is not ManagedConnection target)
        {
            throw new LibvirtException(LibvirtErrorCode.ArgumentUnsupported, LibvirtErrorDomain.None,
                "A managed migration needs both connections on the same backend (the destination is not a managed connection).");
        }

        if ((flags & (MigrateFlags.PeerToPeer | MigrateFlags.Tunnelled)) != 0)
        {
            throw new LibvirtException(LibvirtErrorCode.InvalidArg, LibvirtErrorDomain.None,
                "Peer-to-peer and tunnelled migrations are started with MigrateDomainToUri.");
        }

        if (parameters.Count > MigrateParamsMax - 2)
        {
            throw new LibvirtException(LibvirtErrorCode.InvalidArg, LibvirtErrorDomain.None, $"Too many migration parameters ({parameters.Count}).");
        }

        DomainRef d = LookupDomainByUuid(domain.Uuid);
        var pars = new List<TypedParameter>(parameters);
        // The qemu driver protects the domain from changes between begin and confirm (libvirt's client adds this
        // flag itself for the source side only).
        MigrateFlags sourceFlags = flags | MigrateFlags.ChangeProtection;

        (byte[] cookie, string domainXml) = Remote(ProcMigrateBegin3Params, w =>
        {
            w.WriteDomain(d);
            w.WriteTypedParameters(pars);
            w.WriteUInt32((uint)sourceFlags);
        }, r => (r.ReadOpaque(MigrateCookieMax), r.ReadString()));

        if (GetDomainState(d).State == 3 && (flags & MigrateFlags.PostCopyResume) == 0)
        {
            flags |= MigrateFlags.Paused;     // a paused guest stays paused on the destination
            sourceFlags |= MigrateFlags.Paused;
        }

        MigrateFlags destinationFlags = flags & ~(MigrateFlags.AbortOnError | MigrateFlags.AutoConverge);
        Replace(pars, new TypedParameter(MigrateParameter.DestinationXml, TypedParameterType.String, domainXml));

        string? uriOut;
        try
        {
            (cookie, uriOut) = target.Remote(ProcMigratePrepare3Params, w =>
            {
                w.WriteTypedParameters(pars);
                w.WriteOpaque(cookie);
                w.WriteUInt32((uint)destinationFlags);
            }, r => (r.ReadOpaque(MigrateCookieMax), r.ReadOptionalString()));
        }
        catch (LibvirtException)
        {
            // begin started a job on the source: end it, keeping the prepare error
            TryConfirm(d, pars, [], sourceFlags, cancelled: true);
            throw;
        }

        if (uriOut is not null)
        {
            Replace(pars, new TypedParameter(MigrateParameter.Uri, TypedParameterType.String, uriOut));
        }

        if (!pars.Exists(p => p.Name == MigrateParameter.DestinationName))
        {
            pars.Add(new TypedParameter(MigrateParameter.DestinationName, TypedParameterType.String, d.Name));
        }

        LibvirtException? performError = null;
        bool notifySource = true;
        if ((flags & MigrateFlags.Offline) == 0)
        {
            try
            {
                cookie = Remote(ProcMigratePerform3Params, w =>
                {
                    w.WriteDomain(d);
                    w.WriteOptionalString(null);   // dconnuri: only for peer-to-peer
                    w.WriteTypedParameters(pars);
                    w.WriteOpaque(cookie);
                    w.WriteUInt32((uint)sourceFlags);
                }, r => r.ReadOpaque(MigrateCookieMax));
            }
            catch (LibvirtException e)
            {
                // the source already knows it failed: only the destination is told to clean up
                performError = e;
                notifySource = false;
                cookie = [];
            }
        }
        else
        {
            cookie = [];
        }

        DomainRef? moved = null;
        LibvirtException? finishError = null;
        try
        {
            (moved, cookie) = target.Remote(ProcMigrateFinish3Params, w =>
            {
                w.WriteTypedParameters(pars);
                w.WriteOpaque(cookie);
                w.WriteUInt32((uint)destinationFlags);
                w.WriteInt32(performError is null ? 0 : 1);
            }, r => ((DomainRef?)r.ReadDomain(), r.ReadOpaque(MigrateCookieMax)));
        }
        catch (LibvirtException e)
        {
            finishError = e;
            cookie = [];
        }

        if (performError is not null && moved is not null)
        {
            moved = null;   // the destination ignored that the migration was cancelled: nothing to report as moved
        }

        if (notifySource)
        {
            // cancelled: the source guest resumes; otherwise the source ends it
            TryConfirm(d, pars, cookie, sourceFlags, cancelled: moved is null);
        }

        if (performError is not null)
        {
            throw performError;
        }

        return moved ?? throw (finishError ?? new LibvirtException(LibvirtErrorCode.OperationFailed, LibvirtErrorDomain.None,
            $"The destination did not report the migrated domain '{d.Name}'."));
    }

    private void TryConfirm(DomainRef d, List<TypedParameter> pars, byte[] cookie, MigrateFlags flags, bool cancelled)
    {
        try
        {
            Remote(ProcMigrateConfirm3Params, w =>
            {
                w.WriteDomain(d);
                w.WriteTypedParameters(pars);
                w.WriteOpaque(cookie);
                w.WriteUInt32((uint)flags);
                w.WriteInt32(cancelled ? 1 : 0);
            });
        }
        catch (LibvirtException)
        {
            // as libvirt's client: nothing more can be done; at worst the source guest stays paused
        }
    }

    private static void Replace(List<TypedParameter> pars, TypedParameter value)
    {
        pars.RemoveAll(p => p.Name == value.Name);
        pars.Add(value);
    }

    public void MigrateDomainToUri(DomainRef domain, string destinationUri, IReadOnlyList<TypedParameter> parameters, MigrateFlags flags)
    {
        if ((flags & MigrateFlags.PeerToPeer) == 0)
        {
            throw new LibvirtException(LibvirtErrorCode.InvalidArg, LibvirtErrorDomain.None,
                "MigrateDomainToUri is the peer-to-peer migration; a direct one needs a connection to the destination.");
        }

        DomainRef d = LookupDomainByUuid(domain.Uuid);
        _ = Remote(ProcMigratePerform3Params, w =>
        {
            w.WriteDomain(d);
            w.WriteOptionalString(destinationUri);
            w.WriteTypedParameters(parameters);
            w.WriteOpaque([]);
            w.WriteUInt32((uint)flags);
        }, r => r.ReadOpaque(MigrateCookieMax));
    }

    public void SetMigrationMaxDowntime(DomainRef domain, ulong milliseconds)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        Remote(ProcMigrateSetMaxDowntime, w =>
        {
            w.WriteDomain(d);
            w.WriteUInt64(milliseconds);
            w.WriteUInt32(0);
        });
    }

    public void StartMigrationPostCopy(DomainRef domain)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        Remote(ProcMigrateStartPostCopy, w =>
        {
            w.WriteDomain(d);
            w.WriteUInt32(0);
        });
    }

    private const int ProcBlockJobAbort = 237;
    private const int ProcGetBlockJobInfo = 238;
    private const int ProcBlockCopy = 345;

    public void BlockCopy(DomainRef domain, string disk, string destinationXml, IReadOnlyList<TypedParameter> parameters, BlockCopyFlags flags)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        Remote(ProcBlockCopy, w =>
        {
            w.WriteDomain(d);
            w.WriteString(disk);
            w.WriteString(destinationXml);
            w.WriteTypedParameters(parameters);
            w.WriteUInt32((uint)flags);
        });
    }

    public BlockJobInfo? GetBlockJobInfo(DomainRef domain, string disk)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        return Remote(ProcGetBlockJobInfo, w =>
        {
            w.WriteDomain(d);
            w.WriteString(disk);
            w.WriteUInt32(0);
        }, r =>
        {
            int found = r.ReadInt32();
            var info = new BlockJobInfo(r.ReadInt32(), r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64());
            return found == 0 ? (BlockJobInfo?)null : info;
        });
    }

    public void AbortBlockJob(DomainRef domain, string disk, BlockJobAbortFlags flags)
    {
        DomainRef d = LookupDomainByUuid(domain.Uuid);
        Remote(ProcBlockJobAbort, w =>
        {
            w.WriteDomain(d);
            w.WriteString(disk);
            w.WriteUInt32((uint)flags);
        });
    }

    public CpuCompareResult CompareHypervisorCpu(string? emulator, string? arch, string? machine, string? virtType, string cpuXml, uint flags)
        => (CpuCompareResult)Remote(ProcCompareHypervisorCpu, w =>
        {
            w.WriteOptionalString(emulator);
            w.WriteOptionalString(arch);
            w.WriteOptionalString(machine);
            w.WriteOptionalString(virtType);
            w.WriteString(cpuXml);
            w.WriteUInt32(flags);
        }, r => r.ReadInt32());
}
