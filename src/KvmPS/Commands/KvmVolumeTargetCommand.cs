using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Base of the cmdlets that act on existing volumes: -Pool and the derived cmdlet's -Name (the Name set), or KvmVolume
/// objects from the pipeline (the InputObject set), each acted on on its own host.
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
            Guard(volume.Name, () => ProcessVolume(volume));
        }
    }

    protected sealed override void ProcessConnection(KvmConnection connection)
    {
        IReadOnlyList<KvmVolume>? all = null;
        foreach (string name in TargetNames)
        {
            CancelToken.ThrowIfCancellationRequested();
            if (!NamesAreWildcards || !WildcardPattern.ContainsWildcardCharacters(name))
            {
                Guard(name, () => ProcessVolume(StorageService.GetVolume(connection, Pool, name, null)));
                continue;
            }

            if (TryPattern(name) is not { } pattern)
            {
                continue;
            }

            Guard(Pool, () => all ??= StorageService.ListVolumes(connection, Pool, null, CancelToken));
            foreach (KvmVolume volume in (all ?? []).Where(v => pattern.IsMatch(v.Name)))
            {
                CancelToken.ThrowIfCancellationRequested();
                Guard(volume.Name, () => ProcessVolume(volume));
            }
        }
    }

    /// <summary>Does the cmdlet's work on one volume (ShouldProcess inside).</summary>
    protected abstract void ProcessVolume(KvmVolume volume);
}
