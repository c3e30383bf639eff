using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Completion;

/// <summary>Completes the disk targets (vda, sdb ...) of the VM named on the command line, from the last Get-KvmVmDisk. Never opens a connection.</summary>
public sealed class KvmVmDiskTargetCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => DeviceCompletion.FromVmCache(fakeBoundParameters, DeviceService.DiskCacheKind, wordToComplete, CompletionSupport.TakesWildcards(commandName, parameterName));
}

/// <summary>Completes the MAC addresses of the network adapters of the VM named on the command line, from the last Get-KvmVmNetworkAdapter.</summary>
public sealed class KvmVmMacAddressCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => DeviceCompletion.FromVmCache(fakeBoundParameters, DeviceService.AdapterCacheKind, wordToComplete, CompletionSupport.TakesWildcards(commandName, parameterName));
}

/// <summary>Completes -Volume of Add-KvmVmDisk as pool/volume, from volume lists read earlier (Get-KvmVolume). Never opens a connection.</summary>
public sealed class KvmVmDiskVolumeCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => CompletionSupport.Results(
            CompletionSupport.CachedConnections(fakeBoundParameters).SelectMany(c =>
                c.CachedNames(StorageService.PoolKind).SelectMany(pool => c.CachedNames(StorageService.VolumeKind(pool)).Select(v => $"{pool}/{v}"))),
            wordToComplete, CompletionSupport.TakesWildcards(commandName, parameterName));
}

internal static class DeviceCompletion
{
    /// <summary>Names cached under a per-VM kind for the VM given by -VMName/-Name or -VM (every cached VM when none is given).</summary>
    public static IEnumerable<CompletionResult> FromVmCache(IDictionary fakeBoundParameters, Func<string, string> kind, string wordToComplete, bool wildcard)
    {
        List<KvmConnection> connections = CompletionSupport.CachedConnections(fakeBoundParameters).ToList();
        var vms = new List<(KvmConnection? Connection, string Name)>();
        foreach (string key in new[] { "Name", "VMName", "VM" })
        {
            if (!fakeBoundParameters.Contains(key))
            {
                continue;
            }

            object? raw = fakeBoundParameters[key];
            raw = raw is PSObject p ? p.BaseObject : raw;
            IEnumerable items = raw is IEnumerable e and not string ? e : new[] { raw };
            foreach (object? item in items)
            {
                object? v = item is PSObject ip ? ip.BaseObject : item;
                if (v is KvmVm vm)
                {
                    vms.Add((vm.Connection, vm.Name));
                }
                else if (v?.ToString() is { Length: > 0 } s)
                {
                    vms.Add((null, s));
                    if (WildcardPattern.Unescape(s) is var literal && literal != s)
                    {
                        vms.Add((null, literal));   // a completed name, escaped for a wildcard parameter
                    }
                }
            }
        }

        if (vms.Count == 0)
        {
            vms.AddRange(connections.SelectMany(c => c.CachedVmNames.Select(n => ((KvmConnection?)c, n))));
        }

        IEnumerable<string> names = vms.SelectMany(v => (v.Connection is null ? connections : [v.Connection]).SelectMany(c => c.CachedNames(kind(v.Name))));
        return CompletionSupport.Results(names, wordToComplete, wildcard);
    }
}
