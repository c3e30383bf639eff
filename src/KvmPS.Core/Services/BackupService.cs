using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Xml.Linq;
using System.Security.Cryptography;
using KvmPS.Core.Backend;
using KvmPS.Core.Images;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Services;

/// <summary>
/// Full and incremental VM backups into a self-describing folder (a backup set), and restores from it.
/// Running VMs use libvirt's push-mode backup job with checkpoints (the next incremental holds only the
/// blocks changed since); shut-off VMs are copied with qemu-img. The set folder holds one subfolder per
/// backup (disks, domain.xml, manifest.json) and kvmps-backup.json listing the chain.
/// </summary>
public static class BackupService
{
    public const string SetManifestName = "kvmps-backup.json";

    private const int JobNone = 0;
    private const int JobCompleted = 3;
    private const ulong JobOperationBackup = 9;   // VIR_DOMAIN_JOB_OPERATION_BACKUP

    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Backs up <paramref name="vm"/> into the set folder <paramref name="destination"/>.</summary>
    public static KvmBackup Backup(KvmVm vm, string destination, bool incremental, IReadOnlyCollection<string>? disks, bool quiesce, bool noCheckpoint,
        IKvmLog log, CancellationToken cancel)
    {
        KvmConnection conn = vm.Connection;
        if (!conn.IsProvenLocal)
        {
            throw new KvmOperationException("BackupRemoteUnsupported",
                $"Backups are written by QEMU on the host; {conn.HostName} is not proven to be this machine ({conn.LocalityDetail}), so KvmPS cannot write the backup set there yet.", vm.Name)
            {
                Hint = "Run Backup-KvmVm on the KVM host itself (for example through PowerShell remoting).",
            };
        }

        KvmVm now = VmService.Refresh(vm);
        bool running = now.Id is not null;
        string set = Path.GetFullPath(destination);
        bool setExisted = Directory.Exists(set);
        SetManifest? manifest = ReadSet(set);
        if (incremental)
        {
            if (manifest is null || manifest.Backups.Count == 0)
            {
                throw new KvmOperationException("NoFullBackup", $"'{set}' holds no backup of VM '{vm.Name}' to build an incremental backup on.", set)
                {
                    Hint = "Take a full backup into this folder first (Backup-KvmVm without -Incremental).",
                };
            }

            if (manifest.VmUuid != vm.Uuid)
            {
                throw new KvmOperationException("BackupSetMismatch", $"The backup set in '{set}' belongs to VM '{manifest.VmName}' ({manifest.VmUuid}), not '{vm.Name}'.", set);
            }
        }
        else if (Directory.Exists(set) && Directory.EnumerateFileSystemEntries(set).Any())
        {
            throw new KvmOperationException("DestinationNotEmpty", $"'{set}' is not empty; a full backup starts a new backup set in an empty folder.", set)
            {
                Hint = "Choose a new or empty folder, or add -Incremental to extend the set in it.",
            };
        }

        DomainConfig config = DomainXml.Parse(conn.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive)));
        List<KvmVmDisk> all = config.Disks.Where(d => d.Device == "disk" && d.Path is not null).ToList();
        List<KvmVmDisk> chosen = disks is { Count: > 0 } ? all.Where(d => disks.Contains(d.Target, StringComparer.Ordinal)).ToList() : all;
        if (disks is { Count: > 0 } && disks.FirstOrDefault(t => all.All(d => d.Target != t)) is { } missing)
        {
            throw new KvmOperationException("DiskNotFound", $"VM '{vm.Name}' has no disk '{missing}' (it has {string.Join(", ", all.Select(d => d.Target))}).", missing);
        }

        if (chosen.Count == 0)
        {
            throw new KvmOperationException("DiskNotFound", $"VM '{vm.Name}' has no disk to back up.", vm.Name);
        }

        BackupEntry? parent = incremental ? manifest!.Backups[^1] : null;
        if (incremental && !running)
        {
            throw new KvmOperationException("VmStateInvalid",
                $"An incremental backup needs VM '{vm.Name}' running (changed blocks are tracked by QEMU); it is {now.State}.", vm.Name)
            {
                Hint = "Start the VM, or take a full backup into a new folder.",
            };
        }

        if (incremental && (parent!.Checkpoint is null || !conn.Invoke(c => c.ListCheckpointNames(vm.Ref)).Contains(parent.Checkpoint)))
        {
            throw new KvmOperationException("CheckpointMissing",
                $"The last backup in '{set}' ({parent.Name}) left {(parent.Checkpoint is null ? "no checkpoint" : $"checkpoint '{parent.Checkpoint}', which VM '{vm.Name}' no longer has")}, so there is nothing to take changed blocks from.", set)
            {
                Hint = "Take a full backup into a new folder.",
            };
        }

        int index = (manifest?.Backups.Count ?? 0) + 1;
        DateTime start = DateTime.Now;
        string name = $"{index:D4}-{(incremental ? "incremental" : "full")}-{start.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}";
        string folder = Path.Combine(set, name);
        try
        {
            // A backup holds a guest's disks and definition: only the owner reads it (folders 0700, files 0600).
            // While QEMU writes a running VM's backup (as its own user) the folders are 0711: it may reach its target
            // files, nobody may list them; they become 0700 when the job is done.
            CreatePrivateDirectory(set, traverse: running);

            // Several VMs sent to one folder at once (-ThrottleLimit, or two processes): only one may start a set there,
            // and one backup at a time may add to it. The emptiness check above ran unclaimed; it is repeated while
            // this backup holds the set's claim file (created exclusively, held only until its folder exists). Not a
            // process-wide lock: one was found owned by a thread that no longer existed, hanging every later backup of
            // the process; a claim file is also seen by other processes and goes stale.
            using (FileStream claim = ClaimSet(set))
            {
                if (!incremental && Directory.EnumerateFileSystemEntries(set).Any(e => !string.Equals(e, claim.Name, StringComparison.Ordinal)))
                {
                    throw new KvmOperationException("DestinationNotEmpty", $"'{set}' is not empty; a full backup starts a new backup set in an empty folder.", set)
                    {
                        Hint = "Give each VM its own -Destination: a backup set belongs to one VM.",
                    };
                }

                CreatePrivateDirectory(folder, traverse: running);
            }

            File.WriteAllText(Path.Combine(folder, ".kvmps-writing"), string.Empty);
            File.Delete(Path.Combine(folder, ".kvmps-writing"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (manifest is null && !setExisted)
            {
                TryDelete(set);
            }

            throw new KvmOperationException("DestinationUnwritable", $"Cannot write the backup into '{set}': {e.Message}", set, e);
        }

        var sw = Stopwatch.StartNew();
        string? checkpoint = null;
        bool newSet = manifest is null && !setExisted;
        var undo = new UndoLog(log);
        undo.Add($"remove {folder}", () =>
        {
            TryDelete(folder);
            if (newSet)
            {
                TryDelete(set, onlyIfEmpty: true);
            }
        });
        try
        {
            List<KvmBackupDisk> written;
            ulong bytes;
            if (running)
            {
                bool wantCheckpoint = !noCheckpoint;
                if (wantCheckpoint && SnapshotService.List(vm).Count > 0 && conn.LibvirtVersion < SnapshotService.ExternalRevertVersion)
                {
                    throw CheckpointConflict(vm, conn);
                }

                // unique per VM even for two sets started in the same second (the index restarts at 1 in every set)
                checkpoint = wantCheckpoint ? $"kvmps-{start.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}-{index:D4}-{Guid.NewGuid().ToString("N")[..6]}" : null;
                (written, bytes) = PushBackup(vm, config, chosen, folder, parent?.Checkpoint, checkpoint, quiesce, undo, log, cancel);
            }
            else
            {
                if (quiesce)
                {
                    log.Verbose($"VM '{vm.Name}' is off: its disks are already consistent, -Quiesce is not needed");
                }

                (written, bytes) = OfflineCopy(vm, chosen, folder, log, cancel);
            }

            CreatePrivateDirectory(folder, traverse: false);
            CreatePrivateDirectory(set, traverse: false);
            string domainFile = Path.Combine(folder, "domain.xml");
            WritePrivate(domainFile, conn.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive)));
            foreach (KvmBackupDisk d in written)
            {
                ImageTrust.OwnerOnly(d.File);
            }

            var entry = new BackupEntry
            {
                Name = name,
                Kind = incremental ? KvmBackupKind.Incremental : KvmBackupKind.Full,
                Parent = parent?.Name,
                Checkpoint = checkpoint,
                StartTime = start,
                DurationMs = (long)sw.Elapsed.TotalMilliseconds,
                BytesWritten = bytes,
                DomainSha256 = Sha256(domainFile, cancel),
                Disks = written.Select(d => new DiskEntry
                {
                    Target = d.Target,
                    File = Path.GetFileName(d.File),
                    Format = d.Format,
                    Capacity = d.CapacityBytes,
                    Sha256 = Sha256(d.File, cancel),
                }).ToList(),
            };
            WritePrivate(Path.Combine(folder, "manifest.json"), JsonSerializer.Serialize(entry, s_json));
            manifest ??= new SetManifest { VmName = vm.Name, VmUuid = vm.Uuid, Host = conn.HostName };
            manifest.Backups.Add(entry);
            WritePrivate(Path.Combine(set, SetManifestName), JsonSerializer.Serialize(manifest, s_json));
            if (!running)
            {
                log.Warning($"VM '{vm.Name}' was off: this full backup has no checkpoint, so the next incremental backup needs the VM running after a new full one.");
            }

            undo.Commit();
            return ToBackup(manifest, entry, set);
        }
        catch (Exception e)
        {
            log.Verbose($"Backup of VM '{vm.Name}' failed or was stopped: removing {folder}");
            undo.Rollback();

            if (e is LibvirtException le && IsCheckpointSnapshotConflict(le))
            {
                throw CheckpointConflict(vm, conn, le);
            }

            if (e is LibvirtException bitmap && bitmap.Message.Contains("dirty bitmaps in qcow2 v2", StringComparison.OrdinalIgnoreCase))
            {
                throw new KvmOperationException("BackupCheckpointUnsupported",
                    $"A disk of VM '{vm.Name}' is a qcow2 v2 image (compat 0.10), which cannot track changed blocks, so no checkpoint can be made. No backup was taken.", vm.Name, bitmap)
                {
                    Hint = "Use -NoCheckpoint for a full backup without incrementals, or upgrade the image while the VM is off: qemu-img amend -f qcow2 -o compat=1.1 <disk>.",
                };
            }

            throw;
        }
    }

    /// <summary>The backups found in <paramref name="path"/>: a set folder, or a folder holding set folders.</summary>
    public static IReadOnlyList<KvmBackup> List(string path)
    {
        string full = Path.GetFullPath(path);
        var result = new List<KvmBackup>();
        IEnumerable<string> sets = File.Exists(Path.Combine(full, SetManifestName)) ? [full]
            : Directory.Exists(full) ? Directory.EnumerateDirectories(full).Where(d => File.Exists(Path.Combine(d, SetManifestName))).Order(StringComparer.Ordinal)
            : [];
        foreach (string set in sets)
        {
            SetManifest m = ReadSet(set)!;
            result.AddRange(m.Backups.Select(b => ToBackup(m, b, set)));
        }

        return result;
    }

    /// <summary>
    /// Rebuilds the disks of a backup (the full one plus the incrementals up to it) as new volumes in
    /// <paramref name="pool"/> and defines the VM; with <paramref name="newName"/> it gets a new UUID and MACs.
    /// </summary>
    public static KvmVm Restore(KvmConnection connection, KvmBackup backup, string? newName, string? pool, IKvmLog log, CancellationToken cancel)
    {
        if (!connection.IsProvenLocal)
        {
            throw new KvmOperationException("BackupRemoteUnsupported", $"Restoring writes the disks on the host; {connection.HostName} is not proven to be this machine ({connection.LocalityDetail}).", backup.Path);
        }

        string qemuImg = QemuImg();
        SetManifest set = ReadSet(backup.SetPath) ?? throw new KvmOperationException("BackupNotFound", $"'{backup.SetPath}' holds no backup set.", backup.SetPath);
        List<BackupEntry> chain = Chain(set, backup.Name);
        CheckSetFiles(set, chain, log, cancel);
        string name = newName ?? set.VmName;
        VmSpecValidator.ValidateName(name);
        if (VmService.GetByName(connection, name) is not null)
        {
            throw new KvmOperationException("VmExists", $"A VM named '{name}' already exists on {connection.Uri}.", name)
            {
                Hint = "Use -Name to restore it beside the original under another name.",
            };
        }

        if (newName is null && VmService.GetByUuid(connection, set.VmUuid) is { } same)
        {
            throw new KvmOperationException("VmExists", $"VM '{same.Name}' on {connection.Uri} already has the backup's UUID {set.VmUuid}.", name)
            {
                Hint = "Use -Name to restore it beside the original (it then gets a new UUID).",
            };
        }

        string poolName = pool ?? VmProvisioner.DefaultPool;
        VmProvisioner.EnsurePool(connection, poolName, log);
        string dir = VmProvisioner.PoolTargetPath(connection, poolName)
            ?? throw new KvmOperationException("StoragePoolNotFound", $"Storage pool '{poolName}' has no folder to restore disks into.", poolName);
        BackupEntry target = chain[^1];
        var created = new List<string>();
        var undo = new UndoLog(log);
        undo.Add($"refresh pool '{poolName}'", () =>
        {
            if (created.Count > 0)
            {
                connection.Invoke(c => c.RefreshStoragePool(poolName));   // runs last: the pool forgets the removed files
            }
        });
        string temp = Directory.CreateTempSubdirectory("kvmps-restore-").FullName;
        try
        {
            var newPaths = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (DiskEntry disk in target.Disks)
            {
                cancel.ThrowIfCancellationRequested();
                string file = Path.Combine(dir, $"{VmProvisioner.SafeFileName(name)}{(target.Disks.Count > 1 || disk.Target != "vda" ? "-" + disk.Target : string.Empty)}.qcow2");
                if (File.Exists(file))
                {
                    throw new KvmOperationException("DiskExists", $"'{file}' already exists; it was not touched.", file);
                }

                // Link the chain (copies of the incrementals, so the backup set stays as it is), then flatten it.
                DiskEntry first = chain[0].Disks.FirstOrDefault(d => d.Target == disk.Target)
                    ?? throw new KvmOperationException("BackupIncomplete", $"Full backup '{chain[0].Name}' has no copy of disk '{disk.Target}'.", chain[0].Name);
                string top = Path.Combine(set.Path!, chain[0].Name, first.File);
                for (int i = 1; i < chain.Count; i++)
                {
                    DiskEntry part = chain[i].Disks.FirstOrDefault(d => d.Target == disk.Target)
                        ?? throw new KvmOperationException("BackupIncomplete", $"Backup '{chain[i].Name}' has no copy of disk '{disk.Target}'.", chain[i].Name);
                    string copy = Path.Combine(temp, $"{i:D4}-{part.File}");
                    File.Copy(Path.Combine(set.Path!, chain[i].Name, part.File), copy);
                    // every link is qcow2 as the manifest records (and CheckSetFiles found): formats pinned, nothing probed
                    RunQemuImg(qemuImg, ["rebase", "-u", "-f", "qcow2", "-F", "qcow2", "-b", top, copy], cancel);
                    top = copy;
                }

                // before the convert: a stopped one leaves a partial file; never a file some VM took meanwhile
                undo.Add($"remove {file}", () => DeleteRestoredFileUnlessUsed(connection, file, log));
                log.Verbose($"Rebuilding disk {disk.Target} from {chain.Count} backup(s) into {file}");
                log.Progress($"Restoring {name}", $"disk {disk.Target}", (int)(100.0 * newPaths.Count / target.Disks.Count));
                RunQemuImg(qemuImg, ["convert", "-f", "qcow2", "-O", "qcow2", top, file], cancel);
                created.Add(file);
                ImageTrust.OwnerOnly(file);   // like libvirt's own volumes: 0600
                newPaths[disk.Target] = file;
            }

            cancel.ThrowIfCancellationRequested();
            connection.Invoke(c => c.RefreshStoragePool(poolName));
            (XElement domain, List<string> dropped) = RestoreDefinition.Build(ReadDomain(set, target), name, newName is not null, newPaths);
            if (dropped.Count > 0)
            {
                log.Warning($"Left out of the restored definition of VM '{name}' (a backup set is not trusted with host resources): {string.Join("; ", dropped)}.");
            }

            // the UUID is fixed before the define, so a define that was given up can still be undone exactly
            if (!Guid.TryParse((string?)domain.Element("uuid"), out Guid uuid))
            {
                uuid = Guid.NewGuid();
                domain.Element("uuid")?.Remove();
                domain.Element("name")!.AddAfterSelf(new XElement("uuid", uuid.ToString("D")));
            }

            log.Verbose($"Defining VM '{name}' from the backup's definition");
            DomainRef defined = undo.Call(connection, $"remove VM {name}", c => c.DefineDomain(domain.ToString(), 0),
                d => VmProvisioner.UndefineIfPresent(connection, d.Uuid, keepNvram: true), () => VmProvisioner.UndefineIfPresent(connection, uuid, keepNvram: true));
            log.Progress($"Restoring {name}", "done", 100, completed: true);
            KvmVm restored = VmService.GetByUuid(connection, defined.Uuid)!;
            undo.Commit();
            return restored;
        }
        catch (Exception)
        {
            undo.Rollback();
            throw;
        }
        finally
        {
            TryDelete(temp);
        }
    }

    /// <summary>
    /// Checks a backup set before a restore (names, files, checksums, image headers) and says what the restored definition
    /// leaves out; nothing is written. For -WhatIf.
    /// </summary>
    public static IReadOnlyList<string> PlanRestore(KvmBackup backup, string? newName, IKvmLog log, CancellationToken cancel)
    {
        SetManifest set = ReadSet(backup.SetPath) ?? throw new KvmOperationException("BackupNotFound", $"'{backup.SetPath}' holds no backup set.", backup.SetPath);
        List<BackupEntry> chain = Chain(set, backup.Name);
        CheckSetFiles(set, chain, log, cancel, checksums: false);   // Restore reads every byte for the checksums; a plan does not
        BackupEntry target = chain[^1];
        Dictionary<string, string> disks = target.Disks.ToDictionary(d => d.Target, d => $"(restored {d.Target})", StringComparer.Ordinal);
        return RestoreDefinition.Build(ReadDomain(set, target), newName ?? set.VmName, newName is not null, disks).Dropped;
    }

    private static XElement ReadDomain(SetManifest set, BackupEntry entry)
    {
        string file = Path.Combine(set.Path!, entry.Name, "domain.xml");
        try
        {
            return XElement.Parse(File.ReadAllText(file));
        }
        catch (System.Xml.XmlException e)
        {
            throw new KvmOperationException("BackupSetInvalid", $"'{file}' is not a VM definition: {e.Message}", file, e) { Kind = KvmErrorKind.InvalidData };
        }
    }

    /// <summary>
    /// Every file the restore reads must be a plain regular file inside the set (no symbolic link out of it), match the
    /// SHA-256 the manifest records (when it records one), and be a qcow2 image that names no data file, and (the full
    /// backup) no backing file: the only chain qemu-img follows is the one the restore links itself.
    /// </summary>
    private static void CheckSetFiles(SetManifest set, List<BackupEntry> chain, IKvmLog log, CancellationToken cancel, bool checksums = true)
    {
        foreach (BackupEntry b in chain)
        {
            string folder = Path.Combine(set.Path!, b.Name);
            if (!Directory.Exists(folder) || new DirectoryInfo(folder).LinkTarget is not null)
            {
                throw Invalid(set, $"backup folder '{b.Name}' is missing or is a symbolic link");
            }

            string domainFile = Path.Combine(folder, "domain.xml");
            CheckPlainFile(set, domainFile, checksums ? b.DomainSha256 : null, cancel);
            foreach (DiskEntry d in b.Disks)
            {
                string file = Path.Combine(folder, d.File);
                CheckPlainFile(set, file, checksums ? d.Sha256 : null, cancel);
                Qcow2Header? header;
                try
                {
                    header = Qcow2Header.Read(file);
                }
                catch (InvalidDataException e)
                {
                    throw Invalid(set, $"'{b.Name}/{d.File}' has a qcow2 header that cannot be read safely ({e.Message})");
                }

                if (header is null)
                {
                    throw Invalid(set, $"'{b.Name}/{d.File}' is not a qcow2 image, as the manifest says it is");
                }

                // An incremental backup's header names the VM's disk as its backing file (libvirt writes it so); the restore
                // never follows it: it rebases a copy (qemu-img rebase -u, which does not open the old backing file) onto
                // the previous link. The full backup at the bottom of the chain is read as it is, so it may name none.
                bool incremental = b != chain[0];
                if ((header.BackingFile is not null && !incremental) || header.HasExternalDataFile)
                {
                    throw ImageTrust.Refused(file, "backup file", header.HasExternalDataFile ? "an external data file" : $"the backing file '{header.BackingFile}'");
                }
            }

            if (b.Disks.All(d => d.Sha256 is null))
            {
                log.Verbose($"Backup '{b.Name}' records no checksums (it was written by an older KvmPS): its files are not verified");
            }
        }
    }

    private static void CheckPlainFile(SetManifest set, string file, string? sha256, CancellationToken cancel)
    {
        var info = new FileInfo(file);
        if (!info.Exists || info.LinkTarget is not null || (info.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) != 0)
        {
            throw Invalid(set, $"'{Path.GetRelativePath(set.Path!, file)}' is missing or is not a regular file inside the set");
        }

        if (sha256 is not null)
        {
            string actual = Sha256(file, cancel);
            if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new KvmOperationException("BackupSetCorrupt",
                    $"'{file}' does not match the SHA-256 its manifest records ({sha256}; the file's is {actual}); nothing was restored.", file)
                {
                    Kind = KvmErrorKind.InvalidData,
                    Hint = "Restore an earlier backup, or take a new full backup.",
                };
            }
        }
    }

    private static KvmOperationException Invalid(SetManifest set, string why)
        => new("BackupSetInvalid", $"The backup set in '{set.Path}' is not valid: {why}. Nothing was restored.", set.Path) { Kind = KvmErrorKind.InvalidData };

    private static string Sha256(string file, CancellationToken cancel)
    {
        using FileStream fs = new(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[1 << 20];
        int n;
        while ((n = fs.Read(buffer, 0, buffer.Length)) > 0)
        {
            cancel.ThrowIfCancellationRequested();
            sha.AppendData(buffer, 0, n);
        }

        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    private const string ClaimFileName = ".kvmps-claim";

    // A claim older than this was left by a process that died between claiming and making its folder (milliseconds).
    private static readonly TimeSpan s_staleClaim = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Claims a backup set folder for this backup: its claim file, created exclusively (atomic against other threads and
    /// processes) and deleted when the result is disposed. Another live claim is <c>DestinationNotEmpty</c> (a backup is
    /// starting there now); a stale one (see <see cref="s_staleClaim"/>) is taken over.
    /// </summary>
    private static FileStream ClaimSet(string set)
    {
        string path = Path.Combine(set, ClaimFileName);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                var options = new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.Write,
                    Share = FileShare.None,
                    Options = FileOptions.DeleteOnClose,
                };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                return new FileStream(path, options);
            }
            catch (IOException) when (attempt == 0 && File.Exists(path) && DateTime.UtcNow - File.GetLastWriteTimeUtc(path) > s_staleClaim)
            {
                File.Delete(path);
            }
            catch (IOException) when (File.Exists(path))
            {
                throw new KvmOperationException("DestinationNotEmpty", $"Another backup is starting in '{set}' right now (its claim {path} exists).", set)
                {
                    Hint = "Give each VM its own -Destination: a backup set belongs to one VM, and takes one backup at a time.",
                };
            }
        }
    }

    private static void CreatePrivateDirectory(string path, bool traverse)
    {
        UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | (traverse ? UnixFileMode.GroupExecute | UnixFileMode.OtherExecute : UnixFileMode.None);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, mode);
        File.SetUnixFileMode(path, mode);
    }

    private static void WritePrivate(string file, string content)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var w = new StreamWriter(file, System.Text.Encoding.UTF8, options))
        {
            w.Write(content);
        }

        ImageTrust.OwnerOnly(file);
    }

    private static (List<KvmBackupDisk> Disks, ulong Bytes) PushBackup(KvmVm vm, DomainConfig config, List<KvmVmDisk> chosen, string folder,
        string? incrementalFrom, string? checkpoint, bool quiesce, UndoLog undo, IKvmLog log, CancellationToken cancel)
    {
        KvmConnection conn = vm.Connection;
        var targets = chosen.ToDictionary(d => d.Target, d => Path.Combine(folder, $"{d.Target}.qcow2"));
        var backupXml = new XElement("domainbackup", new XAttribute("mode", "push"),
            incrementalFrom is null ? null : new XElement("incremental", incrementalFrom),
            new XElement("disks", config.Disks.Where(d => d.Device == "disk").Select(d => targets.TryGetValue(d.Target, out string? file)
                ? new XElement("disk", new XAttribute("name", d.Target), new XAttribute("backup", "yes"), new XAttribute("type", "file"),
                    new XElement("target", new XAttribute("file", file)), new XElement("driver", new XAttribute("type", "qcow2")))
                : new XElement("disk", new XAttribute("name", d.Target), new XAttribute("backup", "no")))));
        XElement? checkpointXml = checkpoint is null ? null : new XElement("domaincheckpoint", new XElement("name", checkpoint),
            new XElement("disks", config.Disks.Where(d => d.Device == "disk").Select(d => new XElement("disk", new XAttribute("name", d.Target),
                new XAttribute("checkpoint", targets.ContainsKey(d.Target) ? "bitmap" : "no")))));

        bool frozen = false;
        if (quiesce)
        {
            try
            {
                log.Verbose($"Freezing the file systems of VM '{vm.Name}' through its guest agent");
                conn.Invoke(c => c.FreezeFileSystems(vm.Ref));
                frozen = true;
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure)
            {
                throw new KvmOperationException("GuestAgentUnavailable",
                    $"Cannot quiesce VM '{vm.Name}': its guest agent does not answer ({e.Message}). No backup was taken.", vm.Name, e)
                {
                    Hint = "Install and start qemu-guest-agent in the guest, or back up without -Quiesce.",
                };
            }
        }

        try
        {
            log.Verbose($"Starting a {(incrementalFrom is null ? "full" : $"incremental (since checkpoint {incrementalFrom})")} backup job of VM '{vm.Name}' into {folder}{(checkpoint is null ? " without a checkpoint" : $", checkpoint {checkpoint}")}");
            // registered before the call: a begin that was given up may still start the job and make the checkpoint
            undo.Call(conn, $"end the backup job of VM '{vm.Name}'{(checkpoint is null ? string.Empty : $" and remove checkpoint '{checkpoint}'")}", c =>
            {
                c.BeginBackup(vm.Ref, backupXml.ToString(), checkpointXml?.ToString(), 0);
                return true;
            }, _ =>
            {
                EndBackupJob(vm, checkpoint);
                TryDelete(folder);   // the late job may have written its files after the rollback removed the folder
            }, () => EndBackupJob(vm, checkpoint));
        }
        finally
        {
            if (frozen)
            {
                try
                {
                    conn.Invoke(c => c.ThawFileSystems(vm.Ref));
                }
                catch (LibvirtException e)
                {
                    log.Warning($"Could not thaw the file systems of VM '{vm.Name}': {e.Message}");
                }
            }
        }

        string activity = $"Backing up {vm.Name}";
        ulong total = 0;
        try
        {
            while (true)
            {
                (int type, IReadOnlyList<TypedParameter> stats) = conn.Invoke(c => c.GetJobStats(vm.Ref, completed: false));
                if (type == JobNone)
                {
                    break;
                }

                ulong processed = Stat(stats, "disk_processed") ?? Stat(stats, "data_processed") ?? 0;
                total = Stat(stats, "disk_total") ?? Stat(stats, "data_total") ?? total;
                log.Progress(activity, $"{ByteSize.Format(processed)} of {ByteSize.Format(total)}", total == 0 ? 0 : (int)Math.Min(99, 100 * processed / total));
                if (cancel.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(250)))
                {
                    // the rollback aborts the job (no orphaned libvirt job) and removes the checkpoint
                    log.Verbose($"Stopping: the backup job of VM '{vm.Name}' is aborted");
                    cancel.ThrowIfCancellationRequested();
                }
            }
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
        }

        (int done, IReadOnlyList<TypedParameter> final) = conn.Invoke(c => c.GetJobStats(vm.Ref, completed: true));
        if (done != JobCompleted)
        {
            string why = final.FirstOrDefault(p => p.Name == "errmsg").Value as string ?? $"the job ended with state {done}";
            throw new KvmOperationException("BackupFailed", $"The backup job of VM '{vm.Name}' failed: {why}", vm.Name);
        }

        log.Verbose("Backup job statistics: " + string.Join(", ", final.Select(p => $"{p.Name}={p.Value}")));
        ulong bytes = Stat(final, "disk_total") ?? Stat(final, "data_total") ?? total;
        var disks = chosen.Select(d => new KvmBackupDisk
        {
            Target = d.Target,
            File = targets[d.Target],
            Format = "qcow2",
            CapacityBytes = TryCapacity(conn, d.Path!),
            SizeBytes = (ulong)new FileInfo(targets[d.Target]).Length,
        }).ToList();
        return (disks, bytes);
    }

    private static (List<KvmBackupDisk> Disks, ulong Bytes) OfflineCopy(KvmVm vm, List<KvmVmDisk> chosen, string folder, IKvmLog log, CancellationToken cancel)
    {
        string qemuImg = QemuImg();
        var result = new List<KvmBackupDisk>();
        ulong bytes = 0;
        for (int i = 0; i < chosen.Count; i++)
        {
            KvmVmDisk d = chosen[i];
            string file = Path.Combine(folder, $"{d.Target}.qcow2");
            log.Progress($"Backing up {vm.Name}", $"copying {d.Target} ({d.Path})", 100 * i / chosen.Count);
            // The format is the one the VM definition records for the disk (raw when it names none), never qemu-img's guess
            // from the bytes: a guest can write a qcow2 header with any backing file into its raw disk.
            string format = d.Format ?? "raw";
            if (format == "qcow2")
            {
                CheckSourceChain(vm.Connection, d.Path!, log);
            }

            log.Verbose($"VM '{vm.Name}' is off: copying disk {d.Target} ({d.Path}, {format}) with qemu-img");
            RunQemuImg(qemuImg, ["convert", "-f", format, "-O", "qcow2", d.Path!, file], cancel);
            ulong size = (ulong)new FileInfo(file).Length;
            bytes += size;
            result.Add(new KvmBackupDisk { Target = d.Target, File = file, Format = "qcow2", CapacityBytes = TryCapacity(vm.Connection, d.Path!), SizeBytes = size });
        }

        log.Progress($"Backing up {vm.Name}", "done", 100, completed: true);
        return (result, bytes);
    }

    /// <summary>
    /// A qcow2 disk the VM definition declares may have a backing chain (libvirt's, e.g. an overlay on a base image), but
    /// every link must name its format: qemu-img would otherwise probe the backing file's format from its bytes.
    /// </summary>
    private static void CheckSourceChain(KvmConnection conn, string path, IKvmLog log)
    {
        if (!conn.IsProvenLocal || !File.Exists(path))
        {
            return;
        }

        string current = path;
        for (int depth = 0; depth < 32; depth++)
        {
            Qcow2Header? h;
            try
            {
                h = Qcow2Header.Read(current);
            }
            catch (InvalidDataException e)
            {
                throw new KvmOperationException("ImageFormatMismatch", $"'{current}' is declared qcow2, but its header cannot be read safely: {e.Message}", path, e)
                {
                    Kind = KvmErrorKind.InvalidData,
                };
            }

            if (h is null)
            {
                throw new KvmOperationException("ImageFormatMismatch", $"'{current}' is declared qcow2 but has no qcow2 header; it is not copied.", path)
                {
                    Kind = KvmErrorKind.InvalidData,
                };
            }

            if (h.BackingFile is null)
            {
                return;
            }

            if (h.BackingFormat is not ("qcow2" or "raw"))
            {
                throw ImageTrust.Refused(path, "disk", h.BackingFormat is null
                    ? $"the backing file '{h.BackingFile}' without its format (qemu-img would guess it from the file's bytes)"
                    : $"the backing file '{h.BackingFile}' as {h.BackingFormat}");
            }

            string next = h.BackingFile.StartsWith('/') ? h.BackingFile : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(current) ?? "/", h.BackingFile));
            log.Verbose($"'{current}' is backed by '{next}' ({h.BackingFormat}), as its header declares");
            if (h.BackingFormat == "raw" || !File.Exists(next))
            {
                return;
            }

            current = next;
        }

        throw ImageTrust.Refused(path, "disk", "a backing chain deeper than 32 images");
    }

    /// <summary>
    /// Aborts the backup job of <paramref name="vm"/> if one runs and removes <paramref name="checkpoint"/> if it exists
    /// (an undo step: idempotent). Another kind of job (a migration, a save) is left alone.
    /// </summary>
    private static void EndBackupJob(KvmVm vm, string? checkpoint)
    {
        KvmConnection conn = vm.Connection;
        if (VmService.GetByUuid(conn, vm.Uuid) is null)
        {
            return;
        }

        try
        {
            (int type, IReadOnlyList<TypedParameter> stats) = conn.Invoke(c => c.GetJobStats(vm.Ref, completed: false));
            if (type != JobNone && Stat(stats, "operation") is null or JobOperationBackup)
            {
                conn.Invoke(c => c.AbortJob(vm.Ref));
            }

            WaitJobGone(vm);
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.OperationInvalid or LibvirtErrorCode.NoDomain)
        {
            // the job ended meanwhile, or the VM is not running (then it has no job)
        }

        if (checkpoint is not null && conn.Invoke(c => c.ListCheckpointNames(vm.Ref)).Contains(checkpoint))
        {
            conn.Invoke(c => c.DeleteCheckpoint(vm.Ref, checkpoint, 0));
        }
    }

    private static void WaitJobGone(KvmVm vm)
    {
        for (int i = 0; i < 100; i++)
        {
            if (vm.Connection.Invoke(c => c.GetJobStats(vm.Ref, completed: false)).Type == JobNone)
            {
                return;
            }

            Thread.Sleep(100);
        }
    }

    private static List<BackupEntry> Chain(SetManifest set, string name)
    {
        int end = set.Backups.FindIndex(b => b.Name == name);
        if (end < 0)
        {
            throw new KvmOperationException("BackupNotFound", $"The backup set in '{set.Path}' has no backup '{name}'.", name);
        }

        int start = set.Backups.FindLastIndex(end, b => b.Kind == KvmBackupKind.Full);
        if (start < 0)
        {
            throw new KvmOperationException("BackupIncomplete", $"No full backup precedes '{name}' in '{set.Path}'.", name);
        }

        return set.Backups.GetRange(start, end - start + 1);
    }

    private static KvmOperationException CheckpointConflict(KvmVm vm, KvmConnection conn, Exception? inner = null)
        => new("BackupCheckpointConflict",
            $"VM '{vm.Name}' has snapshots, and libvirt {conn.LibvirtVersion} cannot create the backup checkpoint that incremental backups need while a VM has snapshots.", vm.Name, inner)
        {
            Hint = "Use -NoCheckpoint for a full backup without a checkpoint (no incrementals build on it), or remove the VM's snapshots (Remove-KvmSnapshot) first.",
        };

    private static bool IsCheckpointSnapshotConflict(LibvirtException e)
        => e.Message.Contains("snapshot", StringComparison.OrdinalIgnoreCase) && e.Message.Contains("checkpoint", StringComparison.OrdinalIgnoreCase);

    private static ulong? Stat(IReadOnlyList<TypedParameter> stats, string name)
        => stats.FirstOrDefault(p => p.Name == name) is { Name: not null } p ? p.AsUInt64() : null;

    private static ulong TryCapacity(KvmConnection conn, string path)
    {
        try
        {
            return conn.Invoke(c => c.LookupStorageVolumeByPath(path))?.CapacityBytes ?? 0;
        }
        catch (LibvirtException)
        {
            return 0;
        }
    }

    internal static string QemuImg()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(Path.PathSeparator).Append("/usr/bin"))
        {
            string p = Path.Combine(dir, "qemu-img");
            if (File.Exists(p))
            {
                return p;
            }
        }

        throw new KvmOperationException("QemuImgNotFound", "qemu-img is not installed on this machine.", "qemu-img")
        {
            Hint = "Install it (Debian/Ubuntu: apt-get install qemu-utils).",
        };
    }

    private static void RunQemuImg(string qemuImg, string[] args, CancellationToken cancel)
    {
        var psi = new ProcessStartInfo(qemuImg) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync(CancellationToken.None);
        _ = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        while (!p.WaitForExit(200))
        {
            if (cancel.IsCancellationRequested)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                cancel.ThrowIfCancellationRequested();
            }
        }

        if (p.ExitCode != 0)
        {
            throw new KvmOperationException("QemuImgFailed", $"qemu-img {string.Join(' ', args)} failed: {err.Result.Trim()}", args[^1]);
        }
    }

    private static SetManifest? ReadSet(string set)
    {
        string file = Path.Combine(set, SetManifestName);
        if (!File.Exists(file))
        {
            return null;
        }

        SetManifest? m;
        try
        {
            m = JsonSerializer.Deserialize<SetManifest>(File.ReadAllText(file), s_json);
        }
        catch (JsonException e)
        {
            throw new KvmOperationException("BackupSetInvalid", $"'{file}' is not a valid KvmPS backup manifest: {e.Message}", file, e);
        }

        if (m is null)
        {
            throw new KvmOperationException("BackupSetInvalid", $"'{file}' is not a KvmPS backup manifest.", file);
        }

        m.Path = set;
        Validate(m, file);
        return m;
    }

    /// <summary>Names in a manifest become paths: each must be one plain name inside the set.</summary>
    private static void Validate(SetManifest m, string file)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (BackupEntry b in m.Backups)
        {
            RequirePlainName(b.Name, "backup name", file);
            if (!names.Add(b.Name))
            {
                throw new KvmOperationException("BackupSetInvalid", $"'{file}' lists backup '{b.Name}' twice.", file) { Kind = KvmErrorKind.InvalidData };
            }

            if (b.Parent is not null)
            {
                RequirePlainName(b.Parent, "parent backup name", file);
            }

            foreach (DiskEntry d in b.Disks)
            {
                RequirePlainName(d.File, "disk file name", file);
                if (!System.Text.RegularExpressions.Regex.IsMatch(d.Target, "^[a-z]{2,3}[a-z0-9]{1,4}$"))
                {
                    throw new KvmOperationException("BackupSetInvalid", $"'{file}' names a disk target '{d.Target}', which is not a disk target name (vda, sdb, ...).", file)
                    {
                        Kind = KvmErrorKind.InvalidData,
                    };
                }

                if (d.Format != "qcow2")
                {
                    throw new KvmOperationException("BackupSetInvalid", $"'{file}' records disk '{d.Target}' as {d.Format}; KvmPS backups are qcow2.", file) { Kind = KvmErrorKind.InvalidData };
                }
            }
        }
    }

    private static void RequirePlainName(string? name, string what, string file)
    {
        if (string.IsNullOrEmpty(name) || name is "." or ".." || name.IndexOfAny(['/', '\\', '\0']) >= 0 || Path.IsPathRooted(name) || name.Length > 255)
        {
            throw new KvmOperationException("BackupSetInvalid",
                $"'{file}' names the {what} '{name}', which is not a plain file name inside the backup set (no folders, no '..', no absolute paths).", file)
            {
                Kind = KvmErrorKind.InvalidData,
                Hint = "The set was changed after KvmPS wrote it; restore from a copy you trust.",
            };
        }
    }

    private static KvmBackup ToBackup(SetManifest m, BackupEntry b, string set) => new()
    {
        VMName = m.VmName,
        VMUuid = m.VmUuid,
        Name = b.Name,
        Path = Path.Combine(set, b.Name),
        SetPath = set,
        Kind = b.Kind,
        Parent = b.Parent,
        Checkpoint = b.Checkpoint,
        StartTime = b.StartTime,
        Duration = TimeSpan.FromMilliseconds(b.DurationMs),
        BytesWritten = b.BytesWritten,
        HostName = m.Host,
        Disks = b.Disks.Select(d => new KvmBackupDisk
        {
            Target = d.Target,
            File = Path.Combine(set, b.Name, d.File),
            Format = d.Format,
            CapacityBytes = d.Capacity,
            SizeBytes = File.Exists(Path.Combine(set, b.Name, d.File)) ? (ulong)new FileInfo(Path.Combine(set, b.Name, d.File)).Length : 0,
        }).ToList(),
    };

    private static void TryDelete(string dir, bool onlyIfEmpty = false)
    {
        try
        {
            if (Directory.Exists(dir) && (!onlyIfEmpty || !Directory.EnumerateFileSystemEntries(dir).Any()))
            {
                Directory.Delete(dir, recursive: !onlyIfEmpty);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Rollback of a restore: removes a file it wrote, unless the ownership model says a VM uses it now.</summary>
    private static void DeleteRestoredFileUnlessUsed(KvmConnection connection, string file, IKvmLog log)
    {
        IReadOnlyList<StorageUse> users = [];
        try
        {
            users = StorageUsage.Read(connection).UsersOf(file);
        }
        catch (LibvirtException)
        {
            // cannot tell: the file was written by this restore a moment ago, so it goes
        }

        if (users.Count > 0)
        {
            log.Warning($"Kept {file}: used by {string.Join(", ", users.Select(u => u.ToString()).Distinct())}.");
            return;
        }

        TryDeleteFile(file);
    }

    private static void TryDeleteFile(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private sealed class SetManifest
    {
        public int Format { get; set; } = 1;
        public string VmName { get; set; } = string.Empty;
        public Guid VmUuid { get; set; }
        public string? Host { get; set; }
        public List<BackupEntry> Backups { get; set; } = [];

        [JsonIgnore]
        public string? Path { get; set; }
    }

    private sealed class BackupEntry
    {
        public string Name { get; set; } = string.Empty;
        public KvmBackupKind Kind { get; set; }
        public string? Parent { get; set; }
        public string? Checkpoint { get; set; }
        public DateTime StartTime { get; set; }
        public long DurationMs { get; set; }
        public ulong BytesWritten { get; set; }
        /// <summary>SHA-256 (hex) of domain.xml; null in sets written before checksums.</summary>
        public string? DomainSha256 { get; set; }
        public List<DiskEntry> Disks { get; set; } = [];
    }

    private sealed class DiskEntry
    {
        public string Target { get; set; } = string.Empty;
        public string File { get; set; } = string.Empty;
        public string Format { get; set; } = "qcow2";
        public ulong Capacity { get; set; }
        /// <summary>SHA-256 (hex) of the file; null in sets written before checksums.</summary>
        public string? Sha256 { get; set; }
    }
}
