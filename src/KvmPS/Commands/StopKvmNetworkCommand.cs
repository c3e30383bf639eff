using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Stops virtual networks (a persistent network keeps its definition; a transient one is gone).</summary>
[Cmdlet(VerbsLifecycle.Stop, "KvmNetwork", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(KvmNetwork))]
public sealed class StopKvmNetworkCommand : KvmNetworkCmdlet
{
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessNetwork(KvmNetwork network)
    {
        IReadOnlyList<string> running = NetworkService.VmsUsing(network).Running;
        string action = running.Count == 0 ? "Stop" : $"Stop (running VMs lose connectivity: {string.Join(", ", running)})";
        if (!ShouldProcess(Describe(network), action))
        {
            return;
        }

        if (running.Count > 0)
        {
            WriteWarning($"Network '{network.Name}' is used by running VMs, which lose connectivity: {string.Join(", ", running)}.");
        }

        NetworkService.Stop(network, this);
        if (PassThru && network.Persistent)
        {
            WriteObject(NetworkService.Refresh(network));
        }
    }
}
