using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the network adapters of VMs (Hyper-V: Get-VMNetworkAdapter), with link state and, for running VMs, IP addresses.</summary>
[Cmdlet(VerbsCommon.Get, "KvmVmNetworkAdapter", DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVmNetworkAdapter))]
public sealed class GetKvmVmNetworkAdapterCommand : KvmVmCmdlet
{
    [Parameter]
    public SwitchParameter NoAddress { get; set; }

    protected override void ProcessVm(KvmVm vm)
        => WriteObject(DeviceService.GetNetworkAdapters(vm, addresses: !NoAddress), enumerateCollection: true);
}
