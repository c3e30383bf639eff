using System.Diagnostics;
using System.IO.Pipes;
using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// Moves a VM to another host: checks first (nothing changes when one fails), then libvirt's live migration for a
/// running VM (shared storage, or disks copied over NBD) or an offline move of a shut-off one (its definition, and its
/// disks through volume streams). Progress comes from the source's job statistics; Ctrl+C and the timeout abort the
/// migration job, so the VM keeps running on the source, and volumes made on the destination are removed.
/// </summary>
public static class MigrationService
{
    private static readonly TimeSpan s_poll = TimeSpan.FromMilliseconds(300);

    /// <summary>Reads both hosts and returns what the move would do and every check's outcome; changes nothing.</summary>
    public static KvmMigrationPlan Plan(KvmVm vm, KvmConnection destination, KvmMigrationOptions options)
    {
        KvmConnection source = vm.Connection;
        destination.Open();
        var checks = new List<KvmMigrationCheck>();
        (int state, _) = source.Invoke(c => c.GetDomainState(vm.Ref));
        bool live = state is 1 or 2 or 3;

        // 1. two different hosts
        Guid? sourceHost = KvmConnection.HostUuidOf(source.Invoke(c => c.GetCapabilities()));
        string destinationCaps = destination.Invoke(c => c.GetCapabilities());
        Guid? destinationHost = KvmConnection.HostUuidOf(destinationCaps);
        checks.Add(sourceHost is not null && sourceHost == destinationHost
            ? new("Destination", false, $"{destination.Uri} is the VM's own host (host UUID {sourceHost})", "SameHost")
            : new("Destination", true, $"{destination.HostName ?? destination.Uri}, host UUID {destinationHost}"));

        // 2. a state that can move
        checks.Add(state is 1 or 2 or 3 or 5
            ? new("State", true, live ? $"{(state == 3 ? "paused" : "running")}: live migration" : "shut off: offline move")
            : new("State", false, $"the VM is {(KvmVmState)state}; only running, paused and shut-off VMs move", "VmStateInvalid"));
        bool persistent = source.Invoke(c => c.IsDomainPersistent(vm.Ref));
        if (!persistent && !live)
        {
            checks.Add(new("Definition", false, "a transient VM that is not running has nothing to move", "VmStateInvalid"));
        }

        // 3. snapshots: libvirt does not move their metadata
        int snapshots = source.Invoke(c => c.ListSnapshots(vm.Ref)).Count;
        checks.Add(snapshots == 0
            ? new("Snapshots", true, "none")
            : new("Snapshots", false, $"the VM has {snapshots} snapshot(s); libvirt cannot move snapshot metadata. Remove them (Remove-KvmSnapshot) or copy the VM instead", "VmHasSnapshots"));

        // 4. nothing of that name or UUID on the destination
        IReadOnlyList<DomainRef> there = destination.Invoke(c => c.ListAllDomains(ListDomainsFlags.None));
        DomainRef? clash = there.Cast<DomainRef?>().FirstOrDefault(d => d!.Value.Uuid == vm.Uuid || d.Value.Name == vm.Name);
        checks.Add(clash is { } x
            ? new("Name", false, $"the destination already has a VM '{x.Name}' ({x.Uuid})", "VmExistsOnDestination")
            : new("Name", true, $"'{vm.Name}' is free on the destination"));

        XElement domain = XElement.Parse(source.Invoke(c => c.GetDomainXml(vm.Ref, live ? DomainXmlFlags.Migratable : DomainXmlFlags.Inactive | DomainXmlFlags.Migratable)));
        string virtType = (string?)domain.Attribute("type") ?? "kvm";
        XElement? osType = domain.Element("os")?.Element("type");
        string? arch = (string?)osType?.Attribute("arch");
        string? machine = (string?)osType?.Attribute("machine");

        // 5. accelerator, machine type and firmware on the destination
        string? domcaps = null;
        try
        {
            domcaps = destination.Invoke(c => c.GetDomainCapabilities(null, arch, null, virtType, 0));
            checks.Add(new("Accelerator", true, $"{virtType} on {arch}"));
        }
        catch (LibvirtException e)
        {
            checks.Add(new("Accelerator", false, $"the destination cannot run {virtType} guests on {arch}: {e.Message}", "AcceleratorUnavailable"));
        }

        if (domcaps is not null)
        {
            checks.Add(MachineCheck(destination, machine, arch, virtType));
            checks.Add(FirmwareCheck(domain, domcaps));
        }

        // 6. the CPU the guest sees now
        if (live)
        {
            checks.Add(CpuCheck(destination, domain, destinationCaps, arch, machine, virtType, source));
        }

        // 7. memory
        ulong memory = vm.MemoryBytes;
        if (live)
        {
            ulong free = AvailableMemory(destination);
            checks.Add(free >= memory
                ? new("Memory", true, $"{ByteSize.Format(memory)} needed, {ByteSize.Format(free)} available")
                : new("Memory", false, $"{ByteSize.Format(memory)} needed, only {ByteSize.Format(free)} available on the destination (free, cache and buffers)", "InsufficientMemory"));
        }
        else
        {
            ulong total = destination.Invoke(c => c.GetNodeInfo()).MemoryKiB * 1024;
            ulong max = Math.Max(vm.MaxMemoryBytes, memory);
            checks.Add(total >= max
                ? new("Memory", true, $"{ByteSize.Format(max)} configured, the host has {ByteSize.Format(total)}")
                : new("Memory", false, $"{ByteSize.Format(max)} configured, more than the destination's {ByteSize.Format(total)}", "InsufficientMemory"));
        }

        // 8. networks
        checks.Add(NetworkCheck(destination, domain, live));

        // 9. storage
        List<KvmMigrationDisk> disks = [];
        checks.AddRange(StorageChecks(source, destination, domain, options, live, disks));

        return new KvmMigrationPlan { VM = vm, Destination = destination, Live = live, Disks = disks, Checks = checks };
    }

