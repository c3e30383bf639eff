using System.Management.Automation;
using System.Xml.Linq;
using KvmPS.Core;
using KvmPS.Core.Backend;
using KvmPS.Core.Services;
using KvmPS.Core.Xml;
using KvmPS.Yaml;

namespace KvmPS.Commands;

/// <summary>Defines a VM from a file written by Export-KvmVm (libvirt XML or KvmPS YAML); its disks must exist.</summary>
[Cmdlet(VerbsData.Import, "KvmVm", SupportsShouldProcess = true)]
[OutputType(typeof(KvmVm))]
public sealed class ImportKvmVmCommand : KvmCmdlet
{
    protected override bool CreatesOnOneHost => true;

    protected override object? CreationTarget => Path;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter]
    [ValidateNotNullOrEmpty]
    [Alias("NewName")]
    public string? Name { get; set; }

    [Parameter]
    public SwitchParameter GenerateNewId { get; set; }

    [Parameter]
    public SwitchParameter Start { get; set; }

    [Parameter]
    [Alias("Copy")]
    public SwitchParameter CopyStorage { get; set; }

    /// <summary>The pool the disks of an export folder are uploaded into.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(KvmPS.Completion.KvmStoragePoolNameCompleter))]
    public string? DestinationStoragePool { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
    {
        string file = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        if (Directory.Exists(file) && VmExportService.IsExportFolder(file))
        {
            // an Export-KvmVm -IncludeStorage folder: its disks are always uploaded into new volumes
            try
            {
                string pool = DestinationStoragePool ?? "default";
                if (ShouldProcess($"{Name ?? "(the exported name)"} on {connection.HostName ?? connection.Uri}", $"Import VM from {file}, its disks uploaded into pool {pool}"))
                {
                    WriteObject(VmExportService.Import(connection, file, Name, GenerateNewId, pool, this, CancelToken));
                }
            }
            catch (KvmOperationException e)
            {
                WriteError(ErrorRecords.FromOperation(e, e.Target ?? Path));
            }
            catch (VmSpecException e)
            {
                WriteError(ErrorRecords.FromSpec(e, Path));
            }

            return;
        }

        if (!File.Exists(file))
        {
            WriteError(new ErrorRecord(new FileNotFoundException($"'{file}' does not exist.", file), "FileNotFound", ErrorCategory.ObjectNotFound, Path));
            return;
        }

        string text = File.ReadAllText(file);
        try
        {
            if (text.TrimStart().StartsWith('<'))
            {
                ImportXml(connection, text);
            }
            else
            {
                VmSpec spec = VmSpecYaml.FromYaml(text, validate: false);
                spec.Name = Name ?? spec.Name;
                spec.Start = Start;
                VmSpecValidator.Validate(spec);
                string copying = CopyStorage ? " (its disk images copied to new volumes)" : string.Empty;
                if (ShouldProcess($"{spec.Name} on {connection.HostName ?? connection.Uri}", $"Import VM from {file}{copying}"))
                {
                    IReadOnlyList<KvmVolume> copies = CopyStorage ? VmImport.CopyDisks(connection, spec, this, CancelToken) : [];
                    try
                    {
                        WriteObject(VmProvisioner.Create(connection, spec, this, CancelToken));
                    }
                    catch
                    {
                        VmImport.DeleteCopies(connection, copies, this);
                        throw;
                    }
                }
            }
        }
        catch (VmSpecException e)
        {
            WriteError(ErrorRecords.FromSpec(e, Path));
        }
        catch (KvmOperationException e)
        {
            WriteError(ErrorRecords.FromOperation(e, e.Target ?? Path));
        }
        catch (System.Xml.XmlException e)
        {
            WriteError(new ErrorRecord(e, "InvalidVmSpec", ErrorCategory.InvalidData, Path) { ErrorDetails = new ErrorDetails($"'{file}' is not valid XML: {e.Message}") });
        }
    }

    private void ImportXml(KvmConnection connection, string text)
    {
        XElement root = XElement.Parse(text);
        if (root.Name != "domain")
        {
            throw new VmSpecException("xml", $"expected a libvirt <domain> document, found <{root.Name}>.");
        }

        string name = Name ?? (string?)root.Element("name") ?? throw new VmSpecException("name", "the XML has no <name>.");
        VmSpecValidator.ValidateName(name);
        root.SetElementValue("name", name);
        if (GenerateNewId)
        {
            root.Element("uuid")?.Remove();
            foreach (XElement mac in root.Descendants("interface").Elements("mac").ToList())
            {
                mac.Remove();   // libvirt generates new MAC addresses
            }

            root.Element("os")?.Element("nvram")?.Remove();   // a UEFI copy gets its own NVRAM, never the original's

        }

        if (VmService.GetByName(connection, name) is not null)
        {
            throw new KvmOperationException("VmExists", $"A VM named '{name}' already exists on {connection.Uri}.", name) { Hint = "Use -Name to import it under another name." };
        }

        if (Guid.TryParse((string?)root.Element("uuid"), out Guid uuid) && VmService.GetByUuid(connection, uuid) is { } same)
        {
            throw new KvmOperationException("VmExists", $"VM '{same.Name}' on {connection.Uri} already has UUID {uuid}.", name) { Hint = "Use -GenerateNewId." };
        }

        if (!CopyStorage)
        {
            VmImport.CheckDisks(connection, root, name, CancelToken);   // DiskInUse: another VM writes one of its images
        }

        if (!ShouldProcess($"{name} on {connection.HostName ?? connection.Uri}", CopyStorage ? "Import VM (define from XML; its disk images copied to new volumes)" : "Import VM (define from XML)"))
        {
            return;
        }

        // the UUID is fixed before the define, so a define that was given up (Ctrl+C, timeout) can still be undone exactly
        if (!Guid.TryParse((string?)root.Element("uuid"), out Guid id))
        {
            id = Guid.NewGuid();
            root.Element("uuid")?.Remove();
            root.Element("name")!.AddAfterSelf(new XElement("uuid", id.ToString("D")));
        }

        var undo = new UndoLog(this);
        try
        {
            IReadOnlyList<KvmVolume> copies = CopyStorage ? VmImport.CopyDisks(connection, root, name, this, CancelToken) : [];
            undo.Add("remove the disk copies", () => VmImport.DeleteCopies(connection, copies, this));
            WriteVerbose($"Defining VM '{name}' from XML");
            DomainRef defined = undo.Call(connection, $"remove VM {name}", c => c.DefineDomain(root.ToString(), 0),
                d => VmProvisioner.UndefineIfPresent(connection, d.Uuid, keepNvram: true), () => VmProvisioner.UndefineIfPresent(connection, id, keepNvram: true));
            if (Start)
            {
                undo.Call(connection, $"stop VM {name}", c =>
                {
                    c.CreateDomain(defined, 0);
                    return true;
                }, _ => VmProvisioner.UndefineIfPresent(connection, id, keepNvram: true));
            }

            KvmVm? vm = VmService.GetByUuid(connection, defined.Uuid);
            undo.Commit();
            WriteObject(vm);
        }
        catch (Exception)
        {
            undo.Rollback();
            throw;
        }
    }
}
