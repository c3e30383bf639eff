using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>
/// Base of the cmdlets that act on existing virtual networks: a Name set (names or wildcards, by value and by
/// property name, on -Connection or the default connections; see <see cref="NameMatch"/>) and an InputObject set
/// (KvmNetwork objects, each found again by UUID on its own host). Derived cmdlets make InputObject the default set so
/// a piped KvmNetwork binds to it rather than by its Name property. Then <see cref="ProcessNetwork"/> runs once per network.
/// </summary>
public abstract class KvmNetworkCmdlet : KvmCmdlet
{
    protected const string NameSet = "Name";
    protected const string InputObjectSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("NetworkName")]
    [SupportsWildcards]
    [NameTransformation]
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
            Guard(n.Name, () => ProcessNetwork(Reresolve(n)));
        }
    }

    protected sealed override void ProcessConnection(KvmConnection connection)
    {
        foreach (KvmNetwork n in ResolveNetworks(connection, Name, FromPipeline(nameof(Name))))
        {
            CancelToken.ThrowIfCancellationRequested();
            Guard(n.Name, () => ProcessNetwork(n));
        }
    }

    /// <summary>Does the cmdlet's work on one network (ShouldProcess inside).</summary>
    protected abstract void ProcessNetwork(KvmNetwork network);

    /// <summary>"lab on kvm1": the ShouldProcess target.</summary>
    protected static string Describe(KvmNetwork n) => $"network {n.Name} on {n.HostName ?? n.Connection.Uri}";

    /// <summary>The networks named on one connection, from one listing (<see cref="NameMatch"/>); misses are NetworkNotFound errors.</summary>
    protected IEnumerable<KvmNetwork> ResolveNetworks(KvmConnection connection, IReadOnlyCollection<string>? names, bool literal)
        => Resolve(connection, names, literal, WriteError);

    /// <summary>As <see cref="ResolveNetworks"/>, for cmdlets that do not derive from this class (all networks when no names are given).</summary>
    internal static IReadOnlyList<KvmNetwork> Resolve(KvmConnection connection, IReadOnlyCollection<string>? names, bool literal, Action<ErrorRecord> writeError)
    {
        IReadOnlyList<KvmNetwork> all = NetworkService.List(connection);
        return names is null || names.Count == 0
            ? all
            : NameMatch.Select(all, names, literal, n => n.Name, n => n.Uuid,
                n => writeError(ErrorRecords.FromOperation(NetworkService.NotFound(n, connection), n)), writeError);
    }

    /// <summary>The piped network as it is now, found again by its UUID on its own host; NetworkNotFound when it is gone (even if another network now has its name).</summary>
    internal static KvmNetwork Reresolve(KvmNetwork network)
    {
        network.Connection.Open();
        return NetworkService.List(network.Connection).FirstOrDefault(n => n.Uuid == network.Uuid)
            ?? throw NetworkService.NotFound(network.Name, network.Connection);
    }
}
