using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// Copies a shut-off VM with its disks into a new VM with its own identity (name, UUID, MAC addresses, a fresh NVRAM):
/// a full copy of every writable disk (on the same host through libvirt's clone, to another host through volume
/// streams), or linked copies (qcow2 overlays on the source's disks, same host only). Nothing is left behind on failure.
/// </summary>
public static class VmCopyService
{
    public static KvmVm Copy(KvmVm vm, string newName, bool linked, KvmConnection? destination, string? destinationPool, bool start, IKvmLog log, CancellationToken cancel)
    {
        KvmConnection source = vm.Connection;
        KvmConnection target = destination ?? source;
        bool sameHost = destination is null || ReferenceEquals(destination, source)
            || KvmConnection.HostUuidOf(source.Invoke(c => c.GetCapabilities())) == KvmConnection.HostUuidOf(target.Invoke(c => c.GetCapabilities()));
        VmSpecValidator.ValidateName(newName);
        (int state, _) = source.Invoke(c => c.GetDomainState(vm.Ref));
        if (state != 5)
        {
            throw new KvmOperationException("VmStateInvalid",
                $"'{vm.Name}' is {(KvmVmState)state}: a copy is made of a shut-off VM, so that its disks do not change while they are read.", vm.Name)
            {
                Kind = KvmErrorKind.InvalidOperation,
                Hint = $"Stop-KvmVm {vm.Name}, copy it, then start it again.",
            };
        }

        if (linked && !sameHost)
        {
            throw new KvmOperationException("LinkedCopyNeedsSameHost",
                "A linked copy uses the source's disks as its base, so it must be on the same host. Leave out -Linked for a full copy to another host.", vm.Name)
            { Kind = KvmErrorKind.InvalidArgument };
        }

        if (VmService.GetByName(target, newName) is not null)
        {
            throw new KvmOperationException("VmExists", $"A VM named '{newName}' already exists on {target.Uri}.", newName) { Kind = KvmErrorKind.AlreadyExists };
        }

        XElement domain = XElement.Parse(source.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive | DomainXmlFlags.Secure)));
        // the new identity: name, UUID (fixed here so an interrupted define can be undone exactly), MACs, NVRAM
        domain.SetElementValue("name", newName);
        domain.Element("uuid")?.Remove();
        Guid uuid = Guid.NewGuid();
        domain.Element("name")!.AddAfterSelf(new XElement("uuid", uuid.ToString("D")));
        foreach (XElement mac in domain.Descendants("interface").Elements("mac").ToList())
        {
            mac.Remove();
        }

        domain.Element("os")?.Element("nvram")?.Remove();
        domain.Element("title")?.Remove();

        var undo = new UndoLog(log);
        try
        {
            foreach (XElement disk in (domain.Element("devices")?.Elements("disk") ?? []).ToList())
            {
                cancel.ThrowIfCancellationRequested();
                CopyDisk(source, target, sameHost, disk, newName, linked, destinationPool, undo, log, cancel);
            }

            string xml = domain.ToString();
            log.Verbose($"Defining the copy '{newName}' ({uuid}) on {target.Uri}");
            _ = undo.Call(target, $"undefine the copy {newName}", c => c.DefineDomain(xml, 0),
                d => Undefine(target, d.Uuid), () => Undefine(target, uuid));
            KvmVm copy = VmService.GetByUuid(target, uuid)
                ?? throw new KvmOperationException("VmNotFound", $"The copy '{newName}' was defined but {target.Uri} does not list it.", newName);
            undo.Commit();
            if (start)
            {
                VmLifecycle.Start(copy, log);
                copy = VmService.Refresh(copy);
            }

            return copy;
        }
        catch
        {
            undo.Rollback();
            throw;
        }
    }

    private static void Undefine(KvmConnection connection, Guid uuid)
    {
        if (VmService.GetByUuid(connection, uuid) is { } vm)
        {
            connection.Invoke(c => { c.UndefineDomain(vm.Ref, DomainUndefineFlags.Nvram | DomainUndefineFlags.SnapshotsMetadata); return 0; });
        }
    }

    private static void CopyDisk(KvmConnection source, KvmConnection target, bool sameHost, XElement disk, string newName, bool linked,
        string? destinationPool, UndoLog undo, IKvmLog log, CancellationToken cancel)
    {
        string device = (string?)disk.Attribute("device") ?? "disk";
        string dev = (string?)disk.Element("target")?.Attribute("dev") ?? "disk";
        XElement? src = disk.Element("source");
        string type = (string?)disk.Attribute("type") ?? "file";
        string? path = type switch
        {
            "file" => (string?)src?.Attribute("file"),
            "block" => (string?)src?.Attribute("dev"),
            "volume" => src is null ? null : source.Invoke(c => c.LookupStorageVolume((string?)src.Attribute("pool") ?? string.Empty, (string?)src.Attribute("volume") ?? string.Empty))?.Path,
            _ => null,
        };
        bool shared = device != "disk" || disk.Element("readonly") is not null || disk.Element("shareable") is not null;
        if (path is null || shared)
        {
            // CD-ROMs and read-only or shareable disks are used as they are: on another host they must be there too
            if (path is not null && !sameHost && target.Invoke(c => c.LookupStorageVolumeByPath(path)) is null)
            {
                throw new KvmOperationException("StorageNotShared",
                    $"The {device} {dev} ({path}) is not copied (read-only or shared) and {target.Uri} has no volume at that path.", path)
                {
                    Kind = KvmErrorKind.NotFound,
                    Hint = "Eject it (Set-KvmVmDvdDrive) or make the image available on the destination first.",
                };
            }

            if (path is null && type is not "file" and not "block" and not "volume" && src is not null)
            {
                throw new KvmOperationException("StorageNotSupported", $"The {type} disk {dev} cannot be copied by KvmPS.", dev) { Kind = KvmErrorKind.NotSupported };
            }

            return;
        }

        StorageVolumeInfo from = source.Invoke(c => c.LookupStorageVolumeByPath(path))
            ?? throw new KvmOperationException("DiskNotInPool", $"The disk {dev} ({path}) is in no storage pool, so it cannot be copied through libvirt.", path)
            {
                Kind = KvmErrorKind.InvalidArgument,
                Hint = "Move the image into a pool's folder (then Update-KvmStoragePool).",
            };
        string format = (string?)XElement.Parse(source.Invoke(c => c.GetStorageVolumeXml(from))).Element("target")?.Element("format")?.Attribute("type") ?? "raw";
        string pool = destinationPool ?? (sameHost || target.Invoke(c => c.ListStoragePoolNames()).Contains(from.Pool) ? from.Pool : "default");
        string ext = linked ? ".qcow2" : Path.GetExtension(from.Name) is { Length: > 0 } e ? e : "." + format;
        string name = $"{VmProvisioner.SafeFileName(newName)}-{dev}{ext}";
        StorageVolumeInfo copy;
        if (linked)
        {
            log.Verbose($"Creating the linked copy {pool}/{name} on top of {path}");
            KvmVolume overlay = StorageService.CreateVolume(target, pool, name, from.CapacityBytes, "qcow2", path, log);
            undo.Add($"remove the copy {pool}/{name}", () => StorageService.DeleteVolumeIfPresent(target, pool, name));
            copy = target.Invoke(c => c.LookupStorageVolume(pool, name))!;
            _ = overlay;
            format = "qcow2";
        }
        else if (sameHost)
        {
            KvmVolume cloned = StorageService.CopyVolume(StorageService.GetVolume(source, from.Pool, from.Name, null), pool, name, log, cancel);
            undo.Add($"remove the copy {pool}/{name}", () => StorageService.DeleteVolumeIfPresent(target, pool, name));
            copy = target.Invoke(c => c.LookupStorageVolume(pool, cloned.Name))!;
        }
        else
        {
            StorageService.ValidateVolumeName(name);
            KvmStoragePool p = StorageService.RequireRunningPool(target, pool);
            if (from.AllocationBytes > p.AvailableBytes)
            {
                throw new KvmOperationException("InsufficientStorage",
                    $"Pool '{pool}' on {target.Uri} has {ByteSize.Format(p.AvailableBytes)} free; the disk {dev} needs {ByteSize.Format(from.AllocationBytes)}.", pool)
                { Kind = KvmErrorKind.Unavailable };
            }

            var xml = new XElement("volume",
                new XElement("name", name),
                new XElement("capacity", new XAttribute("unit", "bytes"), from.CapacityBytes),
                new XElement("allocation", new XAttribute("unit", "bytes"), 0),
                new XElement("target", new XElement("format", new XAttribute("type", format)), format == "qcow2" ? new XElement("compat", "1.1") : null));
            copy = undo.Call(target, $"remove the copy {pool}/{name}", c => c.CreateStorageVolume(pool, xml.ToString(), 0),
                _ => StorageService.DeleteVolumeIfPresent(target, pool, name), () => StorageService.DeleteVolumeIfPresent(target, pool, name));
            string activity = $"Copying {dev} of the VM to {target.HostName ?? target.Uri}";
            log.Verbose($"Copying {path} to {target.Uri} {pool}/{name}");
            _ = MigrationService.StreamVolume(source, from, target, copy, n => log.Progress(activity, $"{ByteSize.Format(n)}",
                from.AllocationBytes == 0 ? -1 : (int)Math.Min(99, 100.0 * n / Math.Max(from.AllocationBytes, 1))), cancel);
            log.Progress(activity, "done", 100, completed: true);
        }

        disk.SetAttributeValue("type", "file");
        src!.RemoveAttributes();
        src.SetAttributeValue("file", copy.Path);
        disk.Element("backingStore")?.Remove();
        disk.Element("driver")?.SetAttributeValue("type", format);
    }
}
