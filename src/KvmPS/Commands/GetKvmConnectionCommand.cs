using System.Management.Automation;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets the module's connections: the default ones, or every known one with -All.</summary>
[Cmdlet(VerbsCommon.Get, "KvmConnection")]
[OutputType(typeof(KvmConnection))]
public sealed class GetKvmConnectionCommand : PSCmdlet
{
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Uri { get; set; }

    [Parameter]
    public SwitchParameter All { get; set; }

    protected override void ProcessRecord()
    {
        IEnumerable<KvmConnection> list = All
            ? ModuleState.Defaults.Concat(ModuleState.All.Where(c => c.IsOpen)).Distinct()
            : ModuleState.Defaults;
        WildcardPattern[] patterns = (Uri ?? []).Select(u => WildcardPattern.Get(u, WildcardOptions.IgnoreCase)).ToArray();
        foreach (KvmConnection c in list)
        {
            if (patterns.Length == 0 || patterns.Any(p => p.IsMatch(c.Uri) || (c.RequestedUri is not null && p.IsMatch(c.RequestedUri))))
            {
                WriteObject(c);
            }
        }
    }
}
