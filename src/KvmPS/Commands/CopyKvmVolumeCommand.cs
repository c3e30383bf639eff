using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Clones a volume inside its host (same or another pool), with progress; Ctrl+C deletes the partial copy.</summary>
[Cmdlet(VerbsCommon.Copy, "KvmVolume", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(KvmVolume))]
public sealed class CopyKvmVolumeCommand : KvmVolumeTargetCommand
{
    protected override bool CreatesOnOneHost => true;

    protected override object? CreationTarget => Name;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(KvmVolumeNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = string.Empty;

    [Parameter]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? DestinationPool { get; set; }

    protected override IReadOnlyList<string> TargetNames => [Name];

    protected override bool NamesAreWildcards => false;

    protected override void ProcessVolume(KvmVolume volume)
    {
        if (!ShouldProcess(Describe(volume), $"Copy volume to {DestinationPool ?? volume.Pool}/{Destination}"))
        {
            return;
        }

        WriteObject(StorageService.CopyVolume(volume, DestinationPool, Destination, this, CancelToken));
    }
}
