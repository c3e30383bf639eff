using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Xml.Linq;
using KvmPS.Core.Backend;
using KvmPS.Core.Images;

namespace KvmPS.Core.Services;

/// <summary>
/// Export-KvmVm -IncludeStorage and Import-KvmVm -Copy: a shut-off VM's definition and the content of its writable disks
/// in a folder on the machine running PowerShell, through libvirt's volume streams (so the host may be remote), and back
/// as a new VM. An export folder is input when it is imported: its manifest, file names, image headers and definition
/// are checked as a backup set's are (no path out of the folder, no qcow2 backing or data file, an allow-listed
/// definition).
/// </summary>
public static class VmExportService
{
    public const string ManifestName = "kvmps-export.json";
    private const int ManifestMaxBytes = 1024 * 1024;
    private const int DisksMax = 64;

    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    internal sealed class Manifest
    {
        public int Version { get; set; } = 1;
        public string Name { get; set; } = string.Empty;
        public Guid Uuid { get; set; }
        public string Definition { get; set; } = "domain.xml";
        public List<Disk> Disks { get; set; } = [];
        public DateTime Created { get; set; }
    }

    internal sealed class Disk
    {
        public string Target { get; set; } = string.Empty;
        public string File { get; set; } = string.Empty;
        public string Format { get; set; } = "raw";
        public ulong CapacityBytes { get; set; }
        public ulong SizeBytes { get; set; }
        public string? Sha256 { get; set; }
    }

    /// <summary>Writes the VM (shut off) into <paramref name="folder"/> (new or empty): its definition, each writable disk's file, a manifest.</summary>
    public static DirectoryInfo Export(KvmVm vm, string folder, IKvmLog log, CancellationToken cancel)
    {
        KvmConnection connection = vm.Connection;
        (int state, _) = connection.Invoke(c => c.GetDomainState(vm.Ref));
        if (state != 5)
        {
            throw new KvmOperationException("VmStateInvalid",
                $"'{vm.Name}' is {(KvmVmState)state}: export a shut-off VM with its storage, so that its disks do not change while they are read.", vm.Name)
            { Kind = KvmErrorKind.InvalidOperation, Hint = $"Stop-KvmVm {vm.Name}, then export it." };
        }

        bool created = !Directory.Exists(folder);
        if (!created && Directory.EnumerateFileSystemEntries(folder).Any())
        {
            throw new KvmOperationException("DestinationNotEmpty", $"'{folder}' is not empty; an export with storage goes into a new or empty folder.", folder)
            { Kind = KvmErrorKind.AlreadyExists };
        }

        Directory.CreateDirectory(folder);
        ImageTrust.OwnerOnly(folder, directory: true);
        var written = new List<string>();
        try
        {
            // not SECURE: passwords in the definition (VNC, SPICE) stay on the host
            string xml = connection.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive));
            XElement domain = XElement.Parse(xml);
            var manifest = new Manifest { Name = vm.Name, Uuid = vm.Uuid, Created = DateTime.UtcNow };
            foreach (XElement disk in domain.Element("devices")?.Elements("disk") ?? [])
            {
                cancel.ThrowIfCancellationRequested();
                bool writable = (string?)disk.Attribute("device") is null or "disk" && disk.Element("readonly") is null && disk.Element("shareable") is null;
                string target = (string?)disk.Element("target")?.Attribute("dev") ?? string.Empty;
                XElement? src = disk.Element("source");
                string? path = (string?)src?.Attribute("file") ?? (string?)src?.Attribute("dev")
                    ?? (src?.Attribute("volume") is not null ? connection.Invoke(c => c.LookupStorageVolume((string?)src.Attribute("pool") ?? string.Empty, (string?)src.Attribute("volume") ?? string.Empty))?.Path : null);
                if (!writable || path is null)
                {
                    continue;
                }

                StorageVolumeInfo volume = connection.Invoke(c => c.LookupStorageVolumeByPath(path))
                    ?? throw new KvmOperationException("DiskNotInPool", $"The disk {target} ({path}) is in no storage pool, so libvirt cannot stream it.", path) { Kind = KvmErrorKind.InvalidArgument };
                XElement volumeXml = XElement.Parse(connection.Invoke(c => c.GetStorageVolumeXml(volume)));
                string format = (string?)volumeXml.Element("target")?.Element("format")?.Attribute("type") ?? "raw";
                if (format is not ("raw" or "qcow2"))
                {
                    throw new KvmOperationException("StorageNotSupported", $"The disk {target} is {format}; an export carries raw and qcow2 disks.", path) { Kind = KvmErrorKind.NotSupported };
                }

                if (volumeXml.Element("backingStore")?.Element("path") is { } backing && !string.IsNullOrWhiteSpace(backing.Value))
                {
                    throw new KvmOperationException("BackingChainNotSupported",
                        $"The disk {target} ({path}) is an overlay on {backing.Value.Trim()}; the export would carry only its own layer.", path)
                    {
                        Kind = KvmErrorKind.NotSupported,
                        Hint = "Make a full copy first (Copy-KvmVm) and export that.",
                    };
                }

                string file = $"{Sanitize(target)}.{format}";
                string full = Path.Combine(folder, file);
                log.Verbose($"Exporting {target} ({path}) to {full}");
                written.Add(full);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                ulong size;
                using (var stream = CreatePrivate(full))
                using (var hashing = new HashingStream(stream, hash))
                {
                    string activity = $"Exporting {target} of {vm.Name}";
                    size = connection.Raw().DownloadStorageVolume(volume, hashing, n => log.Progress(activity, ByteSize.Format(n), -1), cancel);
                    log.Progress(activity, "done", 100, completed: true);
                }

                manifest.Disks.Add(new Disk
                {
                    Target = target, File = file, Format = format, CapacityBytes = volume.CapacityBytes, SizeBytes = size,
                    Sha256 = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant(),
                });
            }

