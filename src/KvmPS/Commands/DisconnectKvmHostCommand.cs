using System.Management.Automation;
using KvmPS.Completion;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>Closes connections and removes them from the default connections.</summary>
[Cmdlet(VerbsCommunications.Disconnect, "KvmHost", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(void))]
public sealed class DisconnectKvmHostCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [KvmConnectionTransformation]
    [ArgumentCompleter(typeof(KvmConnectionCompleter))]
    [ValidateNotNullOrEmpty]
    public KvmConnection[]? Connection { get; set; }

    protected override void ProcessRecord()
    {
        IEnumerable<KvmConnection> targets = Connection ?? ModuleState.Defaults;
        foreach (KvmConnection c in targets)
        {
            if (ShouldProcess(c.Uri, "Disconnect"))
            {
                WriteVerbose($"Closing connection {c.Uri}");
                ModuleState.Remove(c);
            }
        }
    }
}
