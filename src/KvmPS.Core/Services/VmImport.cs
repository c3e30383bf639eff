using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// Disk images of a VM definition being imported (Import-KvmVm): refused when another VM uses them as a writer (two VMs on
/// one writable image corrupt it), or copied into new volumes first (-CopyStorage).
/// </summary>
public static class VmImport
{
    /// <summary>Refuses (DiskInUse) a libvirt domain definition whose writable disks another VM uses; read-only and shareable disks pass as the usage graph allows.</summary>
    public static void CheckDisks(KvmConnection connection, XElement domain, string name, CancellationToken cancel = default)
    {
        List<(XElement Disk, string Path)> disks = WritableImages(connection, domain, includeShareable: true);
        if (disks.Count == 0)
        {
            return;
        }

        StorageUsage usage = StorageUsage.Read(connection, cancel);
        foreach ((XElement disk, string path) in disks)
        {
            usage.RequireNoConflict(path, null, name, readOnly: false, shareable: disk.Element("shareable") is not null);
        }
    }

    /// <summary>
    /// Copies each writable disk image of <paramref name="domain"/> (not read-only, not shareable, not a CD-ROM) into a new
    /// volume in the same pool, named after <paramref name="name"/>, and points the definition at the copies. On failure or
    /// cancel the copies made so far are deleted. Returns the copies (the caller deletes them when defining fails).
    /// </summary>
    public static IReadOnlyList<KvmVolume> CopyDisks(KvmConnection connection, XElement domain, string name, IKvmLog log, CancellationToken cancel)
    {
        var copies = new List<KvmVolume>();
        try
        {
            foreach ((XElement disk, string path) in WritableImages(connection, domain, includeShareable: false))
            {
                KvmVolume copy = CopyOne(connection, path, name, (string?)disk.Element("target")?.Attribute("dev") ?? $"disk{copies.Count}", log, cancel);
                copies.Add(copy);
                XElement source = disk.Element("source")!;
                disk.SetAttributeValue("type", "file");
                source.RemoveAttributes();
                source.SetAttributeValue("file", copy.Path);
                disk.Element("backingStore")?.Remove();
                disk.Element("driver")?.SetAttributeValue("type", copy.Format ?? "raw");
            }
        }
        catch
        {
            DeleteCopies(connection, copies, log);
            throw;
        }

        return copies;
    }

    /// <summary>Copies each existing writable image of a spec (disks given by Path only) into a new volume and points the spec at it.</summary>
    public static IReadOnlyList<KvmVolume> CopyDisks(KvmConnection connection, VmSpec spec, IKvmLog log, CancellationToken cancel)
    {
        var copies = new List<KvmVolume>();
        try
        {
            for (int i = 0; i < spec.Disks.Count; i++)
            {
                VmDiskSpec d = spec.Disks[i];
                if (d.Path is null || d.SizeBytes is not null || d.BaseImage is not null || d.ReadOnly || d.Device == "cdrom")
                {
                    continue;
                }

                KvmVolume copy = CopyOne(connection, d.Path, spec.Name, $"disk{i}", log, cancel);
                copies.Add(copy);
                d.Path = copy.Path;
                d.Format = copy.Format ?? d.Format;
            }
        }
        catch
        {
            DeleteCopies(connection, copies, log);
            throw;
        }

        return copies;
    }

    /// <summary>Deletes copies made by <see cref="CopyDisks(KvmConnection, XElement, string, IKvmLog, CancellationToken)"/> (rollback); failures are warnings.</summary>
    public static void DeleteCopies(KvmConnection connection, IEnumerable<KvmVolume> copies, IKvmLog log)
    {
        foreach (KvmVolume copy in copies)
        {
            try
            {
                log.Verbose($"Rolling back: deleting the copy {copy.Path}");
                StorageUsage.DeleteImage(connection, copy.Path, log);
            }
            catch (Exception e) when (e is LibvirtException or IOException or UnauthorizedAccessException)
            {
                log.Warning($"Could not delete the copy {copy.Path} while rolling back: {e.Message}");
            }
        }
    }

    private static KvmVolume CopyOne(KvmConnection connection, string path, string vmName, string target, IKvmLog log, CancellationToken cancel)
    {
        StorageVolumeInfo info = StorageService.ResolveVolumeReference(connection, path)
            ?? (connection.IsProvenLocal ? StorageService.ResolveVolumeReference(connection, StoragePath.ResolveLinks(StoragePath.Normalize(path) ?? path)) : null)
            ?? throw new KvmOperationException("DiskNotInPool",
                $"'{path}' is in no storage pool, so it cannot be copied through libvirt. Nothing was imported.", path)
            {
                Kind = KvmErrorKind.InvalidArgument,
                Hint = "Move the image into a pool's folder (then Update-KvmStoragePool), or import without -CopyStorage once the other VM no longer uses it.",
            };
        KvmVolume source = StorageService.GetVolume(connection, info.Pool, info.Name, null);
        string ext = Path.GetExtension(info.Name) is { Length: > 0 } e ? e : (source.Format is { } f ? "." + f : string.Empty);
        string baseName = $"{VmProvisioner.SafeFileName(vmName)}-{target}";
        string newName = baseName + ext;
        for (int n = 2; StorageService.ResolveVolumeReference(connection, $"{info.Pool}/{newName}") is not null; n++)
        {
            newName = $"{baseName}-{n}{ext}";
        }

        log.Verbose($"Copying {info.Path} to a new volume '{info.Pool}/{newName}' for VM '{vmName}'");
        return StorageService.CopyVolume(source, info.Pool, newName, log, cancel);
    }

    private static List<(XElement Disk, string Path)> WritableImages(KvmConnection connection, XElement domain, bool includeShareable)
    {
        var result = new List<(XElement, string)>();
        foreach (XElement disk in domain.Element("devices")?.Elements("disk") ?? [])
        {
            string device = (string?)disk.Attribute("device") ?? "disk";
            if (device is "cdrom" or "floppy" || disk.Element("readonly") is not null || (!includeShareable && disk.Element("shareable") is not null))
            {
                continue;
            }

            XElement? source = disk.Element("source");
            string? path = (string?)source?.Attribute("file") ?? (string?)source?.Attribute("dev");
            if (path is null && (string?)source?.Attribute("pool") is { } pool && (string?)source?.Attribute("volume") is { } volume)
            {
                path = StorageService.ResolveVolumeReference(connection, $"{pool}/{volume}")?.Path;
            }

            if (path is not null)
            {
                result.Add((disk, path));
            }
        }

        return result;
    }
}
