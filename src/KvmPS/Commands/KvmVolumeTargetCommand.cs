using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Base of the cmdlets that act on existing volumes: -Pool and the derived cmdlet's -Name (the Name set; see <see cref="NameMatch"/>),
/// or KvmVolume objects from the pipeline (the InputObject set, the default), each found again by pool and key on its own host.
/// </summary>
public abstract class KvmVolumeTargetCommand : KvmStoragePoolBaseCommand
{
    protected const string NameSet = "Name";
    protected const string InputObjectSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    [ValidateNotNullOrEmpty]
    public KvmVolume[] InputObject { get; set; } = [];

    /// <summary>The pool of the volumes named by -Name (the Name set).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(KvmStoragePoolNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Pool { get; set; } = string.Empty;

    /// <summary>The volume names (or, when <see cref="NamesAreWildcards"/>, patterns) of the derived cmdlet's -Name.</summary>
    protected abstract IReadOnlyList<string> TargetNames { get; }

    protected virtual bool NamesAreWildcards => true;

    protected override void ProcessRecord()
    {
        if (ParameterSetName != InputObjectSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (KvmVolume volume in InputObject)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(volume.Name, () => ProcessVolume(Reresolve(volume)));
        }
    }

    protected sealed override void ProcessConnection(KvmConnection connection)
    {
        // NameMatch: an exact volume name wins; a pattern only when the cmdlet takes wildcards and the name was typed.
        bool literal = !NamesAreWildcards || FromPipeline("Name");
        var misses = new Dictionary<string, KvmOperationException>(StringComparer.Ordinal);
        List<KvmVolume> volumes = [];
        Guard(Pool, () => volumes = NameMatch.Select(TargetNames, literal,
            name =>
            {
                try
                {
                    return StorageService.GetVolume(connection, Pool, name, null);
                }
                catch (KvmOperationException e) when (e.ErrorId == "VolumeNotFound")
                {
                    misses[name] = e;
                    return null;
                }
            },
            () => StorageService.ListVolumes(connection, Pool, null, CancelToken),
            v => v.Name, v => v.Key,
            name => WriteError(ErrorRecords.FromOperation(misses.TryGetValue(name, out KvmOperationException? e) ? e
                : new KvmOperationException("VolumeNotFound", $"Storage pool '{Pool}' has no volume '{name}'.", name) { Kind = KvmErrorKind.NotFound }, name)),
            WriteError));
        foreach (KvmVolume volume in volumes)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(volume.Name, () => ProcessVolume(volume));
        }
    }

    /// <summary>Does the cmdlet's work on one volume (ShouldProcess inside).</summary>
    protected abstract void ProcessVolume(KvmVolume volume);
}
