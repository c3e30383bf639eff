using System.Text;
using System.Xml.Linq;
using KvmPS.Core.Backend;
using KvmPS.Core.Images;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Services;

/// <summary>
/// Creates VMs from a <see cref="VmSpec"/>: volumes, definition, start. Atomic from the user's view: when a
/// step fails, everything this call created is removed again and the error names the step.
/// </summary>
public static class VmProvisioner
{
    public const string DefaultPool = "default";
    public const string DefaultPoolPath = "/var/lib/libvirt/images";

    /// <summary>What will be created, without creating anything (for -WhatIf and tests).</summary>
    public static DomainConfig Plan(KvmConnection connection, VmSpec spec, IKvmLog log)
    {
        VmSpecValidator.Validate(spec);
        var plan = new Planner(connection, spec, log);
        return plan.BuildConfig(dryRun: true).Config;
    }

    public static KvmVm Create(KvmConnection connection, VmSpec spec, IKvmLog log, CancellationToken cancel = default)
    {
        VmSpecValidator.Validate(spec);
        if (VmService.GetByName(connection, spec.Name) is not null)
        {
            throw new KvmOperationException("VmExists", $"A VM named '{spec.Name}' already exists on {connection.Uri}.", spec.Name);
        }

        var planner = new Planner(connection, spec, log);
        (DomainConfig config, List<PlannedVolume> volumes) = planner.BuildConfig(dryRun: false);
        (string Pool, string Name, int DiskIndex)? seed = planner.Seed;
        var undo = new UndoLog(log);
        string step = "check storage";
        try
        {
            foreach (PlannedVolume v in volumes)
            {
                cancel.ThrowIfCancellationRequested();
                step = $"create volume '{v.Name}' in pool '{v.Pool}'";
                log.Verbose($"Creating {v.Format} volume '{v.Name}' ({ByteSize.Format(v.CapacityBytes)}) in pool '{v.Pool}'{(v.BackingPath is null ? string.Empty : $" on top of '{v.BackingPath}'")}");
                StorageVolumeInfo created = undo.Call(connection, $"remove volume {v.Pool}/{v.Name}", c => c.CreateStorageVolume(v.Pool, v.ToXml(), 0),
                    _ => StorageService.DeleteVolumeIfPresent(connection, v.Pool, v.Name), () => StorageService.DeleteVolumeIfPresent(connection, v.Pool, v.Name));
                v.Disk.Path ??= created.Path;
                config.Disks[v.DiskIndex] = config.Disks[v.DiskIndex] with { Path = created.Path };
            }

            if (seed is { } s && spec.CloudInit is { } ci)
            {
                step = $"create the cloud-init seed '{s.Name}' in pool '{s.Pool}'";
                var files = new List<(string, byte[])>
                {
                    ("meta-data", System.Text.Encoding.UTF8.GetBytes(ci.MetaData)),
                    ("user-data", System.Text.Encoding.UTF8.GetBytes(ci.UserData)),
                };
                if (ci.NetworkConfig is not null)
                {
                    files.Add(("network-config", System.Text.Encoding.UTF8.GetBytes(ci.NetworkConfig)));
                }

                byte[] iso = Iso.Iso9660Writer.Build("cidata", files);
                log.Verbose($"Building the NoCloud seed ISO ({iso.Length} bytes; {ci.Summary}) as volume '{s.Name}' in pool '{s.Pool}'");
                string xmlVol = new XElement("volume", new XElement("name", s.Name),
                    new XElement("capacity", new XAttribute("unit", "bytes"), iso.Length),
                    new XElement("target", new XElement("format", new XAttribute("type", "raw")))).ToString();
                StorageVolumeInfo seedVol = undo.Call(connection, $"remove seed {s.Pool}/{s.Name}", c => c.CreateStorageVolume(s.Pool, xmlVol, 0),
                    _ => StorageService.DeleteVolumeIfPresent(connection, s.Pool, s.Name), () => StorageService.DeleteVolumeIfPresent(connection, s.Pool, s.Name));
                using (var ms = new MemoryStream(iso, writable: false))
                {
                    connection.Invoke(c => c.UploadStorageVolume(seedVol, ms, (ulong)iso.Length, null, cancel));
                }

                config.Disks[s.DiskIndex] = config.Disks[s.DiskIndex] with { Path = seedVol.Path };
            }

            cancel.ThrowIfCancellationRequested();
            step = "define the VM";
            // the UUID is chosen here, so a define that was given up can still be undone exactly
            Guid uuid = config.Uuid ??= Guid.NewGuid();
            string xml = DomainXml.Build(config);
            log.Verbose($"Defining VM '{spec.Name}' ({config.DomainType}, {config.CpuCount} vCPU, {ByteSize.Format(config.MemoryKiB * 1024)})");
            DomainRef defined = undo.Call(connection, $"remove VM {spec.Name}", c => c.DefineDomain(xml, 0),
                d => UndefineIfPresent(connection, d.Uuid), () => UndefineIfPresent(connection, uuid));
            if (spec.Start)
            {
                step = "start the VM";
                log.Verbose($"Starting VM '{spec.Name}'");
                undo.Call(connection, $"stop VM {spec.Name}", c =>
                {
                    c.CreateDomain(defined, 0);
                    return true;
                }, _ => UndefineIfPresent(connection, uuid));
                VmLifecycle.SettleAfterStart(new KvmVm(connection, defined), log);
            }

            KvmVm result = VmService.GetByUuid(connection, defined.Uuid)
                ?? throw new LibvirtException(LibvirtErrorCode.NoDomain, LibvirtErrorDomain.Domain, $"VM '{spec.Name}' vanished right after it was created.");
            undo.Commit();
            return result;
        }
        catch (Exception e)
        {
            undo.Rollback();
            if (e is not (LibvirtException or IOException))
            {
                throw;
            }

            throw new KvmOperationException("VmCreateFailed",
                $"Creating VM '{spec.Name}' failed at step '{step}': {e.Message} Nothing was left behind.", spec.Name, e)
            {
                Step = step,
            };
        }
    }

