using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Defines a storage pool (dir, fs, netfs, logical, iscsi); with -Start builds and starts it, rolling back on failure.</summary>
[Cmdlet(VerbsCommon.New, "KvmStoragePool", SupportsShouldProcess = true)]
[OutputType(typeof(KvmStoragePool))]
public sealed class NewKvmStoragePoolCommand : KvmStoragePoolBaseCommand
{
    protected override bool CreatesOnOneHost => true;

    protected override object? CreationTarget => Name;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("PoolName")]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    public KvmStoragePoolType Type { get; set; }

    [Parameter(Position = 2, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[]? SourceDevice { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? SourceHost { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? SourcePath { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? SourceName { get; set; }

    [Parameter]
    public SwitchParameter Autostart { get; set; }

    [Parameter]
    public SwitchParameter Start { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
    {
        string? path = Path;
        if (path is not null && !path.StartsWith('/') && !connection.IsRemote)
        {
            // a relative path on this machine: relative to the current location, as everywhere in PowerShell
            path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
        }

        var definition = new KvmStoragePoolDefinition
        {
            Name = Name,
            Type = Type,
            Path = path,
            SourceDevices = SourceDevice ?? [],
            SourceHost = SourceHost,
            SourcePath = SourcePath,
            SourceName = SourceName,
        };
        string what = $"Create {Type.ToString().ToLowerInvariant()} storage pool{(path is null ? string.Empty : $" at {path}")}"
            + (Start ? ", build and start it" : string.Empty) + (Autostart ? ", start it with the host" : string.Empty);
        if (!ShouldProcess($"{Name} on {connection.HostName ?? connection.Uri}", what))
        {
            return;
        }

        Guard(Name, () => WriteObject(StorageService.CreatePool(connection, definition, Autostart, Start, this)));
    }
}
