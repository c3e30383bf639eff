using KvmPS.Core.Backend;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Services;

/// <summary>What Set-KvmVm changes; null members stay as they are.</summary>
public sealed class VmChange
{
    public int? CpuCount { get; set; }
    public int? MaxCpuCount { get; set; }
    public ulong? MemoryBytes { get; set; }
    public ulong? MaxMemoryBytes { get; set; }
    public bool? Autostart { get; set; }
    public string? Description { get; set; }
    public string? Title { get; set; }
}

/// <summary>Changes and removes VMs.</summary>
public static class VmChanges
{
    /// <summary>
    /// Applies <paramref name="change"/>: live when the VM runs and libvirt can, always to the persistent
    /// configuration. Changes that wait for the next start are reported through <paramref name="log"/>.Warning.
    /// </summary>
    public static void Set(KvmVm vm, VmChange change, IKvmLog log)
    {
        KvmVm now = VmService.Refresh(vm);
        KvmConnection conn = vm.Connection;
        bool running = now.Id is not null;
        DomainConfig config = DomainXml.Parse(conn.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive)));
        NodeInfo node = conn.Invoke(c => c.GetNodeInfo());
        ulong hostMemory = node.MemoryKiB * 1024;

        int maxCpu = change.MaxCpuCount ?? config.MaxCpuCount;
        int cpu = change.CpuCount ?? Math.Min(config.CpuCount, maxCpu);
        if (change.MaxCpuCount is { } mc && mc < (change.CpuCount ?? config.CpuCount) && change.CpuCount is null)
        {
            cpu = mc;   // lowering the ceiling lowers the count with it
        }

        if (cpu > maxCpu)
        {
            throw new KvmOperationException("CpuCountTooHigh", $"VM '{vm.Name}' can have at most {maxCpu} vCPUs (its MaxCpuCount); {cpu} were asked for.", vm.Name)
            {
                Hint = "Raise -MaxCpuCount too (it applies at the next start).",
            };
        }

        if ((change.CpuCount is not null || change.MaxCpuCount is not null) && (cpu > node.Cpus || maxCpu > Math.Max(node.Cpus, config.MaxCpuCount)))
        {
            throw new KvmOperationException("InsufficientHostResources", $"Host {conn.HostName} has {node.Cpus} logical CPUs; VM '{vm.Name}' cannot have {Math.Max(cpu, maxCpu)}.", vm.Name);
        }

        ulong maxMem = change.MaxMemoryBytes ?? config.MaxMemoryKiB * 1024;
        ulong mem = change.MemoryBytes ?? Math.Min(config.MemoryKiB * 1024, maxMem);
        if (change.MemoryBytes is { } m && m < VmSpecValidator.MinMemoryBytes)
        {
            throw new KvmOperationException("InvalidMemory", $"{ByteSize.Format(m)} is too little memory for a VM (at least {ByteSize.Format(VmSpecValidator.MinMemoryBytes)}).", vm.Name);
        }

        if (mem > maxMem)
        {
            throw new KvmOperationException("MemoryTooHigh", $"VM '{vm.Name}' can have at most {ByteSize.Format(maxMem)} (its MaxMemoryBytes); {ByteSize.Format(mem)} was asked for.", vm.Name)
            {
                Hint = "Raise -MaxMemoryBytes too (it applies at the next start).",
            };
        }

        if (change.MaxMemoryBytes is { } tiny && tiny < VmSpecValidator.MinMemoryBytes)
        {
            throw new KvmOperationException("InvalidMemory", $"{ByteSize.Format(tiny)} is too little memory for a VM (at least {ByteSize.Format(VmSpecValidator.MinMemoryBytes)}).", vm.Name);
        }

        if (hostMemory > 0 && (change.MemoryBytes is not null || change.MaxMemoryBytes is not null)
            && (mem > hostMemory || (change.MaxMemoryBytes is { } mm && mm > hostMemory)))
        {
            throw new KvmOperationException("InsufficientHostResources", $"Host {conn.HostName} has {ByteSize.Format(hostMemory)} of memory; VM '{vm.Name}' cannot have {ByteSize.Format(Math.Max(mem, maxMem))}.", vm.Name);
        }

        DomainModificationFlags live = running ? DomainModificationFlags.Live | DomainModificationFlags.Config : DomainModificationFlags.Config;

        // Raise ceilings first, then counts; lower counts first, then ceilings.
        if (change.MaxCpuCount is { } newMaxCpu && newMaxCpu > config.MaxCpuCount)
        {
            SetMaxCpu(vm, newMaxCpu, running, log);
        }

        if (change.MaxMemoryBytes is { } newMaxMem && newMaxMem > config.MaxMemoryKiB * 1024)
        {
            SetMaxMemory(vm, newMaxMem, running, log);
        }

        if (change.CpuCount is not null || cpu != config.CpuCount)
        {
            ApplyLiveOrConfig(vm, running, $"vCPU count to {cpu}",
                f => conn.Invoke(c => c.SetDomainVcpus(vm.Ref, cpu, f)), log);
        }

        if (change.MemoryBytes is not null || mem / 1024 != config.MemoryKiB)
        {
            ulong kib = (mem + 1023) / 1024;
            ApplyLiveOrConfig(vm, running, $"memory to {ByteSize.Format(mem)}",
                f => conn.Invoke(c => c.SetDomainMemory(vm.Ref, kib, f)), log);
        }

        if (change.MaxCpuCount is { } lowerCpu && lowerCpu < config.MaxCpuCount)
        {
            SetMaxCpu(vm, lowerCpu, running, log);
        }

        if (change.MaxMemoryBytes is { } lowerMem && lowerMem < config.MaxMemoryKiB * 1024)
        {
            SetMaxMemory(vm, lowerMem, running, log);
        }

        if (change.Autostart is { } autostart)
        {
            log.Verbose($"Setting autostart of VM '{vm.Name}' to {autostart}");
            conn.Invoke(c => c.SetDomainAutostart(vm.Ref, autostart));
        }

        if (change.Title is not null)
        {
            log.Verbose($"Setting the title of VM '{vm.Name}'");
            conn.Invoke(c => c.SetDomainMetadata(vm.Ref, DomainMetadataType.Title, change.Title.Length == 0 ? null : change.Title, live));
        }

        if (change.Description is not null)
        {
            log.Verbose($"Setting the description of VM '{vm.Name}'");
            conn.Invoke(c => c.SetDomainMetadata(vm.Ref, DomainMetadataType.Description, change.Description.Length == 0 ? null : change.Description, live));
        }
    }

    private static void SetMaxCpu(KvmVm vm, int max, bool running, IKvmLog log)
    {
        log.Verbose($"Setting the vCPU maximum of VM '{vm.Name}' to {max} (configuration)");
        vm.Connection.Invoke(c => c.SetDomainVcpus(vm.Ref, max, DomainModificationFlags.Config | DomainModificationFlags.Maximum));
        if (running)
        {
            log.Warning($"VM '{vm.Name}' is running: its new vCPU maximum ({max}) applies at the next start.");
        }
    }

    private static void SetMaxMemory(KvmVm vm, ulong bytes, bool running, IKvmLog log)
    {
        log.Verbose($"Setting the memory maximum of VM '{vm.Name}' to {ByteSize.Format(bytes)} (configuration)");
        vm.Connection.Invoke(c => c.SetDomainMemory(vm.Ref, (bytes + 1023) / 1024, DomainModificationFlags.Config | DomainModificationFlags.Maximum));
        if (running)
        {
            log.Warning($"VM '{vm.Name}' is running: its new memory maximum ({ByteSize.Format(bytes)}) applies at the next start.");
        }
    }

    private static void ApplyLiveOrConfig(KvmVm vm, bool running, string what, Action<DomainModificationFlags> apply, IKvmLog log)
    {
        if (!running)
        {
            log.Verbose($"Setting the {what} of VM '{vm.Name}' (configuration)");
            apply(DomainModificationFlags.Config);
            return;
        }

        try
        {
            log.Verbose($"Setting the {what} of VM '{vm.Name}' (live and configuration)");
            apply(DomainModificationFlags.Live | DomainModificationFlags.Config);
        }
        catch (LibvirtException e) when (!e.IsConnectionFailure)
        {
            apply(DomainModificationFlags.Config);
            log.Warning($"VM '{vm.Name}' could not take the {what} while running ({e.Message}); it applies at the next start.");
        }
    }

    /// <summary>
    /// Disks Remove-KvmVm -RemoveStorage would delete: the VM's own writable file disks. Never CD-ROMs, block
    /// devices, base images, a disk another VM attaches, or a disk another VM's overlay is built on.
    /// </summary>
    public static IReadOnlyList<string> OwnedDiskPaths(KvmVm vm, IKvmLog? log = null)
    {
        DomainConfig config = DomainXml.Parse(vm.Connection.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive)));
        var mine = config.Disks
            .Where(d => d.Device == "disk" && !d.ReadOnly && d.Path is not null && d.SourceType is null or "file")
            .Select(d => d.Path!).ToList();

        // The cloud-init seed New-KvmVm built for this VM is its own too (never an ISO the user attached).
        mine.AddRange(config.Disks.Where(d => d.Device == "cdrom" && d.Path is not null
            && Path.GetFileName(d.Path).Equals($"{VmProvisioner.SafeFileName(vm.Name)}.cidata.iso", StringComparison.Ordinal)).Select(d => d.Path!));

        // External snapshots made the VM's disks a chain of its own files, plus memory files: those are its own too.
        foreach (SnapshotData snap in vm.Connection.Invoke(c => c.ListSnapshots(vm.Ref)))
        {
            System.Xml.Linq.XElement root = System.Xml.Linq.XElement.Parse(snap.Xml);
            if ((string?)root.Element("memory")?.Attribute("snapshot") == "external" && (string?)root.Element("memory")?.Attribute("file") is { } mem)
            {
                mine.Add(mem);
            }

            foreach (System.Xml.Linq.XElement d in root.Element("disks")?.Elements("disk") ?? [])
            {
                if ((string?)d.Attribute("snapshot") == "external" && (string?)d.Element("source")?.Attribute("file") is { } overlay)
                {
                    mine.Add(overlay);
                }
            }

            if (root.Element("domain") is { } inner && (string?)root.Element("disks")?.Elements("disk").FirstOrDefault(x => (string?)x.Attribute("snapshot") == "external")?.Attribute("name") is not null)
            {
                DomainConfig before = DomainXml.Parse(inner.ToString());
                mine.AddRange(before.Disks.Where(d => d.Device == "disk" && !d.ReadOnly && d.Path is not null && d.SourceType is null or "file").Select(d => d.Path!));
            }
        }

        mine = mine.Distinct(StringComparer.Ordinal).ToList();
        if (mine.Count == 0)
        {
            return mine;
        }

        foreach (DomainRef other in vm.Connection.Invoke(c => c.ListAllDomains(ListDomainsFlags.None)))
        {
            if (other.Uuid == vm.Uuid)
            {
                continue;
            }

            DomainConfig oc;
            try
            {
                oc = DomainXml.Parse(vm.Connection.Invoke(c => c.GetDomainXml(other, DomainXmlFlags.Inactive)));
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoDomain)
            {
                continue;   // removed meanwhile: it uses nothing any more
            }

            foreach (KvmVmDisk d in oc.Disks.Where(d => d.Path is not null))
            {
                if (mine.Remove(d.Path!))
                {
                    log?.Warning($"Disk '{d.Path}' is also attached to VM '{other.Name}': it is kept.");
                }

                string? backing = BackingPath(vm.Connection, d.Path!);
                if (backing is not null && mine.Remove(backing))
                {
                    log?.Warning($"Disk '{backing}' is the base image of VM '{other.Name}' ({d.Path}): it is kept.");
                }
            }
        }

        return mine;
    }

    private static string? BackingPath(KvmConnection connection, string path)
    {
        try
        {
            StorageVolumeInfo? vol = connection.Invoke(c => c.LookupStorageVolumeByPath(path));
            return vol is null ? null
                : (string?)System.Xml.Linq.XElement.Parse(connection.Invoke(c => c.GetStorageVolumeXml(vol))).Element("backingStore")?.Element("path");
        }
        catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
        {
            return null;
        }
    }

    /// <summary>Undefines the VM (powering it off first when <paramref name="force"/>), then deletes <paramref name="diskPaths"/>.</summary>
    public static void Remove(KvmVm vm, bool force, IReadOnlyList<string> diskPaths, IKvmLog log)
    {
        KvmVm now = VmService.Refresh(vm);
        KvmConnection conn = vm.Connection;
        if (now.Id is not null)
        {
            if (!force)
            {
                throw new KvmOperationException("VmStateInvalid", $"Cannot remove VM '{vm.Name}': it is {now.State}. Stop it first or use -Force to power it off.", vm.Name);
            }

            log.Verbose($"Powering off VM '{vm.Name}' before removing it (-Force)");
            conn.Invoke(c => c.DestroyDomain(vm.Ref, 0));
        }

        bool stillThere = true;
        if (now.Persistent)
        {
            DomainUndefineFlags[] attempts =
            [
                DomainUndefineFlags.ManagedSave | DomainUndefineFlags.SnapshotsMetadata | DomainUndefineFlags.CheckpointsMetadata | DomainUndefineFlags.Nvram,
                DomainUndefineFlags.ManagedSave | DomainUndefineFlags.SnapshotsMetadata | DomainUndefineFlags.Nvram,
                DomainUndefineFlags.ManagedSave | DomainUndefineFlags.SnapshotsMetadata,
                DomainUndefineFlags.None,
            ];
            log.Verbose($"Undefining VM '{vm.Name}' (removing managed save, snapshot metadata and NVRAM)");
            for (int i = 0; i < attempts.Length; i++)
            {
                try
                {
                    conn.Invoke(c => c.UndefineDomain(vm.Ref, attempts[i]));
                    stillThere = false;
                    break;
                }
                catch (LibvirtException e) when (i < attempts.Length - 1 && e.Code is LibvirtErrorCode.InvalidArg or LibvirtErrorCode.NoSupport or LibvirtErrorCode.ArgumentUnsupported)
                {
                    // an older libvirt or a driver without that flag: try fewer
                }
            }
        }
        else
        {
            stillThere = false;   // transient: gone once stopped
        }

        if (stillThere)
        {
            return;
        }

        var failed = new List<string>();
        foreach (string path in diskPaths)
        {
            try
            {
                StorageVolumeInfo? vol = conn.Invoke(c => c.LookupStorageVolumeByPath(path));
                if (vol is not null)
                {
                    log.Verbose($"Deleting volume '{vol.Name}' ({path})");
                    conn.Invoke(c => c.DeleteStorageVolume(vol));
                }
                else if (!conn.IsRemote && File.Exists(path) && (File.GetAttributes(path) & FileAttributes.Device) == 0)
                {
                    log.Verbose($"Deleting disk file {path} (in no storage pool)");
                    File.Delete(path);
                }
                else
                {
                    log.Warning($"Disk '{path}' is in no storage pool{(conn.IsRemote ? " and on another host" : string.Empty)}: it was not deleted.");
                }
            }
            catch (Exception e) when (e is LibvirtException { IsConnectionFailure: false } or IOException or UnauthorizedAccessException)
            {
                failed.Add($"{path} ({e.Message})");
            }
        }

        if (failed.Count > 0)
        {
            throw new KvmOperationException("StorageRemoveFailed",
                $"VM '{vm.Name}' was removed, but these disks could not be deleted: {string.Join("; ", failed)}", vm.Name);
        }
    }
}
