using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Jobs;

namespace KvmPS.Commands;

/// <summary>Shuts VMs down gracefully (ACPI), powers them off (-TurnOff) or saves them (-Save).</summary>
[Cmdlet(VerbsLifecycle.Stop, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
[OutputType(typeof(KvmPSJob))]
public sealed class StopKvmVmCommand : KvmVmBatchCmdlet
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
        base.BeginProcessing();
        if (TurnOff && Save)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-TurnOff and -Save cannot be used together."),
                "ConflictingParameters", ErrorCategory.InvalidArgument, null));
        }
    }

    protected override Action<VmWorkContext>? Plan(KvmVm vm)
    {
        string action = TurnOff ? "Turn off (immediate power-off)" : Save ? "Save (managed save)" : "Shut down (ACPI)";
        bool turnOff = TurnOff, save = Save, force = Force;
        var timeout = TimeSpan.FromSeconds(TimeoutSec);
        return Apply(vm, action, (v, context) =>
        {
            if (turnOff)
            {
                VmLifecycle.TurnOff(v, context);
            }
            else if (save)
            {
                VmLifecycle.Save(v, context);
            }
            else
            {
                VmLifecycle.Shutdown(v, timeout, force, context, context.Cancel);
            }
        }, Passthru);
    }
}