            string definition = Path.Combine(folder, manifest.Definition);
            written.Add(definition);
            WritePrivate(definition, domain.ToString());
            string manifestPath = Path.Combine(folder, ManifestName);
            written.Add(manifestPath);
            WritePrivate(manifestPath, JsonSerializer.Serialize(manifest, s_json));
            return new DirectoryInfo(folder);
        }
        catch
        {
            foreach (string f in written)
            {
                File.Delete(f);
            }

            if (created)
            {
                Directory.Delete(folder, recursive: false);
            }

            throw;
        }
    }

    private static void WritePrivate(string path, string text)
    {
        using FileStream stream = CreatePrivate(path);
        using var writer = new StreamWriter(stream);
        writer.Write(text);
    }

    // a new file only its owner can read (0600 from the start, so no window in which others can)
    private static FileStream CreatePrivate(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return new FileStream(path, options);
    }

    private static string Sanitize(string target) => new(target.Select(ch => char.IsAsciiLetterOrDigit(ch) ? ch : '_').ToArray());

    /// <summary>True when <paramref name="folder"/> holds an export made with -IncludeStorage.</summary>
    public static bool IsExportFolder(string folder) => File.Exists(Path.Combine(folder, ManifestName));

    /// <summary>
    /// Makes a new VM from an export folder on <paramref name="connection"/>: each disk uploaded into a new volume of
    /// <paramref name="pool"/>, the definition rebuilt from its allow-list; a new UUID and MAC addresses with
    /// <paramref name="newIdentity"/> (or when <paramref name="name"/> differs from the exported name).
    /// </summary>
    public static KvmVm Import(KvmConnection connection, string folder, string? name, bool newIdentity, string pool, IKvmLog log, CancellationToken cancel)
    {
        Manifest manifest = ReadManifest(folder);
        string vmName = name ?? manifest.Name;
        VmSpecValidator.ValidateName(vmName);
        newIdentity |= name is not null && name != manifest.Name;
        if (VmService.GetByName(connection, vmName) is not null)
        {
            throw new KvmOperationException("VmExists", $"A VM named '{vmName}' already exists on {connection.Uri}.", vmName) { Kind = KvmErrorKind.AlreadyExists, Hint = "Use -Name to import it under another name." };
        }

        if (!newIdentity && VmService.GetByUuid(connection, manifest.Uuid) is { } same)
        {
            throw new KvmOperationException("VmExists", $"VM '{same.Name}' on {connection.Uri} already has UUID {manifest.Uuid}.", vmName) { Kind = KvmErrorKind.AlreadyExists, Hint = "Use -GenerateNewId." };
        }

        XElement source;
        try
        {
            source = XElement.Parse(ReadBounded(Path.Combine(folder, manifest.Definition), ManifestMaxBytes));
        }
        catch (System.Xml.XmlException e)
        {
            throw new KvmOperationException("ExportInvalid", $"The definition in '{folder}' is not valid XML: {e.Message}", folder, e) { Kind = KvmErrorKind.InvalidData };
        }

        KvmStoragePool p = StorageService.RequireRunningPool(connection, pool);
        ulong need = (ulong)manifest.Disks.Sum(d => (decimal)d.SizeBytes);
        if (need > p.AvailableBytes)
        {
            throw new KvmOperationException("InsufficientStorage", $"Pool '{pool}' has {ByteSize.Format(p.AvailableBytes)} free; the disks need {ByteSize.Format(need)}.", pool) { Kind = KvmErrorKind.Unavailable };
        }

        var undo = new UndoLog(log);
        try
        {
            var paths = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Disk d in manifest.Disks)
            {
                cancel.ThrowIfCancellationRequested();
                string file = Path.Combine(folder, d.File);
                string volumeName = $"{VmProvisioner.SafeFileName(vmName)}-{Sanitize(d.Target)}.{d.Format}";
                var xml = new XElement("volume",
                    new XElement("name", volumeName),
                    new XElement("capacity", new XAttribute("unit", "bytes"), d.CapacityBytes),
                    new XElement("allocation", new XAttribute("unit", "bytes"), 0),
                    new XElement("target", new XElement("format", new XAttribute("type", d.Format)), d.Format == "qcow2" ? new XElement("compat", "1.1") : null));
                StorageVolumeInfo volume = undo.Call(connection, $"remove volume {pool}/{volumeName}", c => c.CreateStorageVolume(pool, xml.ToString(), 0),
                    _ => StorageService.DeleteVolumeIfPresent(connection, pool, volumeName), () => StorageService.DeleteVolumeIfPresent(connection, pool, volumeName));
                log.Verbose($"Uploading {file} into {pool}/{volumeName}");
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read))
                using (var hashing = new HashingStream(stream, hash))
                {
                    string activity = $"Importing {d.Target} of {vmName}";
                    connection.Raw().UploadStorageVolume(volume, hashing, d.SizeBytes, n => log.Progress(activity, $"{ByteSize.Format(n)} of {ByteSize.Format(d.SizeBytes)}",
                        d.SizeBytes == 0 ? -1 : (int)Math.Min(99, 100.0 * n / d.SizeBytes)), cancel);
                    log.Progress(activity, "done", 100, completed: true);
                }

                string sha = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
                if (d.Sha256 is not null && !string.Equals(sha, d.Sha256, StringComparison.OrdinalIgnoreCase))
                {
                    throw new KvmOperationException("ExportInvalid", $"'{file}' does not match the SHA-256 its manifest records: it changed or is damaged. Nothing was imported.", file) { Kind = KvmErrorKind.InvalidData };
                }

                paths[d.Target] = volume.Path;
            }

            (XElement domain, List<string> dropped) = RestoreDefinition.Build(source, vmName, newIdentity, paths);
            if (dropped.Count > 0)
            {
                log.Warning($"Left out of the imported definition of VM '{vmName}' (an export folder is not trusted with host resources): {string.Join("; ", dropped)}.");
            }

            if (!Guid.TryParse((string?)domain.Element("uuid"), out Guid uuid))
            {
                uuid = Guid.NewGuid();
                domain.Element("uuid")?.Remove();
                domain.Element("name")!.AddAfterSelf(new XElement("uuid", uuid.ToString("D")));
            }

            log.Verbose($"Defining VM '{vmName}' from {folder}");
            DomainRef defined = undo.Call(connection, $"remove VM {vmName}", c => c.DefineDomain(domain.ToString(), 0),
                r => VmProvisioner.UndefineIfPresent(connection, r.Uuid, keepNvram: false), () => VmProvisioner.UndefineIfPresent(connection, uuid, keepNvram: false));
            KvmVm vm = VmService.GetByUuid(connection, defined.Uuid)!;
            undo.Commit();
            return vm;
        }
        catch
        {
            undo.Rollback();
            throw;
        }
    }

    /// <summary>The folder's manifest, checked: sizes bounded, every file a plain regular file inside the folder, formats and images safe.</summary>
    internal static Manifest ReadManifest(string folder)
    {
        string path = Path.Combine(folder, ManifestName);
        Manifest? m;
        try
        {
            m = JsonSerializer.Deserialize<Manifest>(ReadBounded(path, ManifestMaxBytes), s_json);
        }
        catch (JsonException e)
        {
            throw Invalid(folder, $"its manifest is not valid: {e.Message}", e);
        }

        if (m is null || m.Version != 1 || string.IsNullOrWhiteSpace(m.Name) || m.Disks is null || m.Disks.Count > DisksMax)
        {
            throw Invalid(folder, "its manifest is not a KvmPS export manifest (version 1, a name, at most 64 disks)");
        }

        string root = Path.GetFullPath(folder);
        CheckInside(root, m.Definition, folder);
        var targets = new HashSet<string>(StringComparer.Ordinal);
        foreach (Disk d in m.Disks)
        {
            if (string.IsNullOrEmpty(d.Target) || !targets.Add(d.Target) || d.Target.Length > 32)
            {
                throw Invalid(folder, $"its manifest names the disk '{d.Target}' twice or not at all");
            }

            if (d.Format is not ("raw" or "qcow2"))
            {
                throw Invalid(folder, $"the disk {d.Target} has the format '{d.Format}'; only raw and qcow2 are imported");
            }

            string file = CheckInside(root, d.File, folder);
            ulong length = (ulong)new FileInfo(file).Length;
            if (length != d.SizeBytes)
            {
                throw Invalid(folder, $"'{d.File}' has {length} bytes, its manifest says {d.SizeBytes}");
            }

            if (d.Format == "qcow2")
            {
                Qcow2Header h = Qcow2Header.Read(file) ?? throw Invalid(folder, $"'{d.File}' is listed as qcow2 but is not a qcow2 image");
                ImageTrust.RefuseReferences(file, "exported disk", h);
                d.CapacityBytes = h.VirtualSize;
            }
            else
            {
                d.CapacityBytes = length;
            }

            if (d.CapacityBytes == 0)
            {
                throw Invalid(folder, $"'{d.File}' is empty");
            }
        }

        return m;
    }

    // A file named by the manifest: a plain name of a regular file directly in the folder, never a link out of it.
    private static string CheckInside(string root, string name, string folder)
    {
        if (string.IsNullOrEmpty(name) || name != Path.GetFileName(name) || name is "." or ".." || name.Contains('\\') || name.Contains('/'))
        {
            throw Invalid(folder, $"its manifest names '{name}', which is not a plain file name in the folder");
        }

        string full = Path.Combine(root, name);
        var info = new FileInfo(full);
        if (!info.Exists || info.LinkTarget is not null || (info.Attributes & FileAttributes.ReparsePoint) != 0)
        {
            throw Invalid(folder, $"'{name}' is missing or is not a regular file");
        }

        return full;
    }

    private static string ReadBounded(string path, int max)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null)
        {
            throw Invalid(Path.GetDirectoryName(path) ?? path, $"'{Path.GetFileName(path)}' is missing or is not a regular file");
        }

        if (info.Length > max)
        {
            throw Invalid(Path.GetDirectoryName(path) ?? path, $"'{Path.GetFileName(path)}' is larger than {max} bytes");
        }

        return File.ReadAllText(path);
    }

    private static KvmOperationException Invalid(string folder, string what, Exception? inner = null)
        => new("ExportInvalid", $"'{folder}' is not an export KvmPS can import: {what}. Nothing was imported.", folder, inner) { Kind = KvmErrorKind.InvalidData };

    /// <summary>A pass-through stream that hashes what goes through it (read or written).</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = inner.Read(buffer, offset, count);
            hash.AppendData(buffer, offset, n);
            return n;
        }

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            hash.AppendData(buffer[..n]);
            return n;
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            hash.AppendData(buffer, offset, count);
            inner.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.AppendData(buffer);
            inner.Write(buffer);
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
