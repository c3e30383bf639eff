using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Lists the backups in a backup set folder (or in a folder of backup sets), oldest first.</summary>
[Cmdlet(VerbsCommon.Get, "KvmBackup")]
[OutputType(typeof(KvmBackup))]
public sealed class GetKvmBackupCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = [];

    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? VMName { get; set; }

    [Parameter]
    public SwitchParameter Latest { get; set; }

    protected override void ProcessRecord()
    {
        foreach (string p in Path)
        {
            string full = SessionState.Path.GetUnresolvedProviderPathFromPSPath(p);
            if (!Directory.Exists(full))
            {
                WriteError(new ErrorRecord(new DirectoryNotFoundException($"'{full}' does not exist."), "BackupNotFound", ErrorCategory.ObjectNotFound, p));
                continue;
            }

            IEnumerable<KvmBackup> backups;
            try
            {
                backups = BackupService.List(full);
            }
            catch (KvmOperationException e)
            {
                WriteError(ErrorRecords.FromOperation(e, p));
                continue;
            }

            if (VMName is { Length: > 0 })
            {
                WildcardPattern[] patterns = VMName.Select(v => WildcardPattern.Get(v, WildcardOptions.IgnoreCase)).ToArray();
                backups = backups.Where(b => patterns.Any(w => w.IsMatch(b.VMName)));
            }

            if (Latest)
            {
                backups = backups.GroupBy(b => b.SetPath).Select(g => g.Last());
            }

            WriteObject(backups, enumerateCollection: true);
        }
    }
}
