using System.Globalization;
using System.Xml.Linq;
using KvmPS.Core.Backend;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Services;

/// <summary>Takes, lists, restores and removes snapshots, choosing internal or external as the VM and libvirt allow.</summary>
public static class SnapshotService
{
    /// <summary>libvirt can revert to external snapshots from this version on.</summary>
    public static readonly Version ExternalRevertVersion = new(9, 9, 0);

    /// <summary>libvirt can delete external snapshots (merging the overlays) from this version on.</summary>
    public static readonly Version ExternalDeleteVersion = new(9, 0, 0);

    /// <summary>libvirt can take internal snapshots of UEFI (pflash) VMs from this version on.</summary>
    public static readonly Version InternalPflashVersion = new(10, 10, 0);

    /// <summary>The VM's snapshots with parents and children filled in.</summary>
    public static IReadOnlyList<KvmSnapshot> List(KvmVm vm)
    {
        IReadOnlyList<SnapshotData> data = vm.Connection.Invoke(c => c.ListSnapshots(vm.Ref));
        List<KvmSnapshot> snaps = data.Select(d => Parse(d, vm)).ToList();
        foreach (KvmSnapshot s in snaps)
        {
            s.Children = snaps.Where(c => c.Parent == s.Name).Select(c => c.Name).ToArray();
        }

        return snaps.OrderBy(s => s.CreationTime).ThenBy(s => s.Name, StringComparer.Ordinal).ToList();
    }

    public static KvmSnapshot? Get(KvmVm vm, string name) => List(vm).FirstOrDefault(s => s.Name == name);

