using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Connects or disconnects the virtual cable of network adapters (link up/down), live and in the configuration.</summary>
[Cmdlet(VerbsCommon.Set, "KvmVmNetworkAdapter", SupportsShouldProcess = true, DefaultParameterSetName = AdapterSet)]
[OutputType(typeof(KvmVmNetworkAdapter))]
public sealed class SetKvmVmNetworkAdapterCommand : KvmVmCmdlet
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

    [Parameter(Mandatory = true)]
    public bool Connected { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

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
            Guard(mac, () => Set(DeviceCmdletSupport.Owner(nic.Connection, nic.VMUuid, nic.VMName, nic), mac));
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        foreach (string mac in MacAddress)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(mac, () => Set(vm, mac));
        }
    }

    private void Set(KvmVm vm, string mac)
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
