using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Base of the cmdlets that act on existing virtual networks: a Name set (names or wildcards, by value and by
/// property name, on -Connection or the default connections) and an InputObject set (KvmNetwork objects, each
/// acting on its own host). Resolves the targets, then calls <see cref="ProcessNetwork"/> once per network.
/// </summary>
public abstract class KvmNetworkCmdlet : KvmCmdlet
{
    protected const string NameSet = "Name";
    protected const string InputObjectSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("NetworkName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmNetworkNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = [];

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    [ValidateNotNullOrEmpty]
    public KvmNetwork[] InputObject { get; set; } = [];

    protected override void ProcessRecord()
    {
        if (ParameterSetName != InputObjectSet)
        {
            base.ProcessRecord();
            return;
        }

        foreach (KvmNetwork n in InputObject)
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(n.Name, () => ProcessNetwork(n));
        }
    }

    protected sealed override void ProcessConnection(KvmConnection connection)
    {
        foreach (KvmNetwork n in ResolveNetworks(connection, Name))
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(n.Name, () => ProcessNetwork(n));
        }
    }

    /// <summary>Does the cmdlet's work on one network (ShouldProcess inside).</summary>
    protected abstract void ProcessNetwork(KvmNetwork network);

    /// <summary>"lab on kvm1": the ShouldProcess target.</summary>
    protected static string Describe(KvmNetwork n) => $"network {n.Name} on {n.HostName ?? n.Connection.Uri}";

    /// <summary>The networks named (exactly or by wildcard) on one connection, from one listing; misses are NetworkNotFound errors, unmatched wildcards are silent.</summary>
    protected IEnumerable<KvmNetwork> ResolveNetworks(KvmConnection connection, IReadOnlyCollection<string>? names)
        => Resolve(connection, names, WriteError);

    /// <summary>As <see cref="ResolveNetworks"/>, for cmdlets that do not derive from this class.</summary>
    internal static IReadOnlyList<KvmNetwork> Resolve(KvmConnection connection, IReadOnlyCollection<string>? names, Action<ErrorRecord> writeError)
    {
        IReadOnlyList<KvmNetwork> all = NetworkService.List(connection);
        if (names is null || names.Count == 0)
        {
            return all;
        }

        var result = new List<KvmNetwork>();
        foreach (string n in names)
        {
            if (!WildcardPattern.ContainsWildcardCharacters(n))
            {
                KvmNetwork? net = all.FirstOrDefault(x => x.Name == n);
                if (net is null)
                {
                    writeError(ErrorRecords.FromOperation(NetworkService.NotFound(n, connection), n));
                }
                else if (!result.Contains(net))
                {
                    result.Add(net);
                }

                continue;
            }

            if (!TryWildcard(n, writeError, out WildcardPattern pattern))
            {
                continue;
            }

            result.AddRange(all.Where(x => pattern.IsMatch(x.Name) && !result.Contains(x)));
        }

        return result;
    }
}
