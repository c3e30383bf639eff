using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Base of the cmdlets that act on existing volumes: the derived cmdlet's -Pool and -Name (the Name set), or KvmVolume
/// objects from the pipeline (the InputObject set), each acted on on its own host.
/// </summary>
public abstract class KvmVolumeTargetCommand : KvmStoragePoolBaseCommand
{
    protected const string NameSet = "Name";
    protected const string InputObjectSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    [ValidateNotNullOrEmpty]
    public KvmVolume[] InputObject { get; set; } = [];

    /// <summary>The pool named by the derived cmdlet's -Pool.</summary>
    protected abstract string TargetPool { get; }

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
            StorageGuard(volume.Name, () => ProcessVolume(volume));
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
                StorageGuard(name, () => ProcessVolume(StorageService.GetVolume(connection, TargetPool, name, null)));
                continue;
            }

            if (TryPattern(name) is not { } pattern)
            {
                continue;
            }

            StorageGuard(TargetPool, () => all ??= StorageService.ListVolumes(connection, TargetPool, null, CancelToken));
            foreach (KvmVolume volume in (all ?? []).Where(v => pattern.IsMatch(v.Name)))
            {
                CancelToken.ThrowIfCancellationRequested();
                StorageGuard(volume.Name, () => ProcessVolume(volume));
            }
        }
    }

    /// <summary>Does the cmdlet's work on one volume (ShouldProcess inside).</summary>
    protected abstract void ProcessVolume(KvmVolume volume);
}
