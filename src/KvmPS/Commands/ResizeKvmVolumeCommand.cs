using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>Changes the capacity of volumes; shrinking needs -AllowShrink.</summary>
[Cmdlet(VerbsCommon.Resize, "KvmVolume", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(KvmVolume))]
public sealed class ResizeKvmVolumeCommand : KvmVolumeTargetCommand
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVolumeNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = [];

    [Parameter(Mandatory = true, Position = 1)]
    [ByteSizeTransformation]
    public ulong SizeBytes { get; set; }

    [Parameter]
    public SwitchParameter AllowShrink { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override IReadOnlyList<string> TargetNames => Name;

    protected override void ProcessVolume(KvmVolume volume)
    {
        string verb = SizeBytes < volume.CapacityBytes ? "Shrink" : "Grow";
        if (!ShouldProcess(Describe(volume), $"{verb} volume from {ByteSize.Format(volume.CapacityBytes)} to {ByteSize.Format(SizeBytes)}"))
        {
            return;
        }

        KvmVolume resized = StorageService.ResizeVolume(volume, SizeBytes, AllowShrink, this);
        if (Passthru)
        {
            WriteObject(resized);
        }
    }
}