    // What the host can give a guest now: free memory plus the page cache and buffers the kernel drops on demand
    // (MemFree alone is small on any busy Linux host).
    private static ulong AvailableMemory(KvmConnection connection)
    {
        try
        {
            IReadOnlyList<TypedParameter> stats = connection.Invoke(c => c.GetNodeMemoryStats(-1));
            ulong kib = stats.Where(p => p.Name is "free" or "buffers" or "cached").Aggregate(0UL, (sum, p) => sum + p.AsUInt64());
            if (kib > 0)
            {
                return kib * 1024;
            }
        }
        catch (LibvirtException)
        {
            // a driver without node memory statistics: its free memory then
        }

        return connection.Invoke(c => c.GetFreeMemory());
    }

    private static KvmMigrationCheck MachineCheck(KvmConnection destination, string? machine, string? arch, string virtType)
    {
        if (machine is null)
        {
            return new("Machine type", true, "none named");
        }

        try
        {
            _ = destination.Invoke(c => c.GetDomainCapabilities(null, arch, machine, virtType, 0));
            return new("Machine type", true, machine);
        }
        catch (LibvirtException e)
        {
            return new("Machine type", false, $"the destination has no machine type '{machine}' for {arch}: {e.Message}", "MachineTypeUnavailable");
        }
    }

    private static KvmMigrationCheck FirmwareCheck(XElement domain, string domcaps)
    {
        XElement? loader = domain.Element("os")?.Element("loader");
        string? path = loader?.Value.Trim();
        if (string.IsNullOrEmpty(path))
        {
            return new("Firmware", true, "BIOS (no loader)");
        }

        XElement caps = XElement.Parse(domcaps);
        IEnumerable<string> offered = caps.Element("os")?.Element("loader")?.Elements("value").Select(v => v.Value.Trim()) ?? [];
        return offered.Contains(path, StringComparer.Ordinal)
            ? new("Firmware", true, path)
            : new("Firmware", false, $"the destination does not offer the firmware {path}", "FirmwareUnavailable");
    }

