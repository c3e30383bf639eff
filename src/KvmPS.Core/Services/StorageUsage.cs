using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>How a VM uses a disk image.</summary>
public enum StorageUseKind
{
    /// <summary>Attached as a disk, CD-ROM or floppy (live or in the configuration).</summary>
    Disk,

    /// <summary>In the backing chain of one of its disks (read by the VM, never written).</summary>
    Backing,

    /// <summary>An overlay one of its external snapshots made.</summary>
    SnapshotOverlay,

    /// <summary>A disk as it was when one of its snapshots was taken (the snapshot's overlay is built on it).</summary>
    SnapshotBase,

    /// <summary>The memory file of one of its external snapshots.</summary>
    MemoryFile,
}

/// <summary>One VM's use of one image.</summary>
public sealed record StorageUse(string VmName, Guid VmUuid, StorageUseKind Kind, bool ReadOnly, bool Shareable, string? Device, string? Snapshot)
{
    /// <summary>True for a disk the VM writes to alone (attached, not read-only, not marked shareable).</summary>
    public bool ExclusiveWriter => Kind == StorageUseKind.Disk && !ReadOnly && !Shareable;

    /// <summary>"VM 'b'", "VM 'b' (backing file)", "VM 'b' (snapshot 's1')".</summary>
    public override string ToString() => Kind switch
    {
        StorageUseKind.Disk => $"VM '{VmName}'",
        StorageUseKind.Backing => $"VM '{VmName}' (backing file of {Device ?? "a disk"})",
        StorageUseKind.MemoryFile => $"VM '{VmName}' (memory of snapshot '{Snapshot}')",
        _ => $"VM '{VmName}' (snapshot '{Snapshot}')",
    };
}

/// <summary>What a destructive command does with one image: delete it, or keep it and why.</summary>
public sealed record StorageDisposition(string Path, string Identity, bool Delete, IReadOnlyList<StorageUse> Users)
{
    /// <summary>"used by VM 'b', VM 'c' (backing file of vda)"; empty when the image is deleted.</summary>
    public string Reason => Users.Count == 0 ? string.Empty : "used by " + string.Join(", ", Users.Select(u => u.ToString()).Distinct());
}

