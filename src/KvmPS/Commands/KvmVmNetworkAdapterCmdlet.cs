using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;

namespace KvmPS.Commands;

/// <summary>
/// Base of the cmdlets that act on one VM network adapter: by VM (-Name/-VM) and -MacAddress, or on
/// adapter objects piped from Get-KvmVmNetworkAdapter (each finds its own VM).
/// </summary>
public abstract class KvmVmNetworkAdapterCmdlet : KvmVmCmdlet
{
    protected const string AdapterSet = "InputObject";

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = NameSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = VMSet)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = LiteralNameSet)]
    [ArgumentCompleter(typeof(KvmVmMacAddressCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] MacAddress { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = AdapterSet)]
    [ValidateNotNullOrEmpty]
    public KvmVmNetworkAdapter[] InputObject { get; set; } = [];

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
            Guard(mac, () => Act(DeviceCmdletSupport.Owner(nic.Connection, nic.VMUuid, nic.VMName, nic), mac));
        }
    }

    protected sealed override void ProcessVm(KvmVm vm)
    {
        foreach (string mac in MacAddress)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(mac, () => Act(vm, mac));
        }
    }

    /// <summary>The cmdlet's work on the adapter with <paramref name="mac"/> of <paramref name="vm"/>.</summary>
    protected abstract void Act(KvmVm vm, string mac);
}