    private static KvmMigrationCheck CpuCheck(KvmConnection destination, XElement domain, string destinationCaps, string? arch, string? machine, string virtType, KvmConnection source)
    {
        XElement? cpu = domain.Element("cpu");
        string? mode = (string?)cpu?.Attribute("mode");
        if (mode == "host-passthrough")
        {
            // the guest sees the source's own CPU: the destination needs the same one
            string? here = (string?)XElement.Parse(source.Invoke(c => c.GetCapabilities())).Element("host")?.Element("cpu")?.Element("model");
            string? there = (string?)XElement.Parse(destinationCaps).Element("host")?.Element("cpu")?.Element("model");
            return here == there
                ? new("CPU", true, $"host-passthrough, both hosts {here}")
                : new("CPU", false, $"the guest sees the source's CPU ({here}, host-passthrough); the destination has {there ?? "another"}", "CpuIncompatible");
        }

        if (cpu?.Element("model") is null)
        {
            return new("CPU", true, "no CPU model named (the hypervisor's default)");
        }

        try
        {
            CpuCompareResult r = destination.Invoke(c => c.CompareHypervisorCpu(null, arch, machine, virtType, cpu.ToString(SaveOptions.DisableFormatting), 0));
            return r == CpuCompareResult.Incompatible
                ? new("CPU", false, $"the destination cannot offer the guest's CPU model {(string?)cpu.Element("model")}", "CpuIncompatible")
                : new("CPU", true, $"{(string?)cpu.Element("model")}: {r.ToString().ToLowerInvariant()}");
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoSupport or LibvirtErrorCode.ArgumentUnsupported)
        {
            return new("CPU", true, $"not compared: {e.Message}");
        }
        catch (LibvirtException e)
        {
            return new("CPU", false, $"the destination rejects the guest's CPU: {e.Message}", "CpuIncompatible");
        }
    }

    private static KvmMigrationCheck NetworkCheck(KvmConnection destination, XElement domain, bool live)
    {
        string[] needed = domain.Element("devices")?.Elements("interface")
            .Where(i => (string?)i.Attribute("type") == "network")
            .Select(i => (string?)i.Element("source")?.Attribute("network"))
            .OfType<string>().Distinct(StringComparer.Ordinal).ToArray() ?? [];
        if (needed.Length == 0)
        {
            return new("Networks", true, "none needed");
        }

        IReadOnlyList<NetworkData> nets = destination.Invoke(c => c.ListNetworks());
        var problems = new List<string>();
        foreach (string n in needed)
        {
            NetworkData? net = nets.FirstOrDefault(x => x.Name == n);
            if (net is null)
            {
                problems.Add($"'{n}' does not exist");
            }
            else if (live && !net.Active)
            {
                problems.Add($"'{n}' is not active (Start-KvmNetwork {n})");
            }
        }

        return problems.Count == 0
            ? new("Networks", true, string.Join(", ", needed))
            : new("Networks", false, $"on the destination {string.Join("; ", problems)}", "NetworkMissing");
    }

