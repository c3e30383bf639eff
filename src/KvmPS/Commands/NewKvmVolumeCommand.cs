using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>Creates a volume in a storage pool: thin qcow2 (v3) or fully allocated raw, optionally a qcow2 overlay on a backing volume.</summary>
[Cmdlet(VerbsCommon.New, "KvmVolume", SupportsShouldProcess = true)]
[OutputType(typeof(KvmVolume))]
public sealed class NewKvmVolumeCommand : KvmStoragePoolBaseCommand
{
    protected override bool CreatesOnOneHost => true;

    protected override object? CreationTarget => Name;

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Pool { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true)]
    [ByteSizeTransformation]
    [Alias("CapacityBytes")]
    public ulong? SizeBytes { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateSet("qcow2", "raw")]
    public string? Format { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? BackingVolume { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
    {
        string size = SizeBytes is { } s ? ByteSize.Format(s) : "the backing volume's size";
        string what = $"Create {Format ?? "qcow2 (raw outside folder pools)"} volume of {size} in pool '{Pool}'"
            + (BackingVolume is null ? string.Empty : $" on top of '{BackingVolume}'");
        if (!ShouldProcess($"{Name} on {connection.HostName ?? connection.Uri}", what))
        {
            return;
        }

        Guard(Name, () => WriteObject(StorageService.CreateVolume(connection, Pool, Name, SizeBytes, Format?.ToLowerInvariant(), BackingVolume, this)));
    }
}
