using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Deletes volumes (and their data); refuses a volume that a VM uses unless -Force.</summary>
[Cmdlet(VerbsCommon.Remove, "KvmVolume", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(void))]
public sealed class RemoveKvmVolumeCommand : KvmVolumeTargetCommand
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVolumeNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = [];

    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override IReadOnlyList<string> TargetNames => Name;

    protected override void ProcessVolume(KvmVolume volume)
    {
        IReadOnlyList<StorageUse> users = UsageOf(volume.Connection).UsersOf(volume.Path);
        string usedBy = string.Join(", ", users.Select(u => u.ToString()).Distinct());
        string action = users.Count == 0 ? $"Delete volume and its data ({volume.Path})"
            : Force ? $"Delete volume and its data ({volume.Path}) although it is used by {usedBy} (-Force)"
            : $"Keep volume ({volume.Path}): used by {usedBy}; it is only deleted with -Force";
        if (!ShouldProcess(Describe(volume), action))
        {
            return;
        }

        StorageService.RemoveVolume(volume, Force, UsageOf(volume.Connection), this);
    }
}