    private static IEnumerable<KvmMigrationCheck> StorageChecks(KvmConnection source, KvmConnection destination, XElement domain, KvmMigrationOptions options, bool live, List<KvmMigrationDisk> disks)
    {
        var notShared = new List<string>();
        var checks = new List<KvmMigrationCheck>();
        IReadOnlyList<StoragePoolData>? destinationPools = null;
        foreach (XElement disk in domain.Element("devices")?.Elements("disk") ?? [])
        {
            string device = (string?)disk.Attribute("device") ?? "disk";
            string target = (string?)disk.Element("target")?.Attribute("dev") ?? "?";
            string type = (string?)disk.Attribute("type") ?? "file";
            XElement? src = disk.Element("source");
            if (src is null)
            {
                continue;   // an empty CD-ROM drive
            }

            string? path = type switch
            {
                "file" => (string?)src.Attribute("file"),
                "block" => (string?)src.Attribute("dev"),
                "volume" => VolumePath(source, (string?)src.Attribute("pool"), (string?)src.Attribute("volume")),
                _ => null,
            };
            if (path is null)
            {
                checks.Add(new($"Disk {target}", false, $"a {type} disk cannot be moved by KvmPS", "StorageNotSupported"));
                continue;
            }

            StorageVolumeInfo? here = source.Invoke(c => c.LookupStorageVolumeByPath(path));
            bool copy = options.IncludeStorage && device == "disk" && !disk.Elements("readonly").Any() && disk.Element("shareable") is null;
            if (!copy)
            {
                StorageVolumeInfo? there = destination.Invoke(c => c.LookupStorageVolumeByPath(path));
                if (there is null || (here is not null && here.CapacityBytes != there.CapacityBytes))
                {
                    notShared.Add($"{target} ({path})");
                    continue;
                }

                disks.Add(new KvmMigrationDisk(target, path, (string?)disk.Element("driver")?.Attribute("type"), there.CapacityBytes, there.AllocationBytes) { DestinationPath = path });
                continue;
            }

            if (here is null)
            {
                checks.Add(new($"Disk {target}", false, $"{path} is in no storage pool of the source, so its size and format are not known; put it in a pool or move without -IncludeStorage", "StorageNotInPool"));
                continue;
            }

            XElement volumeXml = XElement.Parse(source.Invoke(c => c.GetStorageVolumeXml(here)));
            string format = (string?)volumeXml.Element("target")?.Element("format")?.Attribute("type") ?? "raw";
            if (volumeXml.Element("backingStore")?.Element("path") is { } backing && !string.IsNullOrWhiteSpace(backing.Value))
            {
                if (!live)
                {
                    checks.Add(new($"Disk {target}", false, $"{path} is an overlay on {backing.Value.Trim()}; an offline copy moves only its own layer. Start the VM to copy the whole chain, or flatten it first", "BackingChainNotSupported"));
                    continue;
                }
            }

            destinationPools ??= destination.Invoke(c => c.ListStoragePools());
            string poolName = options.DestinationStoragePool
                ?? (destinationPools.Any(p => p.Info.Name == here.Pool) ? here.Pool : "default");
            StoragePoolData? pool = destinationPools.FirstOrDefault(p => p.Info.Name == poolName);
            if (pool is null || pool.Info.State != 2)
            {
                checks.Add(new($"Disk {target}", false, pool is null ? $"the destination has no storage pool '{poolName}'" : $"the destination's pool '{poolName}' is not running", "StoragePoolMissing"));
                continue;
            }

            if (destination.Invoke(c => c.LookupStorageVolume(poolName, here.Name)) is { } existing)
            {
                checks.Add(new($"Disk {target}", false, $"the destination's pool '{poolName}' already has a volume '{here.Name}' ({existing.Path})", "VolumeExistsOnDestination"));
                continue;
            }

            string? poolPath = (string?)XElement.Parse(pool.Xml).Element("target")?.Element("path");
            disks.Add(new KvmMigrationDisk(target, path, format, here.CapacityBytes, here.AllocationBytes)
            {
                DestinationPool = poolName,
                DestinationVolume = here.Name,
                DestinationPath = poolPath is null ? null : System.IO.Path.Combine(poolPath, here.Name),
            });
        }

        if (notShared.Count > 0)
        {
            checks.Add(new("Storage", false,
                $"not visible on the destination as the same volume: {string.Join(", ", notShared)}. Use -IncludeStorage to copy the disks, or define a pool over the shared storage on the destination",
                "StorageNotShared"));
        }

        foreach (IGrouping<string, KvmMigrationDisk> byPool in disks.Where(d => d.Copied).GroupBy(d => d.DestinationPool!))
        {
            StoragePoolData pool = destinationPools!.First(p => p.Info.Name == byPool.Key);
            ulong need = (ulong)byPool.Sum(d => (decimal)d.AllocationBytes);
            checks.Add(pool.Info.AvailableBytes >= need
                ? new($"Pool {byPool.Key}", true, $"{ByteSize.Format(need)} to copy, {ByteSize.Format(pool.Info.AvailableBytes)} free")
                : new($"Pool {byPool.Key}", false, $"{ByteSize.Format(need)} to copy, only {ByteSize.Format(pool.Info.AvailableBytes)} free", "InsufficientStorage"));
        }

        if (checks.Count == 0)
        {
            checks.Add(new("Storage", true, disks.Count == 0 ? "no disks" : options.IncludeStorage ? $"{disks.Count} disk(s) to copy" : $"{disks.Count} shared disk(s)"));
        }

        return checks;
    }

    private static string? VolumePath(KvmConnection connection, string? pool, string? volume)
        => pool is null || volume is null ? null : connection.Invoke(c => c.LookupStorageVolume(pool, volume))?.Path;

