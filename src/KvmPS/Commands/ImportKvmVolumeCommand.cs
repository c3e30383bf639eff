using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Uploads a local file into a new volume sized to it (to local or remote hosts), with progress; on failure no volume is left.</summary>
[Cmdlet(VerbsData.Import, "KvmVolume", SupportsShouldProcess = true)]
[OutputType(typeof(KvmVolume))]
public sealed class ImportKvmVolumeCommand : KvmStoragePoolBaseCommand
{
    protected override bool CreatesOnOneHost => true;

    protected override object? CreationTarget => Path;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Pool { get; set; } = string.Empty;

    [Parameter(Position = 1)]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter]
    [ValidateSet("qcow2", "raw")]
    public string? Format { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
    {
        string file = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        string name = Name ?? System.IO.Path.GetFileName(file);
        if (!ShouldProcess($"{Pool}/{name} on {connection.HostName ?? connection.Uri}", $"Upload {file} into a new volume"))
        {
            return;
        }

        Guard(Path, () => WriteObject(StorageService.ImportVolume(connection, file, Pool, name, Format?.ToLowerInvariant(), this, CancelToken)));
    }
}