/// <summary>
/// Who uses which disk image on one host, and whether an image is safe to delete or to attach as a writer. Built from the
/// live and the persistent XML of every VM (bulk reads), with file, block and volume sources (<c>&lt;source pool= volume=&gt;</c>)
/// resolved to one identity (<see cref="Identify"/>), whole backing chains (as libvirt reports them in the live XML; for
/// images of shut-off VMs through the volumes' backingStore and, on a proven-local connection, the qcow2 headers), other
/// VMs' external snapshot overlays, the disks their snapshots were taken from, and snapshot memory files.
/// Every destructive or exclusive command asks this one type.
/// </summary>
public sealed class StorageUsage
{
    private readonly KvmConnection _connection;
    private readonly Dictionary<string, List<StorageUse>> _uses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _identities = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StorageVolumeInfo?> _volumesByPath = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Pool, string Name), StorageVolumeInfo?> _volumes = new();
    private readonly Dictionary<string, string?> _backing = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, List<(string Path, StorageUse Use)>> _byVm = new();

    private StorageUsage(KvmConnection connection)
    {
        _connection = connection;
        IsLocal = connection.IsProvenLocal;
    }

    /// <summary>True when image paths are resolved on this machine too (symbolic links, qcow2 headers): the connection is proven local.</summary>
    public bool IsLocal { get; }

    /// <summary>Reads every VM on the host: their live and persistent XML (two bulk reads), their snapshots, and the backing chains.</summary>
    public static StorageUsage Read(KvmConnection connection, CancellationToken cancel = default)
    {
        var usage = new StorageUsage(connection);
        IReadOnlyList<DomainRef> domains = connection.Invoke(c => c.ListAllDomains(ListDomainsFlags.None));
        IReadOnlyList<string?> live = domains.Count == 0 ? [] : connection.Invoke(c => c.GetDomainXmls(domains, DomainXmlFlags.None));
        DomainRef[] running = domains.Where(d => d.Id >= 0).ToArray();
        IReadOnlyList<string?> inactive = running.Length == 0 ? [] : connection.Invoke(c => c.GetDomainXmls(running, DomainXmlFlags.Inactive));
        var next = new Dictionary<Guid, string?>();
        for (int i = 0; i < running.Length; i++)
        {
            next[running[i].Uuid] = inactive[i];
        }

        for (int n = 0; n < domains.Count; n++)
        {
            cancel.ThrowIfCancellationRequested();
            DomainRef d = domains[n];
            if (live[n] is not { } liveXml)
            {
                continue;   // undefined meanwhile
            }

            usage.AddDomain(d, XElement.Parse(liveXml), snapshot: null);
            if (next.TryGetValue(d.Uuid, out string? config) && config is not null)
            {
                usage.AddDomain(d, XElement.Parse(config), snapshot: null);
            }

            IReadOnlyList<SnapshotData> snapshots;
            try
            {
                snapshots = connection.Invoke(c => c.ListSnapshots(d));
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure)
            {
                continue;   // removed meanwhile, or a driver without snapshots
            }

            foreach (SnapshotData s in snapshots)
            {
                usage.AddSnapshot(d, XElement.Parse(s.Xml), s.Name);
            }
        }

        return usage;
    }

    /// <summary>
    /// The one identity of an image path: written with <c>//</c>, <c>/./</c> or <c>..</c> resolved, with symbolic links
    /// followed when the connection is proven local, and as libvirt spells the volume when the path is one.
    /// </summary>
    public string Identify(string path)
    {
        if (_identities.TryGetValue(path, out string? known))
        {
            return known;
        }

        string? normal = StoragePath.Normalize(path);
        string identity;
        if (normal is null)
        {
            identity = path;   // a network source name: compared as written
        }
        else
        {
            string resolved = IsLocal ? StoragePath.ResolveLinks(normal) : normal;
            StorageVolumeInfo? volume = VolumeByPath(resolved) ?? (resolved == normal ? null : VolumeByPath(normal));
            identity = volume is null ? resolved : CanonicalVolumePath(volume.Path);
        }

        _identities[path] = identity;
        return identity;
    }

    /// <summary>The identity of volume <paramref name="name"/> in <paramref name="pool"/>; null when libvirt does not know it.</summary>
    public string? IdentifyVolume(string pool, string name)
        => Volume(pool, name) is { } v ? CanonicalVolumePath(v.Path) : null;

    /// <summary>Every use of the image at <paramref name="path"/>, except by <paramref name="exceptVm"/>.</summary>
    public IReadOnlyList<StorageUse> UsersOf(string path, Guid? exceptVm = null)
        => _uses.TryGetValue(Identify(path), out List<StorageUse>? uses)
            ? uses.Where(u => u.VmUuid != exceptVm).OrderBy(u => u.VmName, StringComparer.Ordinal).ThenBy(u => u.Kind).ToList()
            : [];

    /// <summary>Names of the VMs that use the image at <paramref name="path"/>, sorted.</summary>
    public IReadOnlyList<string> VmNamesUsing(string path)
        => UsersOf(path).Select(u => u.VmName).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// For each candidate image: delete it when no VM other than <paramref name="exceptVm"/> uses it, else keep it and say who uses
    /// it. The same image spelled twice is listed once.
    /// </summary>
    public IReadOnlyList<StorageDisposition> Plan(IEnumerable<string> candidates, Guid? exceptVm)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<StorageDisposition>();
        foreach (string path in candidates)
        {
            string identity = Identify(path);
            if (seen.Add(identity))
            {
                IReadOnlyList<StorageUse> users = UsersOf(path, exceptVm);
                result.Add(new StorageDisposition(path, identity, users.Count == 0, users));
            }
        }

        return result;
    }

    /// <summary>
    /// The images that are the VM's own, for Remove-KvmVm -RemoveStorage: its writable disks (live or configured, file, block
    /// volume or volume sources), its cloud-init seed, its external snapshots' overlays and memory files and the disks they were
    /// taken from. Never CD-ROM media, read-only disks or base images (backing files).
    /// </summary>
    public IReadOnlyList<string> OwnedBy(Guid vm, string vmName)
    {
        if (!_byVm.TryGetValue(vm, out List<(string Path, StorageUse Use)>? uses))
        {
            return [];
        }

        string seed = $"{VmProvisioner.SafeFileName(vmName)}.cidata.iso";
        var own = new List<string>();
        foreach ((string path, StorageUse use) in uses)
        {
            bool mine = use.Kind switch
            {
                StorageUseKind.Disk or StorageUseKind.SnapshotBase => use.Device == "disk" && !use.ReadOnly
                    || use.Device == "cdrom" && Path.GetFileName(path) == seed,
                StorageUseKind.SnapshotOverlay or StorageUseKind.MemoryFile => true,
                _ => false,
            };
            if (mine && !own.Contains(path, StringComparer.Ordinal) && (path.StartsWith('/') && !IsBareDevice(path)))
            {
                own.Add(path);
            }
        }

        return own;
    }

    /// <summary>
    /// Refuses (DiskInUse, naming the other VM) to attach <paramref name="path"/> to <paramref name="vmName"/> when that would
    /// make a second writer: another VM writes it alone, or this attach would write an image others read (as a disk or a
    /// backing file), unless both sides mark it shareable or the new use is read-only.
    /// </summary>
    public void RequireNoConflict(string path, Guid? vm, string vmName, bool readOnly, bool shareable)
    {
        foreach (StorageUse use in UsersOf(path))
        {
            if (vm is { } self && use.VmUuid == self && use.Kind == StorageUseKind.Disk)
            {
                throw new KvmOperationException("DiskInUse", $"'{path}' is already attached to VM '{vmName}'.", path) { Kind = KvmErrorKind.InUse };
            }

            // read-only: only a VM that writes it alone is in the way; shareable: only VMs that share it writable too may use it;
            // a plain writer: nobody else may use it at all (not even as a backing file, which it would change under them)
            bool conflict = readOnly ? use.ExclusiveWriter
                : shareable ? !(use.Kind == StorageUseKind.Disk && use.Shareable)
                : true;
            if (conflict)
            {
                throw new KvmOperationException("DiskInUse",
                    $"'{path}' is used by {use}; attaching it {(readOnly ? "read-only while that VM writes to it" : "writable")} to '{vmName}' would make two VMs use one image unsafely. Nothing was changed.", path)
                {
                    Kind = KvmErrorKind.InUse,
                    Hint = use.Kind == StorageUseKind.Disk
                        ? "Use a copy of the image (Import-KvmVm -CopyStorage, Copy-KvmVolume), attach it read-only, or mark it shareable on every VM that uses it."
                        : "The image is the base of another VM's disk: attach a copy, or attach it read-only.",
                };
            }
        }
    }

    /// <summary>
    /// Deletes one image: through libvirt when it is a volume (refreshing its pool first when the file is in a pool folder but not
    /// yet listed); a file in no pool only when the connection is proven local; otherwise it is kept with a warning.
    /// Returns true when the image is gone.
    /// </summary>
    public static bool DeleteImage(KvmConnection connection, string path, IKvmLog log)
    {
        StorageVolumeInfo? vol = SafeVolumeByPath(connection, path);
        if (vol is null && connection.IsProvenLocal)
        {
            string resolved = StoragePath.ResolveLinks(StoragePath.Normalize(path) ?? path);
            vol = SafeVolumeByPath(connection, resolved);
        }

        if (vol is not null)
        {
            log.Verbose($"Deleting volume '{vol.Pool}/{vol.Name}' ({vol.Path})");
            connection.Invoke(c => c.DeleteStorageVolume(vol));
            connection.CacheNames(StorageService.VolumeKind(vol.Pool), connection.CachedNames(StorageService.VolumeKind(vol.Pool)).Where(n => n != vol.Name));
            return true;
        }

        if (!connection.IsProvenLocal)
        {
            log.Warning($"'{path}' is in no storage pool and {connection.HostName ?? connection.Uri} is not proven to be this machine ({connection.LocalityDetail}): it was not deleted.");
            return false;
        }

        if (IsBareDevice(path) || !File.Exists(path) || (File.GetAttributes(path) & FileAttributes.Device) != 0)
        {
            log.Warning($"'{path}' is in no storage pool and is no regular file here: it was not deleted.");
            return false;
        }

        log.Verbose($"Deleting disk file {path} (in no storage pool; the daemon runs on this machine: {connection.LocalityDetail})");
        File.Delete(path);
        return true;
    }

    // ------------------------------------------------------------------ building

    private void AddDomain(DomainRef d, XElement root, string? snapshot)
    {
        foreach (XElement disk in root.Element("devices")?.Elements("disk") ?? [])
        {
            string device = (string?)disk.Attribute("device") ?? "disk";
            bool readOnly = disk.Element("readonly") is not null || device == "cdrom";
            bool shareable = disk.Element("shareable") is not null;
            string target = (string?)disk.Element("target")?.Attribute("dev") ?? device;
            if (SourcePath(disk) is not { } top)
            {
                continue;   // an empty CD-ROM drive
            }

            StorageUseKind kind = snapshot is null ? StorageUseKind.Disk : StorageUseKind.SnapshotBase;
            Add(d, top, new StorageUse(d.Name, d.Uuid, kind, readOnly, shareable, device, snapshot));
            AddChain(d, disk, top, target, snapshot);
        }
    }

    private void AddSnapshot(DomainRef d, XElement snap, string name)
    {
        XElement? memory = snap.Element("memory");
        if ((string?)memory?.Attribute("snapshot") == "external" && (string?)memory.Attribute("file") is { Length: > 0 } mem)
        {
            Add(d, mem, new StorageUse(d.Name, d.Uuid, StorageUseKind.MemoryFile, false, false, null, name));
        }

        foreach (XElement disk in snap.Element("disks")?.Elements("disk") ?? [])
        {
            if ((string?)disk.Attribute("snapshot") == "external" && SourcePath(disk) is { } overlay)
            {
                string target = (string?)disk.Attribute("name") ?? "disk";
                Add(d, overlay, new StorageUse(d.Name, d.Uuid, StorageUseKind.SnapshotOverlay, false, false, "disk", name));
                AddChain(d, disk, overlay, target, name);
            }
        }

        if (snap.Element("domain") is { } before)
        {
            AddDomain(d, before, name);
        }
    }

    /// <summary>The chain under a disk: the backingStore elements libvirt reports, then each image's own backing reference.</summary>
    private void AddChain(DomainRef d, XElement disk, string top, string target, string? snapshot)
    {
        string current = top;
        var visited = new HashSet<string>(StringComparer.Ordinal) { Identify(top) };
        for (XElement? b = disk.Element("backingStore"); b is not null && b.Element("source") is not null; b = b.Element("backingStore"))
        {
            if (SourcePath(b) is not { } path || !visited.Add(Identify(path)))
            {
                break;
            }

            Add(d, path, new StorageUse(d.Name, d.Uuid, StorageUseKind.Backing, true, false, target, snapshot));
            current = path;
        }

        while (BackingOf(current) is { } next && visited.Add(Identify(next)))
        {
            Add(d, next, new StorageUse(d.Name, d.Uuid, StorageUseKind.Backing, true, false, target, snapshot));
            current = next;
        }
    }

    private void Add(DomainRef d, string path, StorageUse use)
    {
        string identity = Identify(path);
        if (!_uses.TryGetValue(identity, out List<StorageUse>? list))
        {
            _uses[identity] = list = [];
        }

        if (!list.Contains(use))
        {
            list.Add(use);
        }

        if (!_byVm.TryGetValue(d.Uuid, out List<(string, StorageUse)>? mine))
        {
            _byVm[d.Uuid] = mine = [];
        }

        if (!mine.Any(m => m.Item1 == path && m.Item2 == use))
        {
            mine.Add((path, use));
        }
    }

    /// <summary>A disk's or backingStore's source: file, dev or dir; a volume's path; a network source's protocol/name.</summary>
    private string? SourcePath(XElement disk)
    {
        XElement? source = disk.Element("source");
        if (source is null)
        {
            return null;
        }

        if (((string?)source.Attribute("file") ?? (string?)source.Attribute("dev") ?? (string?)source.Attribute("dir")) is { Length: > 0 } direct)
        {
            return direct;
        }

        if ((string?)source.Attribute("pool") is { } pool && (string?)source.Attribute("volume") is { } volume)
        {
            return Volume(pool, volume)?.Path ?? $"{pool}/{volume}";
        }

        if ((string?)source.Attribute("protocol") is { } protocol && (string?)source.Attribute("name") is { } name)
        {
            return $"{protocol}:{name}";
        }

        return null;
    }

    /// <summary>The image's backing file: the volume's backingStore, else (proven local) the qcow2 header's reference.</summary>
    private string? BackingOf(string path)
    {
        string identity = Identify(path);
        if (_backing.TryGetValue(identity, out string? known))
        {
            return known;
        }

        string? backing = null;
        if (identity.StartsWith('/'))
        {
            if (VolumeByPath(identity) is { } v)
            {
                try
                {
                    backing = (string?)XElement.Parse(_connection.Invoke(c => c.GetStorageVolumeXml(v))).Element("backingStore")?.Element("path");
                }
                catch (LibvirtException e) when (!e.IsConnectionFailure)
                {
                    backing = null;
                }
            }

            if (string.IsNullOrEmpty(backing) && IsLocal)
            {
                backing = StoragePath.ReadQcow2Backing(identity);
            }
        }

        _backing[identity] = string.IsNullOrEmpty(backing) ? null : backing;
        return _backing[identity];
    }

    private StorageVolumeInfo? VolumeByPath(string path)
    {
        if (!_volumesByPath.TryGetValue(path, out StorageVolumeInfo? v))
        {
            _volumesByPath[path] = v = SafeVolumeByPath(_connection, path);
        }

        return v;
    }

    private StorageVolumeInfo? Volume(string pool, string name)
    {
        if (!_volumes.TryGetValue((pool, name), out StorageVolumeInfo? v))
        {
            try
            {
                v = _connection.Invoke(c => c.LookupStorageVolume(pool, name));
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure)
            {
                v = null;   // pool gone or not running
            }

            _volumes[(pool, name)] = v;
        }

        return v;
    }

    private string CanonicalVolumePath(string path)
    {
        string normal = StoragePath.Normalize(path) ?? path;
        return IsLocal ? StoragePath.ResolveLinks(normal) : normal;
    }

    private static StorageVolumeInfo? SafeVolumeByPath(KvmConnection connection, string path)
    {
        if (!path.StartsWith('/'))
        {
            return null;
        }

        try
        {
            return connection.Invoke(c => c.LookupStorageVolumeByPath(path));
        }
        catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
        {
            return null;
        }
    }

    /// <summary>A device node path (/dev/...): never deleted as a file.</summary>
    private static bool IsBareDevice(string path) => path.StartsWith("/dev/", StringComparison.Ordinal);
}