    /// <summary>
    /// Moves the VM as planned (the plan's checks must have passed). Returns the VM as it is on the destination.
    /// </summary>
    public static KvmVm Move(KvmMigrationPlan plan, KvmMigrationOptions options, IKvmLog log, CancellationToken cancel, Action<KvmMigrationProgress>? progress = null)
    {
        if (plan.FirstFailure is { } failed)
        {
            throw CheckFailed(plan.VM, failed);
        }

        KvmVm vm = plan.VM;
        KvmConnection source = vm.Connection;
        KvmConnection destination = plan.Destination;
        var undo = new UndoLog(log);
        try
        {
            // the copies' volumes first: libvirt writes into them
            foreach (KvmMigrationDisk d in plan.Disks.Where(d => d.Copied))
            {
                CreateTargetVolume(destination, d, undo);
            }

            bool copied = plan.Disks.Any(d => d.Copied);
            if (!plan.Live && copied)
            {
                CopyDisksOffline(source, destination, vm, plan.Disks.Where(d => d.Copied).ToArray(), log, cancel);
            }

            (List<TypedParameter> parameters, MigrateFlags flags) = Arguments(plan, options, source);
            log.Verbose($"Migrating '{vm.Name}' to {destination.Uri}: flags {flags}; {string.Join(", ", parameters.Where(p => p.Name is not MigrateParameter.DestinationXml and not MigrateParameter.PersistentXml).Select(p => $"{p.Name}={p.Value}"))}");
            Run(plan, options, source, destination, parameters, flags, log, cancel, progress);

            KvmVm moved = VmService.GetByUuid(destination, vm.Uuid)
                ?? throw new KvmOperationException("MigrationFailed", $"libvirt reported '{vm.Name}' migrated, but {destination.Uri} does not list it.", vm.Name);
            undo.Commit();
            if (!options.KeepSource)
            {
                RemoveSourceCopies(source, plan.Disks.Where(d => d.Copied).Select(d => d.Path).ToArray(), log);
            }

            return moved;
        }
        catch
        {
            // only when the VM did not arrive: its disks on the destination are then no one's
            if (!ExistsOn(destination, vm.Uuid))
            {
                undo.Rollback();
            }

            throw;
        }
    }

    // The disks now live on the destination: their source images go, as Hyper-V's Move-VM removes the source files —
    // but only those no other VM (or snapshot, or backing chain) on the source uses, per the one ownership model.
    private static void RemoveSourceCopies(KvmConnection source, IReadOnlyList<string> paths, IKvmLog log)
    {
        if (paths.Count == 0)
        {
            return;
        }

        try
        {
            StorageUsage usage = StorageUsage.Read(source);
            foreach (StorageDisposition d in usage.Plan(paths, null))
            {
                if (d.Delete)
                {
                    log.Verbose($"Removing the source copy {d.Path} (the disk now lives on the destination)");
                    _ = StorageUsage.DeleteImage(source, d.Path, log);
                }
                else
                {
                    log.Warning($"Kept {d.Path} on the source: {d.Reason}.");
                }
            }
        }
        catch (Exception e) when (e is LibvirtException or KvmOperationException or IOException or UnauthorizedAccessException)
        {
            log.Warning($"The VM moved, but its old disks on the source could not all be removed: {e.Message}");
        }
    }

    private static bool ExistsOn(KvmConnection connection, Guid uuid)
    {
        try
        {
            return VmService.GetByUuid(connection, uuid) is not null;
        }
        catch (LibvirtException)
        {
            return true;    // unknown: keep what is there
        }
    }

    public static KvmOperationException CheckFailed(KvmVm vm, KvmMigrationCheck failed)
        => new(failed.ErrorId ?? "MigrationCheckFailed", $"Cannot move '{vm.Name}': {failed.Name} check failed: {failed.Detail}.", vm.Name)
        {
            Kind = failed.ErrorId switch
            {
                "VmExistsOnDestination" or "VolumeExistsOnDestination" => KvmErrorKind.AlreadyExists,
                "NetworkMissing" or "StoragePoolMissing" => KvmErrorKind.NotFound,
                "VmStateInvalid" or "VmHasSnapshots" or "SameHost" => KvmErrorKind.InvalidOperation,
                "InsufficientMemory" or "InsufficientStorage" => KvmErrorKind.Unavailable,
                _ => KvmErrorKind.NotSupported,
            },
        };

    private static void CreateTargetVolume(KvmConnection destination, KvmMigrationDisk d, UndoLog undo)
    {
        var xml = new XElement("volume",
            new XElement("name", d.DestinationVolume),
            new XElement("capacity", new XAttribute("unit", "bytes"), d.CapacityBytes),
            new XElement("allocation", new XAttribute("unit", "bytes"), 0),
            new XElement("target", new XElement("format", new XAttribute("type", d.Format ?? "raw")),
                d.Format == "qcow2" ? new XElement("compat", "1.1") : null));
        string pool = d.DestinationPool!, name = d.DestinationVolume!;
        _ = undo.Call(destination, $"remove the copy {pool}/{name} on {destination.Uri}", c => c.CreateStorageVolume(pool, xml.ToString(), 0),
            _ => StorageService.DeleteVolumeIfPresent(destination, pool, name), () => StorageService.DeleteVolumeIfPresent(destination, pool, name));
    }

