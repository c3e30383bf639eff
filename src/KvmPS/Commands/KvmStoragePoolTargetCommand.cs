using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Base of the cmdlets that act on existing pools: a Name set (names or wildcards, by value and by property name, on
/// -Connection or the default connections) and an InputObject set (KvmStoragePool objects, each on its own host).
/// </summary>
public abstract class KvmStoragePoolTargetCommand : KvmStoragePoolBaseCommand
{
    protected const string NameSet = "Name";
    protected const string InputObjectSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("PoolName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = [];

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    [ValidateNotNullOrEmpty]
    public KvmStoragePool[] InputObject { get; set; } = [];

    protected override void ProcessRecord()
    {
        if (ParameterSetName != InputObjectSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (KvmStoragePool pool in InputObject)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(pool.Name, () => ProcessPool(Reresolve(pool)));
        }
    }

    protected sealed override void ProcessConnection(KvmConnection connection)
    {
        foreach ((KvmStoragePool pool, bool _) in ResolvePools(connection, Name, FromPipeline(nameof(Name))))
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(pool.Name, () => ProcessPool(pool));
        }
    }

    /// <summary>Does the cmdlet's work on one pool (ShouldProcess inside).</summary>
    protected abstract void ProcessPool(KvmStoragePool pool);

    /// <summary>With -Passthru: the pool as it is now.</summary>
    protected void WritePool(KvmStoragePool pool) => WriteObject(StorageService.RequirePool(pool.Connection, pool.Name));
}
