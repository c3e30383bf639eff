using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using KvmPS.Core.Services;

namespace KvmPS.Completion;

/// <summary>Completes VM names from connections already open in this session. Never opens a connection.</summary>
public sealed class KvmVmNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IEnumerable<string> names = CompletionSupport.CachedConnections(fakeBoundParameters).SelectMany(c => c.CachedVmNames);
        return CompletionSupport.Results(names, wordToComplete);
    }
}

/// <summary>Completes snapshot names of the VM named in -VMName, from snapshot lists already read (Get-KvmSnapshot).</summary>
public sealed class KvmSnapshotNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        object? raw = fakeBoundParameters.Contains("VMName") ? fakeBoundParameters["VMName"] : null;
        raw = raw is PSObject p ? p.BaseObject : raw;
        string? vm = raw switch
        {
            string s => s,
            IEnumerable e => e.Cast<object>().FirstOrDefault()?.ToString(),
            _ => raw?.ToString(),
        };
        IEnumerable<string> names = CompletionSupport.CachedConnections(fakeBoundParameters)
            .SelectMany(c => vm is null ? c.CachedSnapshotNames.Values.SelectMany(x => x) : c.CachedSnapshotNames.TryGetValue(vm, out var list) ? list : []);
        return CompletionSupport.Results(names, wordToComplete);
    }
}

/// <summary>Completes -Connection with the URIs of known connections.</summary>
public sealed class KvmConnectionCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => CompletionSupport.Results(ModuleState.Defaults.Concat(ModuleState.All.Where(c => c.IsOpen)).Select(c => c.Uri), wordToComplete);
}

internal static class CompletionSupport
{
    /// <summary>The connections named in the command line if known, else the defaults; only ones already open.</summary>
    public static IEnumerable<KvmConnection> CachedConnections(IDictionary fakeBoundParameters)
    {
        var result = new List<KvmConnection>();
        if (fakeBoundParameters.Contains("Connection"))
        {
            object? value = fakeBoundParameters["Connection"];
            IEnumerable items = value is IEnumerable e and not string ? e : new[] { value };
            foreach (object? item in items)
            {
                object? v = item is PSObject p ? p.BaseObject : item;
                KvmConnection? c = v as KvmConnection ?? (v is string s ? ModuleState.TryGetKnown(s) : null);
                if (c is not null)
                {
                    result.Add(c);
                }
            }
        }
        else
        {
            result.AddRange(ModuleState.Defaults);
            if (result.Count == 0)
            {
                result.AddRange(ModuleState.All);
            }
        }

        return result.Where(c => c.IsOpen);
    }

    public static IEnumerable<CompletionResult> Results(IEnumerable<string> candidates, string wordToComplete)
    {
        string word = (wordToComplete ?? string.Empty).Trim('\'', '"');
        var pattern = WildcardPattern.Get(WildcardPattern.Escape(word) + "*", WildcardOptions.IgnoreCase);
        foreach (string name in candidates.Distinct(StringComparer.Ordinal).Order(StringComparer.OrdinalIgnoreCase))
        {
            if (pattern.IsMatch(name))
            {
                string text = name.IndexOfAny([' ', '\'', '"', '$', '`', '(', ')', '{', '}', ',', ';', '&', '@', '#', '[', ']']) >= 0
                    ? "'" + name.Replace("'", "''") + "'"
                    : name;
                yield return new CompletionResult(text, name, CompletionResultType.ParameterValue, name);
            }
        }
    }
}