    private static (List<TypedParameter> Parameters, MigrateFlags Flags) Arguments(KvmMigrationPlan plan, KvmMigrationOptions options, KvmConnection source)
    {
        KvmVm vm = plan.VM;
        var p = new List<TypedParameter>();
        MigrateFlags flags = MigrateFlags.PersistDestination;
        if (!options.KeepSource)
        {
            flags |= MigrateFlags.UndefineSource;
        }

        if (plan.Live)
        {
            flags |= MigrateFlags.Live | MigrateFlags.AbortOnError;
            if (options.AutoConverge) { flags |= MigrateFlags.AutoConverge; }
            if (options.PostCopy) { flags |= MigrateFlags.PostCopy; }
            if (options.Compressed) { flags |= MigrateFlags.Compressed; }
            if (options.AllowUnsafe) { flags |= MigrateFlags.Unsafe; }
            if (options.MigrationAddress is { } address)
            {
                string host = address.Contains(':') && !address.StartsWith('[') ? $"[{address}]" : address;
                p.Add(new(MigrateParameter.Uri, TypedParameterType.String, $"tcp://{host}"));
                p.Add(new(MigrateParameter.ListenAddress, TypedParameterType.String, address));
            }

            if (options.BandwidthMiBps is { } bw)
            {
                p.Add(new(MigrateParameter.Bandwidth, TypedParameterType.ULLong, bw));
            }
        }
        else
        {
            flags |= MigrateFlags.Offline;
        }

        if (options.PeerToPeer)
        {
            flags |= MigrateFlags.PeerToPeer;
        }

        KvmMigrationDisk[] copies = plan.Disks.Where(d => d.Copied).ToArray();
        if (plan.Live && copies.Length > 0)
        {
            flags |= MigrateFlags.NonSharedDisk;
            foreach (KvmMigrationDisk d in copies)
            {
                p.Add(new(MigrateParameter.MigrateDisks, TypedParameterType.String, d.Target));
            }
        }

        if (copies.Any(d => d.DestinationPath != d.Path))
        {
            // the copies live at other paths on the destination: both definitions name them
            if (plan.Live)
            {
                string live = source.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Migratable | DomainXmlFlags.Secure));
                p.Add(new(MigrateParameter.DestinationXml, TypedParameterType.String, Repoint(live, copies)));
            }

