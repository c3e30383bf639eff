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
        if (!ShouldProcess(Describe(volume), $"Delete volume and its data ({volume.Path})"))
        {
            return;
        }

        StorageService.RemoveVolume(volume, Force, UsageOf(volume.Connection), this);
    }
}
