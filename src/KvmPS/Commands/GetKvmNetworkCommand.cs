using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the virtual networks of hosts: mode, bridge, subnets, DHCP ranges and state, in one libvirt call per host.</summary>
[Cmdlet(VerbsCommon.Get, "KvmNetwork")]
[OutputType(typeof(KvmNetwork))]
public sealed class GetKvmNetworkCommand : KvmCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("NetworkName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmNetworkNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
        => WriteObject(KvmNetworkCmdlet.Resolve(connection, Name, FromPipeline(nameof(Name)), WriteError), enumerateCollection: true);
}
