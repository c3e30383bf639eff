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
    /// What Remove-KvmVm -RemoveStorage does with each of the VM's own images (<see cref="StorageUsage.OwnedBy"/>): delete it,
    /// or keep it because another VM uses it (attached live or configured, any depth of a backing chain, a snapshot).
    /// </summary>
    public static IReadOnlyList<StorageDisposition> PlanStorageRemoval(KvmVm vm, CancellationToken cancel = default)
    {
        StorageUsage usage = StorageUsage.Read(vm.Connection, cancel);
        return usage.Plan(usage.OwnedBy(vm.Uuid, vm.Name), vm.Uuid);
    }

    /// <summary>
    /// Undefines the VM (powering it off first when <paramref name="force"/>), then deletes the images <paramref name="storage"/>
    /// marks for deletion, each checked again once the VM is gone (an image another VM took meanwhile is kept); writes a
    /// warning for each kept image.
    /// </summary>
    public static void Remove(KvmVm vm, bool force, IReadOnlyList<StorageDisposition> storage, IKvmLog log)
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

        foreach (StorageDisposition kept in storage.Where(x => !x.Delete))
        {
            log.Warning($"Kept {kept.Path}: {kept.Reason}.");
        }

        var failed = new List<string>();
        List<StorageDisposition> doomed = storage.Where(x => x.Delete).ToList();
        StorageUsage? usage = doomed.Count == 0 ? null : StorageUsage.Read(conn);
        foreach (StorageDisposition item in doomed)
        {
            string path = item.Path;
            try
            {
                IReadOnlyList<StorageUse> users = usage!.UsersOf(path);
                if (users.Count > 0)
                {
                    log.Warning($"Kept {path}: {new StorageDisposition(path, item.Identity, false, users).Reason} (since the command was planned).");
                    continue;
                }

                StorageUsage.DeleteImage(conn, path, log);
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
