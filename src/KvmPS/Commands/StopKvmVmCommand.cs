using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Shuts VMs down gracefully (ACPI), powers them off (-TurnOff) or saves them (-Save).</summary>
[Cmdlet(VerbsLifecycle.Stop, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class StopKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    public SwitchParameter TurnOff { get; set; }

    [Parameter]
    public SwitchParameter Save { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 120;

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void BeginProcessing()
    {
        if (TurnOff && Save)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-TurnOff and -Save cannot be used together."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, null));
        }
    }

    protected override void ProcessVm(KvmVm vm)
    {
        string action = TurnOff ? "Turn off (immediate power-off)" : Save ? "Save (managed save)" : "Shut down (ACPI)";
        if (!ShouldProcess(Describe(vm), action))
        {
            return;
        }

        if (TurnOff)
        {
            VmLifecycle.TurnOff(vm, this);
        }
        else if (Save)
        {
            VmLifecycle.Save(vm, this);
        }
        else
        {
            VmLifecycle.Shutdown(vm, TimeSpan.FromSeconds(TimeoutSec), Force, this, CancelToken);
        }

        if (Passthru)
        {
            WriteVm(vm);
        }
    }
}
