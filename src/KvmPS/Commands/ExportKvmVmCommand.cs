using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Backend;
using KvmPS.Core.Services;
using KvmPS.Core.Xml;
using KvmPS.Yaml;

namespace KvmPS.Commands;

/// <summary>The file formats Export-KvmVm writes.</summary>
public enum KvmVmExportFormat
{
    Yaml = 0,
    Xml = 1,
}

/// <summary>Writes a VM's definition to a file: libvirt XML, or a KvmPS YAML spec that New-KvmVm and Import-KvmVm read.</summary>
[Cmdlet(VerbsData.Export, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(FileInfo))]
public sealed class ExportKvmVmCommand : KvmVmCmdlet
{
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter]
    public KvmVmExportFormat? Format { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Writes the disks' content too: -Path is then a new or empty folder (the VM must be shut off).</summary>
    [Parameter]
    public SwitchParameter IncludeStorage { get; set; }

    protected override void ProcessVm(KvmVm vm)
    {
        string target = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        if (IncludeStorage)
        {
            if (ShouldProcess(target, $"Export VM '{vm.Name}' with the content of its disks"))
            {
                try
                {
                    WriteObject(VmExportService.Export(vm, target, this, CancelToken));
                }
                catch (KvmOperationException e)
                {
                    WriteError(ErrorRecords.FromOperation(e, e.Target ?? vm.Name));
                }
            }

            return;
        }

        KvmVmExportFormat format = Format ?? (target.EndsWith(".xml", StringComparison.OrdinalIgnoreCase) ? KvmVmExportFormat.Xml : KvmVmExportFormat.Yaml);
        if (Directory.Exists(target))
        {
            target = System.IO.Path.Combine(target, VmProvisioner.SafeFileName(vm.Name) + (format == KvmVmExportFormat.Xml ? ".xml" : ".yaml"));
        }

        if (File.Exists(target) && !Force)
        {
            WriteError(new ErrorRecord(new IOException($"'{target}' already exists."), "FileExists", ErrorCategory.ResourceExists, target)
            {
                ErrorDetails = new ErrorDetails($"'{target}' already exists.") { RecommendedAction = "Use -Force to overwrite it, or another -Path." },
            });
            return;
        }

        if (!ShouldProcess(target, $"Export VM '{vm.Name}' as {format}"))
        {
            return;
        }

        string xml = vm.Connection.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive));
        string text = format == KvmVmExportFormat.Xml ? xml : VmSpecYaml.ToYaml(VmSpecYaml.FromDomainConfig(DomainXml.Parse(xml)));
        File.WriteAllText(target, text);
        WriteObject(new FileInfo(target));
    }
}
