using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the DHCP leases the virtual networks' dnsmasq has handed out.</summary>
[Cmdlet(VerbsCommon.Get, "KvmNetworkLease", DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmNetworkLease))]
public sealed class GetKvmNetworkLeaseCommand : KvmCmdlet
{
    private const string NameSet = "Name";
    private const string InputObjectSet = "InputObject";

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("NetworkName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmNetworkNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Network { get; set; }

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    [ValidateNotNullOrEmpty]
    public KvmNetwork[] InputObject { get; set; } = [];

    [Parameter]
    [ValidatePattern("^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")]
    public string[]? MacAddress { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName != InputObjectSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (KvmNetwork n in InputObject)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(n.Name, () => Write(KvmNetworkCmdlet.Reresolve(n)));
        }
    }

    protected override void ProcessConnection(KvmConnection connection)
    {
        foreach (KvmNetwork n in KvmNetworkCmdlet.Resolve(connection, Network, FromPipeline(nameof(Network)), WriteError))
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(n.Name, () => Write(n));
        }
    }

    private void Write(KvmNetwork network)
    {
        if (!network.Active)
        {
            WriteVerbose($"Network '{network.Name}' is not active: it has no leases");
            return;
        }

        WriteVerbose($"Reading the DHCP leases of network '{network.Name}'");
        WriteObject(NetworkService.GetLeases(network, MacAddress), enumerateCollection: true);
    }
}
