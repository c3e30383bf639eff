using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Detaches network adapters from VMs (Hyper-V: Remove-VMNetworkAdapter): from the running VM and its configuration.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmVmNetworkAdapter", SupportsShouldProcess = true, DefaultParameterSetName = AdapterSet)]
[OutputType(typeof(void))]
public sealed class RemoveKvmVmNetworkAdapterCommand : KvmVmCmdlet
{
    private const string AdapterSet = "InputObject";

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = NameSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMSet)]
    [ArgumentCompleter(typeof(KvmVmMacAddressCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] MacAddress { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = AdapterSet)]
    [ValidateNotNullOrEmpty]
    public KvmVmNetworkAdapter[] InputObject { get; set; } = [];

    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 30;

    protected override void ProcessRecord()
    {
        if (ParameterSetName != AdapterSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (KvmVmNetworkAdapter nic in InputObject)
        {
            CancelToken.ThrowIfCancellationRequested();
            string mac = nic.MacAddress ?? string.Empty;
            Guard(mac, () => Remove(DeviceCmdletSupport.Owner(nic.Connection, nic.VMUuid, nic.VMName, nic), mac));
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        foreach (string mac in MacAddress)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(mac, () => Remove(vm, mac));
        }
    }

    private void Remove(KvmVm vm, string mac)
    {
        string normalized = DeviceService.NormalizeMac(mac);
        if (!ShouldProcess(Describe(vm), $"Remove network adapter {normalized}"))
        {
            return;
        }

        DeviceService.RemoveNetworkAdapter(vm, normalized, TimeSpan.FromSeconds(TimeoutSec), this, CancelToken);
    }
}
