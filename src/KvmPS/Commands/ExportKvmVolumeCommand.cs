using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Downloads a volume's content into a local file, with progress; a failed or cancelled download leaves no file.</summary>
[Cmdlet(VerbsData.Export, "KvmVolume", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(FileInfo))]
public sealed class ExportKvmVolumeCommand : KvmVolumeTargetCommand
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(KvmVolumeNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = string.Empty;

    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override IReadOnlyList<string> TargetNames => [Name];

    protected override bool NamesAreWildcards => false;

    protected override void ProcessVolume(KvmVolume volume)
    {
        string path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Destination);
        if (Directory.Exists(path))
        {
            path = System.IO.Path.Combine(path, volume.Name);
        }

        string action = File.Exists(path) ? $"Download volume to {path}, replacing that file" : $"Download volume to {path}";
        if (!ShouldProcess(Describe(volume), action))
        {
            return;
        }

        StorageService.ExportVolume(volume, path, Force, this, CancelToken);
        WriteObject(new FileInfo(path));
    }
}
