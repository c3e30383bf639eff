using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Base of every storage cmdlet: finds pools by name or wildcard, reads which VMs use which volumes once per connection
/// and invocation, and turns storage failures into non-terminating errors with storage ErrorIds.
/// </summary>
public abstract class KvmStoragePoolBaseCommand : KvmCmdlet
{
    private readonly Dictionary<KvmConnection, StorageUsage> _usage = new(ReferenceEqualityComparer.Instance);

    /// <summary>"pool on host": the ShouldProcess target of a pool.</summary>
    protected static string Describe(KvmStoragePool pool) => $"{pool.Name} on {pool.Connection.HostName ?? pool.Connection.Uri}";

    /// <summary>"pool/volume on host": the ShouldProcess target of a volume.</summary>
    protected static string Describe(KvmVolume volume) => $"{volume.Pool}/{volume.Name} on {volume.Connection.HostName ?? volume.Connection.Uri}";

    /// <summary>Which VMs use which paths on the connection: read on first need, then reused for the rest of this invocation.</summary>
    protected StorageUsage UsageOf(KvmConnection connection)
    {
        if (!_usage.TryGetValue(connection, out StorageUsage? usage))
        {
            WriteVerbose($"Reading the disks of every VM on {connection.Uri} to find which volumes are in use");
            _usage[connection] = usage = StorageUsage.Read(connection, CancelToken);
        }

        return usage;
    }

    /// <summary>
    /// The pools named (<see cref="NameMatch"/>: an exact name wins, <paramref name="literal"/> names are never patterns; all when
    /// <paramref name="patterns"/> is empty); Exact tells a pool named exactly from one a pattern found. A miss is StoragePoolNotFound.
    /// </summary>
    protected IReadOnlyList<(KvmStoragePool Pool, bool Exact)> ResolvePools(KvmConnection connection, IReadOnlyList<string>? patterns, bool literal = false)
    {
        IReadOnlyList<KvmStoragePool> all = StorageService.ListPools(connection);
        if (patterns is null || patterns.Count == 0)
        {
            return all.Select(p => (p, false)).ToList();
        }

        var exact = new HashSet<string>(patterns, StringComparer.Ordinal);
        return NameMatch.Select(all, patterns, literal, p => p.Name, p => p.Uuid, name => WriteError(ErrorRecords.FromOperation(
                new KvmOperationException("StoragePoolNotFound", $"There is no storage pool '{name}' on {connection.Uri}.", name)
                {
                    Kind = KvmErrorKind.NotFound,
                    Hint = "Run Get-KvmStoragePool to list the pools.",
                }, name)), WriteError)
            .Select(p => (p, exact.Contains(p.Name)))
            .ToList();
    }

    /// <summary>The piped pool as it is now, found again by its UUID on its own host; StoragePoolNotFound when it is gone.</summary>
    protected static KvmStoragePool Reresolve(KvmStoragePool pool)
    {
        pool.Connection.Open();
        return StorageService.ListPools(pool.Connection).FirstOrDefault(p => p.Uuid == pool.Uuid)
            ?? throw new KvmOperationException("StoragePoolNotFound", $"Storage pool '{pool.Name}' ({pool.Uuid}) no longer exists on {pool.Connection.Uri}.", pool.Name)
            {
                Kind = KvmErrorKind.NotFound,
                Hint = "Run Get-KvmStoragePool to list the pools.",
            };
    }

    /// <summary>
    /// The piped volume as it is now: the volume of that name in that pool, which must still have the same key (libvirt's
    /// identity for a volume, its path in folder pools); VolumeNotFound when it is gone or the name now means another volume.
    /// </summary>
    protected KvmVolume Reresolve(KvmVolume volume)
    {
        volume.Connection.Open();
        KvmVolume now = StorageService.GetVolume(volume.Connection, volume.Pool, volume.Name, null);
        if (!string.IsNullOrEmpty(volume.Key) && now.Key != volume.Key)
        {
            throw new KvmOperationException("VolumeNotFound", $"Volume '{volume.Pool}/{volume.Name}' ({volume.Key}) no longer exists on {volume.Connection.Uri}; that name now belongs to {now.Key}.", volume.Name)
            {
                Kind = KvmErrorKind.NotFound,
                Hint = "Run Get-KvmVolume again and pipe the volume you mean.",
            };
        }

        return now;
    }

    /// <summary>A wildcard pattern, or null after writing InvalidWildcard.</summary>
    protected WildcardPattern? TryPattern(string text) => TryWildcard(text, WriteError, out WildcardPattern pattern) ? pattern : null;

    /// <summary>libvirt's storage errors under storage ErrorIds; everything else through the module's one mapping.</summary>
    protected override ErrorRecord FromLibvirt(LibvirtException e, object target)
    {
        (string? id, KvmErrorKind kind) = e.Code switch
        {
            LibvirtErrorCode.NoStoragePool => ("StoragePoolNotFound", KvmErrorKind.NotFound),
            LibvirtErrorCode.NoStorageVol => ("VolumeNotFound", KvmErrorKind.NotFound),
            LibvirtErrorCode.StorageVolExist => ("VolumeExists", KvmErrorKind.AlreadyExists),
            LibvirtErrorCode.OperationInvalid => ("StorageStateInvalid", KvmErrorKind.InvalidOperation),
            _ => (null, KvmErrorKind.Unspecified),
        };
        return id is null
            ? ErrorRecords.FromLibvirt(e, target)
            : ErrorRecords.FromOperation(new KvmOperationException(id, e.Message, target, e) { Kind = kind, Hint = e.Hint }, target);
    }
}
