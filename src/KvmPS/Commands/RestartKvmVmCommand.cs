using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Reboots VMs through the guest, or resets them (-Force).</summary>
[Cmdlet(VerbsLifecycle.Restart, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVm))]
public sealed class RestartKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessVm(KvmVm vm)
        => Apply(vm, Force ? "Reset (hard)" : "Restart (guest reboot)", (v, log) => VmLifecycle.Restart(v, Force, log), Passthru);
}
