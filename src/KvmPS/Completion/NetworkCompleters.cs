using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using KvmPS.Core.Services;

namespace KvmPS.Completion;

/// <summary>Completes virtual network names seen by an earlier listing (Get-KvmNetwork) on open connections. Never opens a connection.</summary>
public sealed class KvmNetworkNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IEnumerable<string> names = CompletionSupport.CachedConnections(fakeBoundParameters).SelectMany(c => c.CachedNames(NetworkService.CacheKind));
        return CompletionSupport.Results(names, wordToComplete, CompletionSupport.TakesWildcards(commandName, parameterName));
    }
}
