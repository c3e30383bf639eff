using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Changes settings of virtual networks: whether they start with the host.</summary>
[Cmdlet(VerbsCommon.Set, "KvmNetwork", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(KvmNetwork))]
public sealed class SetKvmNetworkCommand : KvmNetworkCmdlet
{
    [Parameter(Mandatory = true)]
    public bool Autostart { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessNetwork(KvmNetwork network)
    {
        if (!ShouldProcess(Describe(network), Autostart ? "Start with the host (autostart on)" : "Do not start with the host (autostart off)"))
        {
            return;
        }

        NetworkService.SetAutostart(network, Autostart, this);
        if (PassThru)
        {
            WriteObject(NetworkService.Refresh(network));
        }
    }
}
