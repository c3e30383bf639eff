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

    /// <summary>The pools named exactly or by wildcard (all when <paramref name="patterns"/> is empty); a missing exact name is StoragePoolNotFound.</summary>
    protected IReadOnlyList<(KvmStoragePool Pool, bool Exact)> ResolvePools(KvmConnection connection, IReadOnlyList<string>? patterns)
    {
        IReadOnlyList<KvmStoragePool> all = StorageService.ListPools(connection);
        if (patterns is null || patterns.Count == 0)
        {
            return all.Select(p => (p, false)).ToList();
        }

        var result = new List<(KvmStoragePool, bool)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string name in patterns)
        {
            if (!WildcardPattern.ContainsWildcardCharacters(name))
            {
                KvmStoragePool? pool = all.FirstOrDefault(p => p.Name == name);
                if (pool is null)
                {
                    WriteError(ErrorRecords.FromOperation(new KvmOperationException("StoragePoolNotFound", $"There is no storage pool '{name}' on {connection.Uri}.", name)
                    {
                        Kind = KvmErrorKind.NotFound,
                        Hint = "Run Get-KvmStoragePool to list the pools.",
                    }, name));
                }
                else if (seen.Add(pool.Name))
                {
                    result.Add((pool, true));
                }

                continue;
            }

            if (TryPattern(name) is not { } pattern)
            {
                continue;
            }

            foreach (KvmStoragePool pool in all.Where(p => pattern.IsMatch(p.Name) && seen.Add(p.Name)))
            {
                result.Add((pool, false));
            }
        }

        return result;
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
