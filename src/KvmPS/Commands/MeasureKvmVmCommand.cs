using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>
/// Measures what running VMs use: CPU, memory, disk and network, over a sample interval. Targets from the
/// whole pipeline are gathered first; then each host is sampled twice (one bulk libvirt call per sample for
/// all its VMs), with a single wait between the samples for every host.
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "KvmVm", DefaultParameterSetName = NameSet)]
[OutputType(typeof(KvmVmMetrics))]
public sealed class MeasureKvmVmCommand : KvmCmdlet
{
    private const string NameSet = "Name";
    private const string VMSet = "VM";

    private readonly List<(KvmConnection Connection, string[]? Names, KvmVm? Vm)> _requests = [];
    private readonly HashSet<string[]> _literal = new(ReferenceEqualityComparer.Instance);

    /// <summary>VM names or wildcards; none: every running VM.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Alias("VMName")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KvmVmNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = VMSet)]
    [ValidateNotNullOrEmpty]
    public KvmVm[] VM { get; set; } = [];

    /// <summary>Seconds between the two samples the rates are computed from.</summary>
    [Parameter]
    [ValidateRange(0.1, 3600.0)]
    public double SampleIntervalSec { get; set; } = 1.0;

    protected override void ProcessRecord()
    {
        if (ParameterSetName != VMSet)
        {
            // Only noted here: EndProcessing opens and samples all the hosts at once.
            foreach (KvmConnection connection in Connection is { Length: > 0 } given ? given : ModuleState.Implicit())
            {
                ProcessConnection(connection);
            }

            return;
        }

        foreach (KvmVm vm in VM)
        {
            _requests.Add((vm.Connection, null, vm));
        }
    }

    protected override void ProcessConnection(KvmConnection connection)
    {
        string[]? names = Name is { Length: > 0 } ? [.. Name] : null;
        if (names is not null && FromPipeline(nameof(Name)))
        {
            _literal.Add(names);   // names from the pipeline (a piped KvmVm's Name, CSV rows) are never patterns
        }

        _requests.Add((connection, names, null));
    }

    /// <summary>How many hosts are sampled at once (the output stays in the order the hosts were given).</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 16;

    protected override void EndProcessing()
    {
        // Both samples of every host are taken for all hosts at once (up to -ThrottleLimit), in host order on output.
        List<IGrouping<KvmConnection, (KvmConnection Connection, string[]? Names, KvmVm? Vm)>> groups = _requests.GroupBy(r => r.Connection).ToList();
        var firsts = new (MetricsSample First, List<DomainCounters> Targets)?[groups.Count];
        ForEachConcurrently(Enumerable.Range(0, groups.Count).ToList(), i =>
        {
            KvmConnection connection = groups[i].Key;
            MetricsSample first;
            try
            {
                connection.Open();
            }
            catch (LibvirtException e)
            {
                WriteError(ErrorRecords.ConnectionFailed(e, connection.RequestedUri ?? connection.Uri));
                return;
            }

            try
            {
                WriteVerbose($"Sampling the VMs on '{connection.Uri}'");
                first = MetricsService.Sample(connection, activeOnly: false);
            }
            catch (LibvirtException e)
            {
                WriteError(ErrorRecords.FromLibvirt(e, connection.Uri));
                return;
            }

            List<DomainCounters> targets = Select(first, groups[i]);
            if (targets.Count > 0)
            {
                firsts[i] = (first, targets);
            }
        }, ThrottleLimit);

        List<(MetricsSample First, List<DomainCounters> Targets)> measured = firsts.Where(m => m is not null).Select(m => m!.Value).ToList();
        if (measured.Count == 0)
        {
            return;
        }

        MetricsService.Wait(measured.Max(m => m.First.Timestamp), TimeSpan.FromSeconds(SampleIntervalSec), this, CancelToken);
        ForEachConcurrently(measured, m =>
        {
            (MetricsSample first, List<DomainCounters> targets) = m;
            MetricsSample second;
            try
            {
                second = MetricsService.Sample(first.Connection, activeOnly: true);
            }
            catch (LibvirtException e)
            {
                WriteError(ErrorRecords.FromLibvirt(e, first.Connection.Uri));
                return;
            }

            foreach (DomainCounters target in targets)
            {
                KvmVmMetrics? metrics = MetricsService.Measure(first, second, target.Domain.Uuid);
                if (metrics is null)
                {
                    WriteVerbose($"VM '{target.Domain.Name}' stopped during the sample interval: nothing to report.");
                    continue;
                }

                WriteObject(metrics);
            }
        }, ThrottleLimit);
    }

    /// <summary>The running VMs one host's requests name, in request order, each once; misses are errors.</summary>
    private List<DomainCounters> Select(MetricsSample sample, IEnumerable<(KvmConnection Connection, string[]? Names, KvmVm? Vm)> requests)
    {
        var seen = new HashSet<Guid>();
        var result = new List<DomainCounters>();
        string uri = sample.Connection.Uri;

        void Add(DomainCounters d, bool named)
        {
            if (!seen.Add(d.Domain.Uuid))
            {
                return;
            }

            if (d.Domain.Id < 0)
            {
                if (named)
                {
                    WriteVerbose($"VM '{d.Domain.Name}' is not running: only running VMs are measured.");
                }

                return;
            }

            result.Add(d);
        }

        foreach ((_, string[]? names, KvmVm? vm) in requests)
        {
            if (vm is not null)
            {
                if (sample.Find(vm.Uuid) is { } d)
                {
                    Add(d, named: true);
                }
                else
                {
                    WriteError(ErrorRecords.VmNotFound(vm.Name, $"named '{vm.Name}' ({vm.Uuid})", uri));
                }

                continue;
            }

            if (names is null)
            {
                foreach (DomainCounters d in sample.Domains)
                {
                    Add(d, named: false);
                }

                continue;
            }

            foreach (string n in names)
            {
                // NameMatch's rule: an exact name wins; a literal name or one without wildcards that matches nothing is VmNotFound.
                string unescaped = WildcardPattern.ContainsWildcardCharacters(n) ? n : WildcardPattern.Unescape(n);
                DomainCounters? match = sample.Domains.FirstOrDefault(d => string.Equals(d.Domain.Name, n, StringComparison.Ordinal))
                    ?? sample.Domains.FirstOrDefault(d => string.Equals(d.Domain.Name, unescaped, StringComparison.Ordinal));
                if (match is not null || _literal.Contains(names) || !WildcardPattern.ContainsWildcardCharacters(n))
                {
                    if (match is null)
                    {
                        WriteError(ErrorRecords.VmNotFound(n, $"named '{n}'", uri));
                    }
                    else
                    {
                        Add(match, named: true);
                    }

                    continue;
                }

                if (!TryWildcard(n, WriteError, out WildcardPattern pattern))
                {
                    continue;
                }

                foreach (DomainCounters d in sample.Domains.Where(d => pattern.IsMatch(d.Domain.Name)))
                {
                    Add(d, named: true);
                }
            }
        }

        return result;
    }
}