            string inactive = source.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive | DomainXmlFlags.Migratable | DomainXmlFlags.Secure));
            p.Add(new(plan.Live ? MigrateParameter.PersistentXml : MigrateParameter.DestinationXml, TypedParameterType.String, Repoint(inactive, copies)));
        }

        return (p, flags);
    }

    /// <summary>The domain XML with each copied disk's source pointing at its copy (a plain file at the new path).</summary>
    internal static string Repoint(string domainXml, IReadOnlyList<KvmMigrationDisk> copies)
    {
        XElement domain = XElement.Parse(domainXml);
        foreach (XElement disk in domain.Element("devices")?.Elements("disk") ?? [])
        {
            string? target = (string?)disk.Element("target")?.Attribute("dev");
            KvmMigrationDisk? copy = copies.FirstOrDefault(c => c.Target == target);
            if (copy?.DestinationPath is null)
            {
                continue;
            }

            disk.SetAttributeValue("type", "file");
            disk.Element("source")?.Remove();
            disk.Element("backingStore")?.Remove();
            disk.Element("driver")?.SetAttributeValue("type", copy.Format ?? "raw");
            XElement source = new("source", new XAttribute("file", copy.DestinationPath));
            (disk.Element("driver") ?? (XNode?)disk.FirstNode)?.AddAfterSelf(source);
            if (source.Parent is null)
            {
                disk.AddFirst(source);
            }
        }

        return domain.ToString(SaveOptions.DisableFormatting);
    }

    private static void Run(KvmMigrationPlan plan, KvmMigrationOptions options, KvmConnection source, KvmConnection destination,
        List<TypedParameter> parameters, MigrateFlags flags, IKvmLog log, CancellationToken cancel, Action<KvmMigrationProgress>? progress)
    {
        KvmVm vm = plan.VM;
        ILibvirtConnection from = source.Raw();
        ILibvirtConnection to = destination.Raw();
        bool peerToPeer = (flags & MigrateFlags.PeerToPeer) != 0;
        string destinationUri = destination.RequestedUri ?? destination.Uri;
        Task migration = Task.Run(() =>
        {
            if (peerToPeer)
            {
                from.MigrateDomainToUri(vm.Ref, destinationUri, parameters, flags);
            }
            else
            {
                _ = from.MigrateDomain(vm.Ref, to, parameters, flags);
            }
        }, CancellationToken.None);

        string activity = $"Moving {vm.Name} to {destination.HostName ?? destination.Uri}";
        var sw = Stopwatch.StartNew();
        bool downtimeSet = options.MaxDowntime is null, postCopyStarted = false;
        string? abortedFor = null;
        try
        {
            // (Task.Wait would throw a failed migration wrapped, in the middle of the loop)
            WaitHandle finished = ((IAsyncResult)migration).AsyncWaitHandle;
            while (!finished.WaitOne(s_poll))
            {
                if (abortedFor is null && cancel.IsCancellationRequested)
                {
                    abortedFor = "cancelled";
                    Abort(source, vm, log);
                }
                else if (abortedFor is null && options.Timeout is { } t && sw.Elapsed > t)
                {
                    abortedFor = "timeout";
                    Abort(source, vm, log);
                }

                if (!plan.Live || abortedFor is not null)
                {
                    log.Progress(activity, abortedFor is null ? "moving the definition" : "aborting", -1);
                    continue;
                }

                IReadOnlyList<TypedParameter> stats;
                try
                {
                    (int type, stats) = source.Invoke(c => c.GetJobStats(vm.Ref, false));
                    if (type == 0)
                    {
                        continue;   // not started yet, or already done
                    }
                }
                catch (LibvirtException)
                {
                    continue;   // the job ended between two polls
                }

                if (!downtimeSet)
                {
                    downtimeSet = TrySet(() => source.Invoke(c => { c.SetMigrationMaxDowntime(vm.Ref, (ulong)options.MaxDowntime!.Value.TotalMilliseconds); return 0; }), log, "maximum downtime");
                }

                KvmMigrationProgress p = ToProgress(vm.Name, sw.Elapsed, stats);
                if (options.PostCopy && !postCopyStarted && Get(stats, "memory_iteration") >= 2)
                {
                    postCopyStarted = TrySet(() => source.Invoke(c => { c.StartMigrationPostCopy(vm.Ref); return 0; }), log, "post-copy");
                    if (postCopyStarted)
                    {
                        log.Verbose($"'{vm.Name}': switched to post-copy after {sw.Elapsed.TotalSeconds:0.#} s");
                    }
                }

                progress?.Invoke(p);
                log.Progress(activity, $"{ByteSize.Format(p.DataProcessedBytes)} of {ByteSize.Format(p.DataTotalBytes)} sent, {ByteSize.Format(p.DataRemainingBytes)} remaining"
                    + (p.DiskRemainingBytes > 0 || p.DiskProcessedBytes > 0 ? $" (disks {ByteSize.Format(p.DiskProcessedBytes)} sent, {ByteSize.Format(p.DiskRemainingBytes)} remaining)" : string.Empty), p.Percent);
            }

            // the migration call ended: rethrow its failure unwrapped
            migration.GetAwaiter().GetResult();
            if (abortedFor is not null)
            {
                log.Verbose($"'{vm.Name}': the migration finished before the abort took effect");
            }
        }
        catch (LibvirtException e) when (abortedFor == "cancelled")
        {
            log.Verbose($"'{vm.Name}': migration aborted ({e.Message}); the VM stays on {source.Uri}");
            throw new OperationCanceledException(cancel);
        }
        catch (LibvirtException e) when (abortedFor == "timeout")
        {
            throw new KvmOperationException("MigrationTimeout",
                $"Moving '{vm.Name}' to {destination.Uri} did not finish within {options.Timeout!.Value.TotalSeconds:0.#} s; it was aborted and the VM stays on {source.Uri} ({e.Message}).", vm.Name, e)
            {
                Kind = KvmErrorKind.Timeout,
                Hint = "A guest that dirties memory faster than the link carries it never converges: raise -TimeoutSec, allow more downtime (-MaxDowntimeMs), or use -AutoConverge or -PostCopy.",
            };
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.MigrateUnsafe)
        {
            throw new KvmOperationException("MigrationUnsafe",
                $"libvirt refuses to move '{vm.Name}' with its disks left in place: {e.Message}", vm.Name, e)
            {
                Kind = KvmErrorKind.InvalidOperation,
                Hint = "libvirt cannot prove the storage is shared coherently (a local file system, a cache mode other than none). Use -IncludeStorage to copy the disks, or -AllowUnsafe when you know both hosts see the same storage.",
            };
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
        }
    }

    private static void Abort(KvmConnection source, KvmVm vm, IKvmLog log)
    {
        log.Verbose($"Aborting the migration of '{vm.Name}'");
        try
        {
            source.Invoke(c => { c.AbortJob(vm.Ref); return 0; });
        }
        catch (LibvirtException e)
        {
            log.Verbose($"Abort: {e.Message}");
        }
    }

    private static bool TrySet(Action call, IKvmLog log, string what)
    {
        try
        {
            call();
            return true;
        }
        catch (LibvirtException e)
        {
            log.Warning($"Could not set the migration's {what}: {e.Message}");
            return true;    // tried once: do not repeat the warning every poll
        }
    }

    private static ulong Get(IReadOnlyList<TypedParameter> stats, string name)
    {
        foreach (TypedParameter p in stats)
        {
            if (p.Name == name)
            {
                return p.AsUInt64();
            }
        }

        return 0;
    }

    internal static KvmMigrationProgress ToProgress(string vm, TimeSpan elapsed, IReadOnlyList<TypedParameter> s)
        => new(vm, elapsed, Get(s, "data_processed"), Get(s, "data_remaining"), Get(s, "data_total"),
            Get(s, "memory_processed"), Get(s, "memory_remaining"), Get(s, "disk_processed"), Get(s, "disk_remaining"));

    /// <summary>A shut-off VM's disks, copied volume to volume through libvirt's streams (works between any two hosts).</summary>
    private static void CopyDisksOffline(KvmConnection source, KvmConnection destination, KvmVm vm, IReadOnlyList<KvmMigrationDisk> disks, IKvmLog log, CancellationToken cancel)
    {
        ulong total = (ulong)disks.Sum(d => (decimal)d.AllocationBytes), before = 0;
        string activity = $"Copying the disks of {vm.Name} to {destination.HostName ?? destination.Uri}";
        foreach (KvmMigrationDisk d in disks)
        {
            StorageVolumeInfo from = source.Invoke(c => c.LookupStorageVolumeByPath(d.Path))
                ?? throw new KvmOperationException("VolumeNotFound", $"The disk {d.Target} ({d.Path}) of '{vm.Name}' is gone.", vm.Name);
            StorageVolumeInfo to = destination.Invoke(c => c.LookupStorageVolume(d.DestinationPool!, d.DestinationVolume!))
                ?? throw new KvmOperationException("VolumeNotFound", $"The copy {d.DestinationPool}/{d.DestinationVolume} on {destination.Uri} is gone.", vm.Name);
            log.Verbose($"Copying {d.Path} to {destination.Uri} {d.DestinationPool}/{d.DestinationVolume}");
            ulong start = before;
            before += StreamVolume(source, from, destination, to, n => log.Progress(activity, $"{ByteSize.Format(start + n)} of {ByteSize.Format(total)}",
                total == 0 ? -1 : (int)Math.Min(99, 100.0 * (start + n) / total)), cancel);
        }

        log.Progress(activity, "done", 100, completed: true);
    }

    /// <summary>
    /// Copies one volume's content into another volume, possibly on another host, through libvirt's download and upload
    /// streams (the file's bytes as they are: a qcow2 file stays a qcow2 file). Returns the bytes copied.
    /// </summary>
    internal static ulong StreamVolume(KvmConnection source, StorageVolumeInfo from, KvmConnection destination, StorageVolumeInfo to, Action<ulong>? progress, CancellationToken cancel)
    {
        // the stream carries the volume's file as it is: its physical size
        XElement volumeXml = XElement.Parse(source.Invoke(c => c.GetStorageVolumeXml(from)));
        ulong length = ulong.TryParse((string?)volumeXml.Element("physical"), out ulong physical) && physical > 0 ? physical : from.CapacityBytes;
        using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
        using var reader = new AnonymousPipeClientStream(PipeDirection.In, pipe.ClientSafePipeHandle);
        Task<ulong> download = Task.Run(() =>
        {
            try
            {
                return source.Raw().DownloadStorageVolume(from, pipe, progress, cancel);
            }
            finally
            {
                pipe.Dispose();     // end of the data for the upload
            }
        }, CancellationToken.None);
        try
        {
            destination.Raw().UploadStorageVolume(to, reader, length, null, cancel);
        }
        catch
        {
            reader.Dispose();   // unblock the download
            _ = download.Wait(TimeSpan.FromSeconds(10));
            throw;
        }

        return download.GetAwaiter().GetResult();
    }
}
