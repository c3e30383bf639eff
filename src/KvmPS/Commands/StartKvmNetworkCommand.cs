using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Starts virtual networks: libvirt creates the bridge, firewall rules and the dnsmasq DHCP/DNS server.</summary>
[Cmdlet(VerbsLifecycle.Start, "KvmNetwork", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(KvmNetwork))]
public sealed class StartKvmNetworkCommand : KvmNetworkCmdlet
{
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessNetwork(KvmNetwork network)
    {
        if (!ShouldProcess(Describe(network), "Start"))
        {
            return;
        }

        NetworkService.Start(network, this);
        if (PassThru)
        {
            WriteObject(NetworkService.Refresh(network));
        }
    }
}
