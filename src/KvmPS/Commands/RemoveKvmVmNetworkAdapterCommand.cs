using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Detaches network adapters from VMs (Hyper-V: Remove-VMNetworkAdapter): from the running VM and its configuration.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmVmNetworkAdapter", SupportsShouldProcess = true, DefaultParameterSetName = AdapterSet)]
[OutputType(typeof(void))]
public sealed class RemoveKvmVmNetworkAdapterCommand : KvmVmNetworkAdapterCmdlet
{
    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 30;

    protected override void Act(KvmVm vm, string mac)
    {
        string normalized = DeviceService.NormalizeMac(mac);
        if (!ShouldProcess(Describe(vm), $"Remove network adapter {normalized}"))
        {
            return;
        }

        DeviceService.RemoveNetworkAdapter(vm, normalized, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken);
    }
}