    /// <summary>
    /// Takes a snapshot. Internal when every disk is qcow2 and the firmware allows it; external otherwise
    /// (UEFI VMs on libvirt before 10.10, raw disks, -DiskOnly). Atomic: libvirt leaves nothing half-made.
    /// </summary>
    public static KvmSnapshot Create(KvmVm vm, string name, string? description, bool diskOnly, bool quiesce, IKvmLog log)
    {
        ValidateName(name);
        KvmVm now = VmService.Refresh(vm);
        if (List(vm).Any(s => s.Name == name))
        {
            throw new KvmOperationException("SnapshotExists", $"VM '{vm.Name}' already has a snapshot named '{name}'.", name)
            {
                Hint = "Choose another -SnapshotName, or remove the old one with Remove-KvmSnapshot.",
            };
        }

        bool running = now.Id is not null;
        if (quiesce && !running)
        {
            throw new KvmOperationException("VmStateInvalid", $"-Quiesce needs VM '{vm.Name}' running with its guest agent; it is {now.State}.", vm.Name);
        }

        DomainConfig config = DomainXml.Parse(vm.Connection.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive)));
        List<KvmVmDisk> disks = config.Disks.Where(d => d.Device == "disk" && d.Path is not null).ToList();
        (KvmSnapshotKind kind, string why) = ChooseKind(vm.Connection, config, disks, diskOnly || quiesce);
        log.Verbose($"Taking {kind.ToString().ToLowerInvariant()} snapshot '{name}' of VM '{vm.Name}': {why}");

        var xml = new XElement("domainsnapshot", new XElement("name", name),
            string.IsNullOrEmpty(description) ? null : new XElement("description", description));
        SnapshotCreateFlags flags = SnapshotCreateFlags.Atomic;
        if (kind == KvmSnapshotKind.External)
        {
            if (disks.Count == 0)
            {
                throw new KvmOperationException("SnapshotUnsupported", $"VM '{vm.Name}' has no disk to take an external snapshot of.", vm.Name);
            }

            bool withMemory = running && !diskOnly && !quiesce;
            if (withMemory)
            {
                string dir = Path.GetDirectoryName(disks[0].Path!) ?? "/var/lib/libvirt/images";
                xml.Add(new XElement("memory", new XAttribute("snapshot", "external"),
                    new XAttribute("file", Path.Combine(dir, $"{VmProvisioner.SafeFileName(vm.Name)}.{VmProvisioner.SafeFileName(name)}.mem"))));
            }
            else
            {
                flags |= SnapshotCreateFlags.DiskOnly;   // a running VM switches to the overlays live
            }

            xml.Add(new XElement("disks", config.Disks.Select(d => new XElement("disk", new XAttribute("name", d.Target),
                new XAttribute("snapshot", d.Device == "disk" && d.Path is not null && !d.ReadOnly ? "external" : "no")))));
        }

        if (quiesce)
        {
            flags |= SnapshotCreateFlags.Quiesce;
        }

        try
        {
            string created = vm.Connection.Invoke(c => c.CreateSnapshot(vm.Ref, xml.ToString(), flags));
            if (now.State == KvmVmState.Running && (KvmVmState)vm.Connection.Invoke(c => c.GetDomainState(vm.Ref)).State == KvmVmState.Paused)
            {
                // An external snapshot with memory pauses the guest to save it; it was running, so it runs on.
                log.Verbose($"Resuming VM '{vm.Name}' after saving its memory");
                vm.Connection.Invoke(c => c.ResumeDomain(vm.Ref));
            }

            return Get(vm, created) ?? throw new KvmOperationException("SnapshotNotFound", $"Snapshot '{created}' vanished after it was taken.", created);
        }
        catch (LibvirtException e) when (quiesce && IsAgentProblem(e))
        {
            throw new KvmOperationException("GuestAgentUnavailable",
                $"Cannot quiesce VM '{vm.Name}': its guest agent does not answer ({e.Message}). No snapshot was taken.", vm.Name, e)
            {
                Hint = "Install and start qemu-guest-agent in the guest, or take the snapshot without -Quiesce.",
            };
        }
    }

    /// <summary>Reverts the VM to the snapshot; the VM runs, pauses or stays off as the snapshot (or the flags) say.</summary>
    public static void Restore(KvmSnapshot snapshot, bool start, bool paused, IKvmLog log)
    {
        RequireExternalSupport(snapshot, "restore", ExternalRevertVersion);
        SnapshotRevertFlags flags = start ? SnapshotRevertFlags.Running : paused ? SnapshotRevertFlags.Paused : SnapshotRevertFlags.None;
        log.Verbose($"Reverting VM '{snapshot.VMName}' to snapshot '{snapshot.Name}'");
        var d = new DomainRef(snapshot.VMName, snapshot.VMUuid, -1);
        try
        {
            snapshot.Connection.Invoke(c => c.RevertToSnapshot(d, snapshot.Name, flags));
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomainSnapshot)
        {
            throw new KvmOperationException("SnapshotNotFound", $"VM '{snapshot.VMName}' has no snapshot '{snapshot.Name}' any more.", snapshot.Name, e);
        }
    }

    /// <summary>Deletes the snapshot; its children are re-parented to its parent unless <paramref name="includeChildren"/>.</summary>
    public static void Remove(KvmSnapshot snapshot, bool includeChildren, IKvmLog log)
    {
        RequireExternalSupport(snapshot, "remove", ExternalDeleteVersion);
        log.Verbose(includeChildren && snapshot.Children.Count > 0
            ? $"Removing snapshot '{snapshot.Name}' of VM '{snapshot.VMName}' and its {snapshot.Children.Count} child snapshot(s)"
            : $"Removing snapshot '{snapshot.Name}' of VM '{snapshot.VMName}'");
        var d = new DomainRef(snapshot.VMName, snapshot.VMUuid, -1);
        var memoryFiles = new List<string>();
        if (snapshot.MemoryFile is not null)
        {
            memoryFiles.Add(snapshot.MemoryFile);
        }

        if (includeChildren)
        {
            // every descendant goes too: collect their memory files first
            List<KvmSnapshot> all = snapshot.Connection.Invoke(c => c.ListSnapshots(d)).Select(x => Parse(x, new KvmVm(snapshot.Connection, d))).ToList();
            var queue = new Queue<string>([snapshot.Name]);
            while (queue.Count > 0)
            {
                string parent = queue.Dequeue();
                foreach (KvmSnapshot child in all.Where(x => x.Parent == parent))
                {
                    queue.Enqueue(child.Name);
                    if (child.MemoryFile is not null)
                    {
                        memoryFiles.Add(child.MemoryFile);
                    }
                }
            }
        }

        try
        {
            snapshot.Connection.Invoke(c => c.DeleteSnapshot(d, snapshot.Name, includeChildren ? SnapshotDeleteFlags.Children : SnapshotDeleteFlags.None));
            if (memoryFiles.Count > 0)
            {
                // the snapshot metadata is gone; a memory file is deleted only when nothing else refers to it, and as a plain
                // file only on a daemon proven to be this machine
                StorageUsage usage = StorageUsage.Read(snapshot.Connection);
                foreach (StorageDisposition file in usage.Plan(memoryFiles, exceptVm: null))
                {
                    if (!file.Delete)
                    {
                        log.Warning($"Kept the memory file {file.Path}: {file.Reason}.");
                    }
                    else if (snapshot.Connection.IsProvenLocal && !File.Exists(file.Path))
                    {
                        log.Verbose($"The memory file {file.Path} is already gone");
                    }
                    else
                    {
                        StorageUsage.DeleteImage(snapshot.Connection, file.Path, log);
                    }
                }
            }
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomainSnapshot)
        {
            throw new KvmOperationException("SnapshotNotFound", $"VM '{snapshot.VMName}' has no snapshot '{snapshot.Name}' any more.", snapshot.Name, e);
        }
    }

    /// <summary>
    /// Renames a snapshot. libvirt has no rename, so the metadata is redefined under the new name; that is only
    /// safe for external snapshots (internal ones are named inside the qcow2 images).
    /// </summary>
    public static KvmSnapshot Rename(KvmSnapshot snapshot, string newName, IKvmLog log)
    {
        ValidateName(newName);
        var vmRef = new DomainRef(snapshot.VMName, snapshot.VMUuid, -1);
        var vm = VmService.GetByUuid(snapshot.Connection, snapshot.VMUuid)
            ?? throw new KvmOperationException("VmNotFound", $"VM '{snapshot.VMName}' no longer exists.", snapshot.VMName);
        if (List(vm).Any(s => s.Name == newName))
        {
            throw new KvmOperationException("SnapshotExists", $"VM '{snapshot.VMName}' already has a snapshot named '{newName}'.", newName);
        }

        if (snapshot.Kind == KvmSnapshotKind.Internal)
        {
            throw new KvmOperationException("SnapshotRenameUnsupported",
                $"Snapshot '{snapshot.Name}' is internal: its name is stored inside the VM's qcow2 images, and libvirt cannot rename it.", snapshot.Name)
            {
                Hint = "Take a new snapshot with the name you want (Checkpoint-KvmVm -SnapshotName) and remove the old one.",
            };
        }

        string xml = snapshot.Connection.Invoke(c => c.ListSnapshots(vmRef)).FirstOrDefault(s => s.Name == snapshot.Name)?.Xml
            ?? throw new KvmOperationException("SnapshotNotFound", $"VM '{snapshot.VMName}' has no snapshot '{snapshot.Name}' any more.", snapshot.Name);
        XElement root = XElement.Parse(xml);
        root.SetElementValue("name", newName);
        log.Verbose($"Renaming snapshot '{snapshot.Name}' of VM '{snapshot.VMName}' to '{newName}' (redefining its metadata)");
        SnapshotCreateFlags flags = SnapshotCreateFlags.Redefine | (snapshot.IsCurrent ? SnapshotCreateFlags.Current : 0);
        // Children first point at the new name (redefined), then the old entry goes: if a step fails, the old
        // entry is still there and the new one is removed again.
        snapshot.Connection.Invoke(c => c.CreateSnapshot(vmRef, root.ToString(), flags));
        var repointed = new List<(string Child, string OldXml)>();
        try
        {
            foreach (string child in snapshot.Children)
            {
                string oldXml = snapshot.Connection.Invoke(c => c.ListSnapshots(vmRef)).First(s => s.Name == child).Xml;
                XElement cx = XElement.Parse(oldXml);
                cx.Element("parent")?.SetElementValue("name", newName);
                snapshot.Connection.Invoke(c => c.CreateSnapshot(vmRef, cx.ToString(), SnapshotCreateFlags.Redefine));
                repointed.Add((child, oldXml));
            }

            snapshot.Connection.Invoke(c => c.DeleteSnapshot(vmRef, snapshot.Name, SnapshotDeleteFlags.MetadataOnly));
        }
        catch (LibvirtException)
        {
            foreach ((string _, string oldXml) in repointed)
            {
                snapshot.Connection.Invoke(c => c.CreateSnapshot(vmRef, oldXml, SnapshotCreateFlags.Redefine));
            }

            snapshot.Connection.Invoke(c => c.DeleteSnapshot(vmRef, newName, SnapshotDeleteFlags.MetadataOnly));
            throw;
        }

        return Get(vm, newName)!;
    }

    internal static (KvmSnapshotKind Kind, string Why) ChooseKind(KvmConnection connection, DomainConfig config, IReadOnlyList<KvmVmDisk> disks, bool diskOnly)
    {
        if (diskOnly)
        {
            return (KvmSnapshotKind.External, "a disk-only snapshot is an external overlay");
        }

        if (disks.Any(d => d.Format is not null && d.Format != "qcow2"))
        {
            return (KvmSnapshotKind.External, "internal snapshots need qcow2 disks, and this VM has a raw one");
        }

        if (config.Firmware == KvmFirmware.Uefi && connection.LibvirtVersion < InternalPflashVersion
            && string.Equals(connection.Hypervisor, "QEMU", StringComparison.OrdinalIgnoreCase))
        {
            return (KvmSnapshotKind.External, $"the VM boots UEFI (pflash), and libvirt {connection.LibvirtVersion} takes internal snapshots of such VMs only from {InternalPflashVersion}");
        }

        return (KvmSnapshotKind.Internal, "all disks are qcow2");
    }

    private static void RequireExternalSupport(KvmSnapshot snapshot, string action, Version needed)
    {
        if (snapshot.Kind == KvmSnapshotKind.External && snapshot.Connection.LibvirtVersion < needed
            && string.Equals(snapshot.Connection.Hypervisor, "QEMU", StringComparison.OrdinalIgnoreCase))
        {
            throw new KvmOperationException("SnapshotUnsupported",
                $"Snapshot '{snapshot.Name}' of VM '{snapshot.VMName}' is external; libvirt {snapshot.Connection.LibvirtVersion} on {snapshot.Connection.HostName} cannot {action} external snapshots. libvirt {needed} or later can.", snapshot.Name)
            {
                Hint = $"Upgrade libvirt on the host to {needed} or later. The snapshot files are untouched.",
            };
        }
    }

    private static bool IsAgentProblem(LibvirtException e)
        => e.Code is LibvirtErrorCode.AgentUnresponsive or LibvirtErrorCode.AgentUnsynced
           || e.Message.Contains("agent", StringComparison.OrdinalIgnoreCase);

    internal static void ValidateName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Any(char.IsControl) || name.Contains('/') || name.Length > 200)
        {
            throw new KvmOperationException("InvalidName", $"'{name}' is not a usable snapshot name (no slashes, control characters or empty names; at most 200 characters).", name);
        }
    }

    internal static KvmSnapshot Parse(SnapshotData d, KvmVm vm)
    {
        XElement root = XElement.Parse(d.Xml);
        XElement? memory = root.Element("memory");
        string? memorySnapshot = (string?)memory?.Attribute("snapshot");
        var disks = (root.Element("disks")?.Elements("disk") ?? []).Select(x => new KvmSnapshotDisk(
            (string?)x.Attribute("name") ?? string.Empty,
            (string?)x.Attribute("snapshot") ?? "internal",
            (string?)x.Element("source")?.Attribute("file"))).ToList();
        string? state = (string?)root.Element("state");
        bool external = memorySnapshot == "external" || disks.Any(x => x.Snapshot == "external") || state == "disk-snapshot";
        long created = long.TryParse((string?)root.Element("creationTime"), NumberStyles.None, CultureInfo.InvariantCulture, out long t) ? t : 0;
        return new KvmSnapshot
        {
            VMName = vm.Name,
            VMUuid = vm.Uuid,
            Name = d.Name,
            Description = (string?)root.Element("description"),
            CreationTime = DateTimeOffset.FromUnixTimeSeconds(created).LocalDateTime,
            VmState = state,
            Kind = external ? KvmSnapshotKind.External : KvmSnapshotKind.Internal,
            HasMemory = memorySnapshot is "internal" or "external" || (memorySnapshot is null && state is "running" or "paused" or "blocked"),
            MemoryFile = (string?)memory?.Attribute("file"),
            Parent = ((string?)root.Element("parent")?.Element("name"))?.Trim() is { Length: > 0 } p ? p : null,
            IsCurrent = d.IsCurrent,
            Disks = disks,
            Connection = vm.Connection,
        };
    }
}
