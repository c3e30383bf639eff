using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using KvmPS.Core.Services;

namespace KvmPS.Completion;

/// <summary>Completes storage pool names from the last pool listing on open connections. Never opens a connection.</summary>
public sealed class KvmStoragePoolNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IEnumerable<string> names = CompletionSupport.CachedConnections(fakeBoundParameters).SelectMany(c => c.CachedNames(StorageService.PoolKind));
        return CompletionSupport.Results(names, wordToComplete, CompletionSupport.TakesWildcards(commandName, parameterName));
    }
}

/// <summary>
/// Completes volume names of the pool given in -Pool (or of every known pool) from volume listings already read
/// (Get-KvmVolume, and volumes made or removed since). Never opens a connection.
/// </summary>
public sealed class KvmVolumeNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        object? raw = fakeBoundParameters.Contains("Pool") ? fakeBoundParameters["Pool"] : null;
        raw = raw is PSObject p ? p.BaseObject : raw;
        string[] given = raw switch
        {
            null => [],
            string s => [s],
            IEnumerable e => e.Cast<object?>().Select(o => (o is PSObject po ? po.BaseObject : o)?.ToString()).OfType<string>().ToArray(),
            _ => [raw.ToString() ?? string.Empty],
        };
        IEnumerable<string> names = CompletionSupport.CachedConnections(fakeBoundParameters)
            .SelectMany(c => PoolsToComplete(c, given).SelectMany(pool => c.CachedNames(StorageService.VolumeKind(pool))));
        return CompletionSupport.Results(names, wordToComplete, CompletionSupport.TakesWildcards(commandName, parameterName));
    }

    /// <summary>The pools given in -Pool (patterns matched against the known pool names), or every known pool.</summary>
    private static IEnumerable<string> PoolsToComplete(KvmConnection connection, string[] given)
    {
        IReadOnlyCollection<string> known = connection.CachedNames(StorageService.PoolKind);
        if (given.Length == 0)
        {
            return known;
        }

        var result = new List<string>();
        foreach (string pool in given)
        {
            if (!WildcardPattern.ContainsWildcardCharacters(pool))
            {
                result.Add(pool);
                continue;
            }

            try
            {
                var pattern = WildcardPattern.Get(pool, WildcardOptions.IgnoreCase);
                result.AddRange(known.Where(pattern.IsMatch));
            }
            catch (WildcardPatternException)
            {
                // not a valid pattern: nothing to offer
            }
        }

        return result;
    }
}