    /// <summary>
    /// Removes the VM with <paramref name="uuid"/> if it exists (an undo step: idempotent): turned off when it runs, then
    /// undefined with its managed save and snapshot metadata, and its NVRAM file unless <paramref name="keepNvram"/> (a
    /// definition read from a file may name another VM's NVRAM). A started VM whose definition is gone is transient, so
    /// turning it off is enough.
    /// </summary>
    public static void UndefineIfPresent(KvmConnection connection, Guid uuid, bool keepNvram = false)
    {
        if (VmService.GetByUuid(connection, uuid) is not { } vm)
        {
            return;
        }

        if (vm.Id is not null)
        {
            try
            {
                connection.Invoke(c => c.DestroyDomain(vm.Ref, 0));
            }
            catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoDomain or LibvirtErrorCode.OperationInvalid)
            {
                // it stopped or vanished meanwhile
            }
        }

        try
        {
            DomainUndefineFlags flags = DomainUndefineFlags.ManagedSave | DomainUndefineFlags.SnapshotsMetadata
                | (keepNvram ? DomainUndefineFlags.KeepNvram : DomainUndefineFlags.Nvram);
            try
            {
                connection.Invoke(c => c.UndefineDomain(vm.Ref, flags));
            }
            catch (LibvirtException e) when (e.Code is LibvirtErrorCode.InvalidArg or LibvirtErrorCode.NoSupport or LibvirtErrorCode.ArgumentUnsupported)
            {
                // a driver without NVRAM support (the test driver) refuses the NVRAM flags
                connection.Invoke(c => c.UndefineDomain(vm.Ref, DomainUndefineFlags.ManagedSave | DomainUndefineFlags.SnapshotsMetadata));
            }
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoDomain || (e.Code is LibvirtErrorCode.OperationInvalid && VmService.GetByUuid(connection, uuid) is null))
        {
            // gone already (a transient VM vanished when it was turned off)
        }
    }

    /// <summary>The storage pool holding <paramref name="directory"/> as its target path, or null.</summary>
    public static string? PoolForDirectory(KvmConnection connection, string directory)
    {
        string dir = directory.TrimEnd('/');
        foreach (string pool in connection.Invoke(c => c.ListStoragePoolNames()))
        {
            string? target = PoolTargetPath(connection, pool);
            if (target is not null && string.Equals(target.TrimEnd('/'), dir, StringComparison.Ordinal))
            {
                return pool;
            }
        }

        return null;
    }

    public static string? PoolTargetPath(KvmConnection connection, string pool)
        => (string?)XElement.Parse(connection.Invoke(c => c.GetStoragePoolXml(pool, 0))).Element("target")?.Element("path");

    /// <summary>Makes sure the pool exists and runs; creates the 'default' dir pool at libvirt's images folder when missing.</summary>
    public static void EnsurePool(KvmConnection connection, string pool, IKvmLog log)
    {
        if (connection.Invoke(c => c.ListStoragePoolNames()).Contains(pool))
        {
            StoragePoolInfo info = connection.Invoke(c => c.GetStoragePool(pool));
            if (!info.IsActive)
            {
                throw new KvmOperationException("StoragePoolInactive", $"Storage pool '{pool}' exists but is not running.", pool)
                {
                    Hint = $"Start it (virsh pool-start {pool}) and try again.",
                };
            }

            return;
        }

        if (pool != DefaultPool)
        {
            throw new KvmOperationException("StoragePoolNotFound", $"There is no storage pool '{pool}' on {connection.Uri}.", pool)
            {
                Hint = "Name an existing pool with -StoragePool, or leave it out to use 'default'.",
            };
        }

        log.Verbose($"Storage pool '{DefaultPool}' does not exist: creating it as a directory pool at {DefaultPoolPath} (autostart on)");
        var xml = new XElement("pool", new XAttribute("type", "dir"),
            new XElement("name", DefaultPool),
            new XElement("target", new XElement("path", DefaultPoolPath)));
        connection.Invoke(c => c.DefineAndStartStoragePool(xml.ToString(), build: true, autostart: true));
    }

    internal static string SafeFileName(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (char ch in name)
        {
            sb.Append(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.' ? ch : '_');
        }

        return sb.ToString().TrimStart('.');
    }

    private sealed class PlannedVolume
    {
        public required string Pool { get; init; }
        public required string Name { get; init; }
        public required string Format { get; init; }
        public required ulong CapacityBytes { get; init; }
        public string? BackingPath { get; init; }
        public string? BackingFormat { get; init; }
        public required VmDiskSpec Disk { get; init; }
        public required int DiskIndex { get; init; }

        public string ToXml() => new XElement("volume",
            new XElement("name", Name),
            new XElement("capacity", new XAttribute("unit", "bytes"), CapacityBytes),
            // qcow2 v3 (compat 1.1): v2 images cannot hold the dirty bitmaps incremental backups need
            new XElement("target", new XElement("format", new XAttribute("type", Format)), Format == "qcow2" ? new XElement("compat", "1.1") : null),
            BackingPath is null ? null : new XElement("backingStore",
                new XElement("path", BackingPath),
                new XElement("format", new XAttribute("type", BackingFormat ?? "raw")))).ToString();
    }

    private sealed class Planner(KvmConnection connection, VmSpec spec, IKvmLog log)
    {
        private StorageUsage? _usage;

        /// <summary>Where the cloud-init seed goes (pool, volume name, index of its CD-ROM in the disks).</summary>
        public (string Pool, string Name, int DiskIndex)? Seed { get; private set; }

        public (DomainConfig Config, List<PlannedVolume> Volumes) BuildConfig(bool dryRun)
        {
            HostCapabilities caps = CapabilitiesXml.ParseHost(connection.Invoke(c => c.GetCapabilities()));
            string arch = caps.Arch is "i686" or "x86_64" or "aarch64" or "ppc64le" or "s390x" ? caps.Arch : "x86_64";
            List<string> types = caps.Guests.Where(g => g.Arch == arch && g.OsType == "hvm").SelectMany(g => g.DomainTypes).Distinct().ToList();
            string domainType = spec.Accelerator switch
            {
                KvmAcceleratorChoice.Kvm when types.Contains("kvm") => "kvm",
                KvmAcceleratorChoice.Kvm => throw new KvmOperationException("KvmUnavailable",
                    $"The host {connection.HostName} does not offer KVM for {arch} (libvirt offers: {(types.Count == 0 ? "none" : string.Join(", ", types))}).", spec.Name)
                {
                    Hint = "Use -Accelerator Auto or Qemu (software emulation), or check Get-KvmHostCapability.",
                },
                KvmAcceleratorChoice.Qemu when types.Contains("qemu") => "qemu",
                KvmAcceleratorChoice.Qemu => throw new KvmOperationException("AcceleratorUnavailable", $"The host does not offer QEMU emulation for {arch}.", spec.Name),
                _ => types.Contains("kvm") ? "kvm" : types.Contains("qemu") ? "qemu" : types.FirstOrDefault()
                    ?? throw new KvmOperationException("AcceleratorUnavailable", $"The host offers no {arch} guests.", spec.Name),
            };
            log.Verbose(spec.Accelerator == KvmAcceleratorChoice.Auto
                ? $"Accelerator: {domainType} (Auto; the host offers {string.Join(", ", types)})"
                : $"Accelerator: {domainType}");

            ulong memBytes = spec.MemoryBytes ?? (spec.MaxMemoryBytes ?? 1024UL * 1024 * 1024);
            ulong maxBytes = spec.MaxMemoryBytes ?? memBytes;
            int cpus = spec.CpuCount ?? 1;
            var config = new DomainConfig
            {
                Name = spec.Name,
                DomainType = domainType,
                Title = spec.Title,
                Description = spec.Description,
                MemoryKiB = (memBytes + 1023) / 1024,
                MaxMemoryKiB = (maxBytes + 1023) / 1024,
                CpuCount = cpus,
                MaxCpuCount = Math.Max(cpus, spec.MaxCpuCount ?? cpus),
                Arch = arch,
                MachineType = spec.MachineType,
                Firmware = spec.Firmware,
                CpuMode = spec.CpuMode,   // null: the hypervisor default model, which starts everywhere (host-passthrough can fail under nested KVM)
                Kernel = spec.Kernel,
                Initrd = spec.Initrd,
                KernelArguments = spec.KernelArguments,
                SerialConsole = true,
                GuestAgentChannel = domainType is "kvm" or "qemu",
                VncListen = domainType is "kvm" or "qemu" ? "127.0.0.1" : null,
            };
            if (spec.Kernel is null)
            {
                config.BootDevices.Add("hd");
                config.BootDevices.Add("cdrom");
            }

            var volumes = new List<PlannedVolume>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            int diskIndex = 0, cdIndex = 0;
            for (int i = 0; i < spec.Disks.Count; i++)
            {
                VmDiskSpec d = spec.Disks[i];
                bool cdrom = d.Device == "cdrom";
                string bus = d.Bus ?? (cdrom ? "sata" : "virtio");
                string target = cdrom || bus is "sata" or "scsi" or "usb" ? $"sd{(char)('a' + cdIndex++)}" : $"vd{(char)('a' + diskIndex++)}";
                if (bus == "ide")
                {
                    target = $"hd{(char)('a' + i)}";
                }

                var disk = new KvmVmDisk { Target = target, Bus = bus, Device = d.Device, ReadOnly = d.ReadOnly || cdrom, SourceType = "file" };
                if (d.SizeBytes is null && d.BaseImage is null)
                {
                    // existing image or ISO (or an empty CD-ROM drive)
                    if (d.Path is not null)
                    {
                        disk = disk with { Path = d.Path, Format = ExistingFormat(d.Path, cdrom, d.Format) };
                        if (!cdrom)
                        {
                            // never a second writer: an image another VM writes, or reads as a backing file, is refused (DiskInUse)
                            (_usage ??= StorageUsage.Read(connection)).RequireNoConflict(d.Path, null, spec.Name, d.ReadOnly, shareable: false);
                        }
                    }
                    else
                    {
                        disk = disk with { Format = "raw" };
                    }

                    config.Disks.Add(disk);
                    continue;
                }

                (string pool, string name) = VolumeLocation(d, i, dryRun);
                if (!names.Add($"{pool}/{name}"))
                {
                    throw new KvmOperationException("DiskExists", $"Two disks of the spec would both be volume '{name}' in pool '{pool}'.", name);
                }

                string format = d.Format ?? "qcow2";
                ulong capacity = d.SizeBytes ?? 0;
                string? backingPath = null, backingFormat = null;
                if (d.BaseImage is not null)
                {
                    (backingPath, backingFormat, ulong baseSize) = ResolveBaseImage(d.BaseImage, d.BaseImageFormat);
                    if (format != "qcow2")
                    {
                        throw new VmSpecException($"disks[{i}].format", "an overlay on a base image is always qcow2.");
                    }

                    if (d.SizeBytes is { } want && want < baseSize)
                    {
                        throw new VmSpecException($"disks[{i}].size", $"{ByteSize.Format(want)} is smaller than the base image ({ByteSize.Format(baseSize)}); an overlay can only grow it.");
                    }

                    capacity = Math.Max(capacity, baseSize);
                }

                if (!dryRun && connection.Invoke(c => c.LookupStorageVolume(pool, name)) is { } existing)
                {
                    throw new KvmOperationException("DiskExists", $"Volume '{name}' already exists in pool '{pool}' ({existing.Path}); it was not touched.", existing.Path)
                    {
                        Hint = "Remove it, or choose another -Name or -DiskPath.",
                    };
                }

                config.Disks.Add(disk with { Format = format, Path = d.Path });
                volumes.Add(new PlannedVolume
                {
                    Pool = pool,
                    Name = name,
                    Format = format,
                    CapacityBytes = capacity,
                    BackingPath = backingPath,
                    BackingFormat = backingFormat,
                    Disk = d,
                    DiskIndex = config.Disks.Count - 1,
                });
            }

            if (spec.CloudInit is not null)
            {
                // The seed CD goes on virtio-scsi: Debian's and others' cloud kernels have no SATA (AHCI) driver.
                string poolName = spec.Disks.FirstOrDefault(d => d.Pool is not null)?.Pool ?? spec.StoragePool ?? DefaultPool;
                if (!dryRun)
                {
                    EnsurePool(connection, poolName, log);
                }

                string seedName = $"{SafeFileName(spec.Name)}.cidata.iso";
                if (!dryRun && connection.Invoke(c => c.LookupStorageVolume(poolName, seedName)) is { } existingSeed)
                {
                    throw new KvmOperationException("DiskExists", $"Volume '{seedName}' already exists in pool '{poolName}' ({existingSeed.Path}); it was not touched.", existingSeed.Path)
                    {
                        Kind = KvmErrorKind.AlreadyExists,
                    };
                }

                config.VirtioScsiController = true;
                config.Disks.Add(new KvmVmDisk { Target = $"sd{(char)('a' + cdIndex++)}", Bus = "scsi", Device = "cdrom", ReadOnly = true, Format = "raw", SourceType = "file" });
                Seed = (poolName, seedName, config.Disks.Count - 1);
            }

            if (config.Disks.Any(d => d.Bus == "scsi"))
            {
                config.VirtioScsiController = true;
            }

            foreach (string network in ResolveNetworks())
            {
                config.NetworkAdapters.Add(new KvmVmNetworkAdapter { Type = "network", Source = network, Model = "virtio" });
            }

            return (config, volumes);
        }

        private IEnumerable<string> ResolveNetworks()
        {
            if (spec.NoNetwork)
            {
                return [];
            }

            if (spec.Networks.Count > 0)
            {
                foreach (string n in spec.Networks)
                {
                    if (!connection.Invoke(c => c.NetworkExists(n)))
                    {
                        throw new KvmOperationException("NetworkNotFound", $"There is no virtual network '{n}' on {connection.Uri}.", n)
                        {
                            Hint = "List the networks with 'virsh net-list --all', or use -NoNetwork.",
                        };
                    }
                }

                RequireActiveToStart(spec.Networks);
                return spec.Networks;
            }

            if (connection.Invoke(c => c.NetworkExists("default")))
            {
                log.Verbose("No -Network given: attaching one NIC to the 'default' network");
                RequireActiveToStart(["default"]);
                return ["default"];
            }

            log.Warning("No -Network given and the host has no 'default' network: the VM gets no network adapter.");
            return [];
        }

        /// <summary>With -Start, an inactive network stops the command before anything is created.</summary>
        private void RequireActiveToStart(IEnumerable<string> networks)
        {
            if (spec.Start)
            {
                NetworkReadiness.RequireActive(connection, networks, $"VM '{spec.Name}' could not be started on it (nothing was created)");
            }
        }

        private (string Pool, string Name) VolumeLocation(VmDiskSpec d, int index, bool dryRun)
        {
            if (d.Path is not null)
            {
                string dir = Path.GetDirectoryName(d.Path) ?? "/";
                string? pool = PoolForDirectory(connection, dir) ?? throw new KvmOperationException("StoragePoolNotFound",
                    $"No storage pool has the folder '{dir}' as its target, so a disk cannot be created at '{d.Path}'.", d.Path)
                {
                    Hint = "Create the disk in a pool's folder, or leave -DiskPath out to use -StoragePool.",
                };
                return (pool, Path.GetFileName(d.Path));
            }

            string poolName = d.Pool ?? spec.StoragePool ?? DefaultPool;
            if (!dryRun)
            {
                EnsurePool(connection, poolName, log);
            }

            string baseName = SafeFileName(spec.Name);
            return (poolName, index == 0 ? $"{baseName}.qcow2" : $"{baseName}-{index}.qcow2");
        }

        private (string Path, string Format, ulong VirtualSize) ResolveBaseImage(string baseImage, string? declared)
        {
            // Never taken from the image's bytes (nor libvirt's guess from them): what the user says, else raw.
            string format = declared ?? "raw";
            StorageVolumeInfo? vol = null;
            if (!baseImage.StartsWith('/') && baseImage.Split('/') is [var pool, var name])
            {
                vol = connection.Invoke(c => c.LookupStorageVolume(pool, name));
            }
            else if (baseImage.StartsWith('/'))
            {
                vol = connection.Invoke(c => c.LookupStorageVolumeByPath(baseImage));
            }

            bool localFile = connection.IsProvenLocal && File.Exists(vol?.Path ?? baseImage);
            if (vol is not null || (localFile && baseImage.StartsWith('/')))
            {
                string path = vol?.Path ?? baseImage;
                ImageTrust.CheckExisting(connection, path, format, vol, "base image", log);
                ulong size = localFile ? ImageTrust.LocalVirtualSize(path, format) : vol!.CapacityBytes;
                if (declared is null)
                {
                    log.Verbose($"Base image '{path}' is used as {format} (no -Format given)");
                }

                return (path, format, size);
            }

            throw new KvmOperationException("BaseImageNotFound",
                $"The base image '{baseImage}' was found neither as a volume nor{(connection.IsProvenLocal ? " as a file" : $" (only volumes count: {connection.LocalityDetail})")}.", baseImage)
            {
                Hint = "Give a file path on the host or pool/volume.",
            };
        }

        private string ExistingFormat(string path, bool cdrom, string? declared)
        {
            // An existing image is what the user says it is, else raw: its own first bytes (which a guest may have written)
            // and libvirt's volume format (read from those bytes in directory pools) never decide.
            string format = declared ?? "raw";
            StorageVolumeInfo? vol = connection.Invoke(c => c.LookupStorageVolumeByPath(path));
            if (vol is null && !(connection.IsProvenLocal && File.Exists(path)))
            {
                throw new KvmOperationException("DiskNotFound", $"The disk image '{path}' does not exist on {connection.HostName}.", path);
            }

            if (!cdrom)
            {
                ImageTrust.CheckExisting(connection, path, format, vol, "disk image", log);
            }

            return format;
        }
    }
}
