using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets storage pools: state, type, target path, source, sizes, volume count (one bulk listing per host).</summary>
[Cmdlet(VerbsCommon.Get, "KvmStoragePool")]
[OutputType(typeof(KvmStoragePool))]
public sealed class GetKvmStoragePoolCommand : KvmStoragePoolBaseCommand
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("PoolName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
        => WriteObject(ResolvePools(connection, Name, FromPipeline(nameof(Name))).Select(p => p.Pool), enumerateCollection: true);
}
