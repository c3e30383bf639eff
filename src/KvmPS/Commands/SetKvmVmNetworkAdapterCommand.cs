using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Connects or disconnects the virtual cable of network adapters (link up/down), live and in the configuration.</summary>
[Cmdlet(VerbsCommon.Set, "KvmVmNetworkAdapter", SupportsShouldProcess = true, DefaultParameterSetName = AdapterSet)]
[OutputType(typeof(KvmVmNetworkAdapter))]
public sealed class SetKvmVmNetworkAdapterCommand : KvmVmNetworkAdapterCmdlet
{
    [Parameter(Mandatory = true)]
    public bool Connected { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void Act(KvmVm vm, string mac)
    {
        string normalized = DeviceService.NormalizeMac(mac);
        if (!ShouldProcess(Describe(vm), $"{(Connected ? "Connect" : "Disconnect")} network adapter {normalized} (link {(Connected ? "up" : "down")})"))
        {
            return;
        }

        KvmVmNetworkAdapter nic = DeviceService.SetLinkState(vm, normalized, Connected, this);
        if (Passthru)
        {
            WriteObject(nic);
        }
    }
}
