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
        return CompletionSupport.Results(names, wordToComplete, CompletionSupport.TakesWildcards(commandName, parameterName));
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
            .SelectMany(c => vm is null ? c.CachedSnapshotNames.Values.SelectMany(x => x) : c.CachedSnapshotNames.TryGetValue(vm, out var list) || c.CachedSnapshotNames.TryGetValue(WildcardPattern.Unescape(vm), out list) ? list : []);
        return CompletionSupport.Results(names, wordToComplete, CompletionSupport.TakesWildcards(commandName, parameterName));
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

    /// <summary>
    /// The candidates that start with what was typed, as text ready to insert: wildcard characters escaped with a backtick
    /// when <paramref name="wildcard"/> (the parameter takes patterns, so <c>web[1]</c> must not become a pattern matching
    /// <c>web1</c>), and single-quoted (quotes doubled) when the name needs quoting at all.
    /// </summary>
    public static IEnumerable<CompletionResult> Results(IEnumerable<string> candidates, string wordToComplete, bool wildcard = false)
    {
        string word = (wordToComplete ?? string.Empty).Trim('\'', '"').Replace("''", "'");
        if (wildcard)
        {
            word = WildcardPattern.Unescape(word);
        }

        foreach (string name in candidates.Distinct(StringComparer.Ordinal).Order(StringComparer.OrdinalIgnoreCase))
        {
            if (name.StartsWith(word, StringComparison.OrdinalIgnoreCase))
            {
                yield return new CompletionResult(Quote(wildcard ? WildcardPattern.Escape(name) : name), name, CompletionResultType.ParameterValue, name);
            }
        }
    }

    /// <summary>
    /// The parameter's value as it should be inserted: bare when it is only letters, digits and <c>_ . - : / +</c> (not
    /// starting with '-'), else in single quotes with every quote doubled (a backtick is literal inside them).
    /// </summary>
    public static string Quote(string text)
        => text.Length > 0 && text[0] != '-' && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' or ':' or '/' or '+')
            ? text
            : "'" + text.Replace("'", "''") + "'";

    /// <summary>True when the command's parameter (or alias) is marked [SupportsWildcards]: its completions are escaped.</summary>
    public static bool TakesWildcards(string commandName, string parameterName)
    {
        string command = commandName[(commandName.LastIndexOf('\\') + 1)..];
        return s_wildcardParameters.Value.Contains(command + "/" + parameterName);
    }

    // "Get-KvmVm/Name", "Get-KvmVm/VMName" ... for every [SupportsWildcards] parameter of this module's cmdlets.
    private static readonly Lazy<HashSet<string>> s_wildcardParameters = new(() =>
    {
        var result = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (Type type in typeof(CompletionSupport).Assembly.GetTypes())
        {
            if (type.GetCustomAttributes(typeof(CmdletAttribute), false).FirstOrDefault() is not CmdletAttribute cmdlet)
            {
                continue;
            }

            foreach (System.Reflection.PropertyInfo property in type.GetProperties())
            {
                if (!property.IsDefined(typeof(SupportsWildcardsAttribute), true))
                {
                    continue;
                }

                string command = cmdlet.VerbName + "-" + cmdlet.NounName;
                result.Add(command + "/" + property.Name);
                foreach (AliasAttribute alias in property.GetCustomAttributes(typeof(AliasAttribute), true).Cast<AliasAttribute>())
                {
                    foreach (string name in alias.AliasNames)
                    {
                        result.Add(command + "/" + name);
                    }
                }
            }
        }

        return result;
    });
}
