using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Backend;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the volumes of storage pools, with format, backing store and the VMs that use each.</summary>
[Cmdlet(VerbsCommon.Get, "KvmVolume", DefaultParameterSetName = PoolSet)]
[OutputType(typeof(KvmVolume))]
public sealed class GetKvmVolumeCommand : KvmStoragePoolBaseCommand
{
    private const string PoolSet = "Pool";
    private const string InputObjectSet = "InputObject";

    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = PoolSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Pool { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    [ValidateNotNullOrEmpty]
    public KvmStoragePool[] InputObject { get; set; } = [];

    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVolumeNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName != InputObjectSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (IGrouping<KvmConnection, KvmStoragePool> group in InputObject.GroupBy<KvmStoragePool, KvmConnection>(p => p.Connection, ReferenceEqualityComparer.Instance))
        {
            CancelToken.ThrowIfCancellationRequested();
            WriteVolumes(group.Key, group.Select(p => (p, true)).ToList());
        }
    }

    protected override void ProcessConnection(KvmConnection connection)
        => WriteVolumes(connection, ResolvePools(connection, Pool, FromPipeline(nameof(Pool))));

    private void WriteVolumes(KvmConnection connection, IReadOnlyList<(KvmStoragePool Pool, bool Exact)> pools)
    {
        var patterns = new List<(string Text, WildcardPattern? Pattern)>();
        foreach (string n in Name ?? [])
        {
            if (!WildcardPattern.ContainsWildcardCharacters(n))
            {
                patterns.Add((WildcardPattern.Unescape(n), null));   // v`[1`].raw, as completion inserts it, is v[1].raw
            }
            else if (TryPattern(n) is { } p)
            {
                patterns.Add((n, p));
            }
        }

        var found = new HashSet<string>(StringComparer.Ordinal);
        foreach ((KvmStoragePool pool, bool exact) in pools)
        {
            CancelToken.ThrowIfCancellationRequested();
            if (!pool.IsRunning)
            {
                if (exact)
                {
                    WriteError(ErrorRecords.FromOperation(new KvmOperationException("StoragePoolInactive",
                        $"Storage pool '{pool.Name}' is {pool.State}: its volumes can only be listed while it runs.", pool.Name)
                    {
                        Kind = KvmErrorKind.Unavailable,
                        Hint = $"Start it with Start-KvmStoragePool {pool.Name}.",
                    }, pool.Name));
                }
                else
                {
                    WriteVerbose($"Skipping storage pool '{pool.Name}': it is {pool.State}");
                }

                continue;
            }

            Guard(pool.Name, () =>
            {
                IReadOnlyList<StorageVolumeInfo> infos = StorageService.ListVolumeInfos(connection, pool.Name);
                // NameMatch's rule per pool: a volume named exactly so wins over the pattern.
                var names = infos.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
                List<StorageVolumeInfo> selected = patterns.Count == 0
                    ? infos.ToList()
                    : infos.Where(v => patterns.Any(p => p.Text == v.Name
                        || (p.Pattern is { } w && !names.Contains(p.Text) && w.IsMatch(v.Name)))).ToList();
                if (selected.Count == 0)
                {
                    return;
                }

                StorageUsage usage = UsageOf(connection);
                foreach (StorageVolumeInfo info in selected)
                {
                    CancelToken.ThrowIfCancellationRequested();
                    found.Add(info.Name);
                    if (StorageService.ReadVolume(connection, info, usage) is { } volume)
                    {
                        WriteObject(volume);
                    }
                }
            });
        }

        foreach ((string text, WildcardPattern? pattern) in patterns)
        {
            if (pattern is null && !found.Contains(text) && pools.Count > 0)
            {
                string where = pools.Count == 1 ? $"storage pool '{pools[0].Pool.Name}'" : $"the running storage pools on {connection.Uri}";
                WriteError(ErrorRecords.FromOperation(new KvmOperationException("VolumeNotFound", $"There is no volume '{text}' in {where}.", text)
                {
                    Kind = KvmErrorKind.NotFound,
                    Hint = "Run Get-KvmVolume to list the volumes (Update-KvmStoragePool rereads files added outside libvirt).",
                }, text));
            }
        }
    }
}
