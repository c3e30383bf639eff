using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Attaches a network adapter to VMs (Hyper-V: Add-VMNetworkAdapter): on a libvirt network or a host bridge. Hot-plugs into running VMs.</summary>
[Cmdlet(VerbsCommon.Add, "KvmVmNetworkAdapter", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVmNetworkAdapter))]
public sealed class AddKvmVmNetworkAdapterCommand : KvmVmCmdlet
{
    [Parameter]
    [Alias("SwitchName")]
    [ArgumentCompleter(typeof(KvmNetworkNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Network { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Bridge { get; set; }

    [Parameter]
    [Alias("StaticMacAddress")]
    [ValidateNotNullOrEmpty]
    public string? MacAddress { get; set; }

    [Parameter]
    [ValidateSet("virtio", "e1000", "rtl8139")]
    public string Model { get; set; } = "virtio";

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if ((Network is null) == (Bridge is null))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give exactly one of -Network and -Bridge."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, null));
        }

        if (MacAddress is not null)
        {
            try
            {
                MacAddress = DeviceService.NormalizeMac(MacAddress);
            }
            catch (KvmOperationException e)
            {
                ThrowTerminatingError(ErrorRecords.FromOperation(e, MacAddress));
            }
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        string on = Network is not null ? $"network '{Network}'" : $"bridge '{Bridge}'";
        if (!ShouldProcess(Describe(vm), $"Add a {Model} network adapter{(MacAddress is null ? string.Empty : $" ({MacAddress})")} on {on}"))
        {
            return;
        }

        KvmVmNetworkAdapter nic = DeviceService.AddNetworkAdapter(vm, new NetworkAdapterAddRequest
        {
            Network = Network,
            Bridge = Bridge,
            MacAddress = MacAddress,
            Model = Model,
        }, this);
        if (Passthru)
        {
            WriteObject(nic);
        }
    }
}
