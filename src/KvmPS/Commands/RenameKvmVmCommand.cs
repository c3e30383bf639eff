using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Renames a shut-off VM.</summary>
[Cmdlet(VerbsCommon.Rename, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
public sealed class RenameKvmVmCommand : KvmVmCmdlet
{
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string NewName { get; set; } = string.Empty;

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessVm(KvmVm vm)
    {
        if (!ShouldProcess(Describe(vm), $"Rename to '{NewName}'"))
        {
            return;
        }

        try
        {
            VmLifecycle.Rename(vm, NewName, this);
        }
        catch (VmSpecException e)
        {
            WriteError(ErrorRecords.FromSpec(e, NewName));
            return;
        }

        if (Passthru)
        {
            WriteObject(VmService.GetByUuid(vm.Connection, vm.Uuid));
        }
    }
}
