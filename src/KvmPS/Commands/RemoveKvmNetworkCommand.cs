using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Removes virtual networks: stops them if active and deletes their definition. Refuses a network running VMs use, unless -Force.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmNetwork", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(void))]
public sealed class RemoveKvmNetworkCommand : KvmNetworkCmdlet
{
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessNetwork(KvmNetwork network)
    {
        string action = network.Active ? "Stop and remove the network" : "Remove the network";
        if (Force)
        {
            action += " (even if running VMs use it)";
        }

        if (!ShouldProcess(Describe(network), action))
        {
            return;
        }

        NetworkService.Remove(network, Force, this);
    }
}
