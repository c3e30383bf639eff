using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// Storage pools and volumes: listing (bulk), defining, starting, removing; creating, resizing, cloning, uploading
/// and downloading volumes. Every multi-step change removes what it made when a later step fails or is cancelled.
/// </summary>
public static class StorageService
{
    /// <summary>The CacheNames kind of pool names.</summary>
    public const string PoolKind = "pool";

    /// <summary>virStoragePoolBuildFlags: fail instead of formatting a device that holds data.</summary>
    private const uint BuildNoOverwrite = 4;

    /// <summary>virStorageVolResizeFlags: allow the new capacity to be smaller.</summary>
    private const uint ResizeShrink = 4;

    private static readonly string[] s_volumeTypes = ["file", "block", "dir", "network", "netdir", "ploop"];

    /// <summary>The CacheNames kind of the volume names of one pool.</summary>
    public static string VolumeKind(string pool) => "volume:" + pool;

    // ------------------------------------------------------------------ pools

    /// <summary>Every pool of the connection (one bulk listing); remembers their names for tab completion.</summary>
    public static IReadOnlyList<KvmStoragePool> ListPools(KvmConnection connection)
    {
        IReadOnlyList<StoragePoolData> data = connection.Invoke(c => c.ListStoragePools());
        List<KvmStoragePool> pools = data.Select(d => ToPool(connection, d)).OrderBy(p => p.Name, StringComparer.OrdinalIgnoreCase).ToList();
        connection.CacheNames(PoolKind, pools.Select(p => p.Name));
        return pools;
    }

    /// <summary>The pool with exactly this name, or null.</summary>
    public static KvmStoragePool? GetPool(KvmConnection connection, string name)
        => ListPools(connection).FirstOrDefault(p => p.Name == name);

    /// <summary>The pool as it is now; StoragePoolNotFound when it is gone.</summary>
    public static KvmStoragePool RequirePool(KvmConnection connection, string name)
        => GetPool(connection, name) ?? throw PoolNotFound(connection, name);

    /// <summary>The pool, which must be running (volumes can only be listed and made in running pools).</summary>
    public static KvmStoragePool RequireRunningPool(KvmConnection connection, string name)
    {
        KvmStoragePool pool = RequirePool(connection, name);
        if (!pool.IsRunning)
        {
            throw new KvmOperationException("StoragePoolInactive", $"Storage pool '{name}' is {pool.State}, not running.", name)
            {
                Kind = KvmErrorKind.Unavailable,
                Hint = $"Start it with Start-KvmStoragePool {name}.",
            };
        }

        return pool;
    }

    /// <summary>The pool XML for a definition (validated first), built with System.Xml.Linq.</summary>
    public static XElement BuildPoolXml(KvmStoragePoolDefinition d)
    {
        ValidateDefinition(d);
        var source = new XElement("source");
        if (d.SourceHost is not null)
        {
            source.Add(new XElement("host", new XAttribute("name", d.SourceHost)));
        }

        if (d.SourcePath is not null)
        {
            source.Add(new XElement("dir", new XAttribute("path", d.SourcePath)));
        }

        foreach (string device in d.SourceDevices)
        {
            source.Add(new XElement("device", new XAttribute("path", device)));
        }

        if (d.SourceName is not null)
        {
            source.Add(new XElement("name", d.SourceName));
        }

        if (d.Type is KvmStoragePoolType.Fs or KvmStoragePoolType.Netfs)
        {
            source.Add(new XElement("format", new XAttribute("type", "auto")));
        }

        string? target = d.Path ?? d.Type switch
        {
            KvmStoragePoolType.Logical => "/dev/" + (d.SourceName ?? d.Name),
            KvmStoragePoolType.Iscsi => "/dev/disk/by-path",
            _ => null,
        };
        return new XElement("pool", new XAttribute("type", TypeName(d.Type)),
            new XElement("name", d.Name),
            source.HasElements ? source : null,
            target is null ? null : new XElement("target", new XElement("path", target)));
    }

    /// <summary>
    /// Defines a pool; with <paramref name="start"/> builds (creates the folder; never formats a device) and starts it.
    /// When a step fails, what was made is removed again (the folder only when this call created it).
    /// </summary>
    public static KvmStoragePool CreatePool(KvmConnection connection, KvmStoragePoolDefinition definition, bool autostart, bool start, IKvmLog log)
    {
        XElement xml = BuildPoolXml(definition);
        string name = definition.Name;
        if (ListPools(connection).Any(p => p.Name == name))
        {
            throw new KvmOperationException("StoragePoolExists", $"A storage pool named '{name}' already exists on {connection.Uri}.", name)
            {
                Kind = KvmErrorKind.AlreadyExists,
                Hint = "Choose another -Name, or remove the old pool with Remove-KvmStoragePool.",
            };
        }

        string? target = (string?)xml.Element("target")?.Element("path");
        bool local = IsLocal(connection);
        bool folderPool = definition.Type is KvmStoragePoolType.Dir or KvmStoragePoolType.Fs or KvmStoragePoolType.Netfs;
        if (local && folderPool && target is not null && File.Exists(target))
        {
            throw new KvmOperationException("PoolPathIsFile",
                $"The path '{target}' is a file; a {TypeName(definition.Type)} pool needs a folder there. Nothing was defined.", target)
            {
                Kind = KvmErrorKind.InvalidArgument,
                Hint = "Give -Path a folder (it is created with -Start when it does not exist).",
            };
        }

        bool targetExisted = !local || target is null || Directory.Exists(target);
        var undo = new Stack<(string What, Action Do)>();
        string step = "define the pool";
        bool remoteFolderKept = false;   // built on a remote host: whether the folder existed before is unknown there
        try
        {
            log.Verbose($"Defining {TypeName(definition.Type)} storage pool '{name}'{(target is null ? string.Empty : $" at {target}")}");
            connection.Invoke(c => c.DefineStoragePool(xml.ToString()));
            undo.Push(("the pool definition", () => connection.Invoke(c => c.UndefineStoragePool(name))));
            if (autostart)
            {
                step = "turn on autostart";
                connection.Invoke(c => c.SetStoragePoolAutostart(name, true));
            }

            if (start)
            {
                step = "build the pool";
                if (BuildFlags(definition.Type, definition.SourceDevices.Count > 0) is { } flags)
                {
                    log.Verbose($"Building storage pool '{name}'");
                    connection.Invoke(c => c.BuildStoragePool(name, flags));
                    remoteFolderKept = !local && folderPool;
                    if (!targetExisted)
                    {
                        undo.Push(($"the folder {target}", () => connection.Invoke(c => c.DeleteStoragePoolStorage(name, 0))));
                    }
                }

                step = "start the pool";
                log.Verbose($"Starting storage pool '{name}'");
                connection.Invoke(c => c.StartStoragePool(name));
            }
        }
        catch (LibvirtException e)
        {
            Rollback(undo, log);
            throw new KvmOperationException("StoragePoolCreateFailed",
                $"Creating storage pool '{name}' failed at step '{step}': {e.Message} "
                + (remoteFolderKept ? $"The pool definition was removed; the folder {target} on the host, if building created it, is kept." : "Nothing was left behind."), name, e)
            {
                Step = step,
                Kind = KvmErrorKind.InvalidOperation,
            };
        }

        Remember(connection, PoolKind, name);
        return RequirePool(connection, name);
    }

    /// <summary>Starts a pool (no-op when running); with <paramref name="build"/> builds its storage first.</summary>
    public static void StartPool(KvmStoragePool pool, bool build, IKvmLog log)
    {
        KvmStoragePool now = RequirePool(pool.Connection, pool.Name);
        if (now.IsRunning)
        {
            log.Verbose($"Storage pool '{pool.Name}' is already running");
            return;
        }

        if (build)
        {
            XElement xml = XElement.Parse(pool.Connection.Invoke(c => c.GetStoragePoolXml(pool.Name, 0)));
            bool devices = xml.Element("source")?.Elements("device").Any() == true;
            if (Enum.TryParse(now.Type, ignoreCase: true, out KvmStoragePoolType type) && BuildFlags(type, devices) is { } flags)
            {
                log.Verbose($"Building storage pool '{pool.Name}'");
                pool.Connection.Invoke(c => c.BuildStoragePool(pool.Name, flags));
            }
        }

        log.Verbose($"Starting storage pool '{pool.Name}'");
        pool.Connection.Invoke(c => c.StartStoragePool(pool.Name));
    }

    /// <summary>Stops a pool (no-op when it is not running). Its storage and volumes stay; a transient pool disappears.</summary>
    public static void StopPool(KvmStoragePool pool, IKvmLog log)
    {
        KvmStoragePool now = RequirePool(pool.Connection, pool.Name);
        if (!now.IsRunning && now.State != KvmStoragePoolState.Degraded)
        {
            log.Verbose($"Storage pool '{pool.Name}' is not running");
            return;
        }

        log.Verbose($"Stopping storage pool '{pool.Name}'");
        pool.Connection.Invoke(c => c.StopStoragePool(pool.Name));
    }

    /// <summary>Rereads the pool's volumes from its storage (files added or removed outside libvirt).</summary>
    public static void RefreshPool(KvmStoragePool pool, IKvmLog log)
    {
        KvmStoragePool now = RequireRunningPool(pool.Connection, pool.Name);
        log.Verbose($"Refreshing storage pool '{now.Name}'");
        pool.Connection.Invoke(c => c.RefreshStoragePool(now.Name));
    }

    /// <summary>
    /// What <c>Remove-KvmStoragePool -DeleteContents</c> would meet in a running pool: each volume a VM uses (any depth of
    /// any VM's chain, live or inactive) with its users. Empty for a pool that is not running (its volumes cannot be listed).
    /// </summary>
    public static IReadOnlyList<(string Volume, IReadOnlyList<StorageUse> Users)> VolumesInUse(KvmStoragePool pool, CancellationToken cancel = default)
    {
        if (!pool.IsRunning)
        {
            return [];
        }

        KvmConnection connection = pool.Connection;
        return UsedVolumes(connection, connection.Invoke(c => c.ListStorageVolumes(pool.Name)), cancel).Select(u => (u.Volume.Name, u.Users)).ToList();
    }

    // The volumes of the list that some VM uses (any depth of any VM's chain, live or inactive), with their users.
    private static List<(StorageVolumeInfo Volume, IReadOnlyList<StorageUse> Users)> UsedVolumes(KvmConnection connection, IReadOnlyList<StorageVolumeInfo> volumes, CancellationToken cancel)
    {
        StorageUsage usage = StorageUsage.Read(connection, cancel);
        return volumes.Select(v => (Volume: v, Users: usage.UsersOf(v.Path))).Where(x => x.Users.Count > 0).ToList();
    }

    /// <summary>
    /// Removes a pool: stops it and undefines it. With <paramref name="deleteContents"/> first deletes every volume and
    /// then the pool's storage (the folder of a dir pool); refuses when a VM uses one of the volumes, unless <paramref name="force"/>.
    /// </summary>
    public static void RemovePool(KvmStoragePool pool, bool deleteContents, bool force, IKvmLog log, CancellationToken cancel)
    {
        KvmConnection connection = pool.Connection;
        string name = pool.Name;
        KvmStoragePool now = RequirePool(connection, name);
        if (deleteContents)
        {
            bool startedHere = false;
            if (!now.IsRunning)
            {
                log.Verbose($"Starting storage pool '{name}' to delete its volumes");
                connection.Invoke(c => c.StartStoragePool(name));
                startedHere = true;
            }

            connection.Invoke(c => c.RefreshStoragePool(name));
            IReadOnlyList<StorageVolumeInfo> volumes = connection.Invoke(c => c.ListStorageVolumes(name));
            var used = UsedVolumes(connection, volumes, cancel);
            if (used.Count > 0 && !force)
            {
                if (startedHere)
                {
                    connection.Invoke(c => c.StopStoragePool(name));
                }

                throw new KvmOperationException("VolumeInUse",
                    $"Storage pool '{name}' holds volumes used by VMs: {string.Join("; ", used.Select(u => $"{u.Volume.Name} by {string.Join(", ", u.Users.Select(x => x.ToString()).Distinct())}"))}. Nothing was deleted.", name)
                {
                    Kind = KvmErrorKind.InUse,
                    Hint = "Remove those disks from the VMs (or the VMs) first, or add -Force to delete the volumes anyway.",
                };
            }

            foreach ((StorageVolumeInfo v, IReadOnlyList<StorageUse> users) in used)
            {
                log.Warning($"Deleting volume '{v.Name}' although {string.Join(", ", users.Select(u => u.ToString()).Distinct())} use it (-Force).");
            }

            foreach (StorageVolumeInfo v in volumes)
            {
                cancel.ThrowIfCancellationRequested();
                log.Verbose($"Deleting volume '{v.Name}' ({v.Path})");
                connection.Invoke(c => c.DeleteStorageVolume(v));
            }

            connection.CacheNames(VolumeKind(name), []);
            log.Verbose($"Stopping storage pool '{name}'");
            connection.Invoke(c => c.StopStoragePool(name));
            if (now.Persistent)
            {
                log.Verbose($"Deleting the storage of pool '{name}'{(now.Path is null ? string.Empty : $" ({now.Path})")}");
                connection.Invoke(c => c.DeleteStoragePoolStorage(name, 0));
            }
            else
            {
                log.Warning($"Storage pool '{name}' is transient: it is gone once stopped, and its folder {now.Path} is kept.");
            }
        }
        else if (now.IsRunning || now.State == KvmStoragePoolState.Degraded)
        {
            log.Verbose($"Stopping storage pool '{name}' (its storage and volumes are kept)");
            connection.Invoke(c => c.StopStoragePool(name));
        }

        if (now.Persistent)
        {
            log.Verbose($"Undefining storage pool '{name}'");
            connection.Invoke(c => c.UndefineStoragePool(name));
        }

        Forget(connection, PoolKind, name);
    }

    // ------------------------------------------------------------------ volumes

    /// <summary>The volumes of a running pool, with format, backing store and (when <paramref name="usage"/> is given) users.</summary>
    public static IReadOnlyList<KvmVolume> ListVolumes(KvmConnection connection, string pool, StorageUsage? usage, CancellationToken cancel = default)
    {
        IReadOnlyList<StorageVolumeInfo> infos = ListVolumeInfos(connection, pool);
        var result = new List<KvmVolume>(infos.Count);
        foreach (StorageVolumeInfo v in infos)
        {
            cancel.ThrowIfCancellationRequested();
            if (ReadVolume(connection, v, usage) is { } volume)
            {
                result.Add(volume);
            }
        }

        return result;
    }

    /// <summary>Names, paths and sizes of a pool's volumes (one listing call); remembers the names for completion.</summary>
    public static IReadOnlyList<StorageVolumeInfo> ListVolumeInfos(KvmConnection connection, string pool)
    {
        IReadOnlyList<StorageVolumeInfo> infos = Translate(connection, pool, null, () => connection.Invoke(c => c.ListStorageVolumes(pool)));
        connection.CacheNames(VolumeKind(pool), infos.Select(v => v.Name));
        return infos.OrderBy(v => v.Name, StringComparer.OrdinalIgnoreCase).ToList();
    }

    /// <summary>A listed volume with its format, backing store and users; null when it was deleted since the listing.</summary>
    public static KvmVolume? ReadVolume(KvmConnection connection, StorageVolumeInfo info, StorageUsage? usage)
    {
        try
        {
            return ToVolume(connection, info, usage);
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoStorageVol)
        {
            return null;
        }
    }

    /// <summary>The volume named <paramref name="name"/> in <paramref name="pool"/>; VolumeNotFound / StoragePoolNotFound otherwise.</summary>
    public static KvmVolume GetVolume(KvmConnection connection, string pool, string name, StorageUsage? usage)
        => ToVolume(connection, RequireVolumeInfo(connection, pool, name), usage);

    /// <summary>
    /// Creates a volume. qcow2 (the default in folder pools) is thin: it may be larger than the pool's free space
    /// (a warning says so). raw is fully allocated: larger than the free space is VolumeTooLarge, and nothing is made.
    /// With <paramref name="backing"/> (a path or pool/volume) the new qcow2 volume is an overlay on it.
    /// </summary>
    public static KvmVolume CreateVolume(KvmConnection connection, string pool, string name, ulong? sizeBytes, string? format, string? backing, IKvmLog log)
    {
        ValidateVolumeName(name);
        KvmStoragePool p = RequireRunningPool(connection, pool);
        RequireNoVolume(connection, pool, name);
        format ??= p.Type is "dir" or "fs" or "netfs" ? "qcow2" : "raw";
        string? backingPath = null;
        string? backingFormat = null;
        ulong capacity;
        if (backing is not null)
        {
            if (format != "qcow2")
            {
                throw new KvmOperationException("BackingNeedsQcow2", $"A {format} volume cannot have a backing volume; only qcow2 overlays can.", backing)
                {
                    Kind = KvmErrorKind.InvalidArgument,
                    Hint = "Leave -Format out or use -Format qcow2 with -BackingVolume.",
                };
            }

            StorageVolumeInfo b = ResolveVolumeReference(connection, backing)
                ?? throw new KvmOperationException("BackingVolumeNotFound", $"No volume '{backing}' on {connection.Uri}.", backing)
                {
                    Kind = KvmErrorKind.NotFound,
                    Hint = "Give the backing volume as pool/volume or as its full path (Get-KvmVolume shows both).",
                };
            backingPath = b.Path;
            backingFormat = FormatOf(XElement.Parse(connection.Invoke(c => c.GetStorageVolumeXml(b)))) ?? "raw";
            capacity = sizeBytes ?? b.CapacityBytes;
        }
        else
        {
            capacity = sizeBytes ?? throw new KvmOperationException("SizeRequired", "Give -SizeBytes (or -BackingVolume, whose size is then used).", name)
            {
                Kind = KvmErrorKind.InvalidArgument,
            };
        }

        if (capacity == 0)
        {
            throw new KvmOperationException("InvalidSize", "A volume needs a size above 0 bytes.", capacity) { Kind = KvmErrorKind.InvalidArgument };
        }

        bool thin = format == "qcow2";
        if (!thin && capacity > p.AvailableBytes)
        {
            throw TooLarge(pool, name, capacity, p.AvailableBytes, $"a {format} volume is allocated in full");
        }

        if (thin && capacity > p.AvailableBytes)
        {
            log.Warning($"Volume '{name}' ({ByteSize.Format(capacity)}) is larger than the {ByteSize.Format(p.AvailableBytes)} free in pool '{pool}'. qcow2 is thin, so it is created, but writes fail once the pool is full.");
        }

        var xml = new XElement("volume",
            new XElement("name", name),
            new XElement("capacity", new XAttribute("unit", "bytes"), capacity),
            thin ? new XElement("allocation", new XAttribute("unit", "bytes"), 0) : null,
            new XElement("target", new XElement("format", new XAttribute("type", format)), thin ? new XElement("compat", "1.1") : null),
            backingPath is null ? null : new XElement("backingStore",
                new XElement("path", backingPath),
                new XElement("format", new XAttribute("type", backingFormat!))));
        log.Verbose($"Creating {format} volume '{name}' ({ByteSize.Format(capacity)}) in pool '{pool}'{(backingPath is null ? string.Empty : $" on top of '{backingPath}'")}");
        var undo = new UndoLog(log);
        try
        {
            StorageVolumeInfo created = undo.Call(connection, $"remove volume {pool}/{name}", c => c.CreateStorageVolume(pool, xml.ToString(), 0),
                _ => DeleteVolumeIfPresent(connection, pool, name), () => DeleteVolumeIfPresent(connection, pool, name));
            Remember(connection, VolumeKind(pool), name);
            KvmVolume result = ToVolume(connection, created, null);
            undo.Commit();
            return result;
        }
        catch (Exception)
        {
            undo.Rollback();
            throw;
        }
    }

    /// <summary>Deletes a volume; refuses one that a VM uses (per <paramref name="usage"/>) unless <paramref name="force"/>.</summary>
    public static void RemoveVolume(KvmVolume volume, bool force, StorageUsage usage, IKvmLog log)
    {
        StorageVolumeInfo info = RequireVolumeInfo(volume.Connection, volume.Pool, volume.Name);
        IReadOnlyList<string> users = usage.UsersOf(info.Path).Select(u => u.ToString()).Distinct().ToList();
        if (users.Count > 0 && !force)
        {
            throw new KvmOperationException("VolumeInUse",
                $"Volume '{volume.Pool}/{volume.Name}' ({info.Path}) is used by {string.Join(", ", users)}. It was not deleted.", volume.Name)
            {
                Kind = KvmErrorKind.InUse,
                Hint = "Remove the disk from the VM(s) first, or add -Force to delete it anyway (the VMs then lose that disk).",
            };
        }

        if (users.Count > 0)
        {
            log.Warning($"Deleting volume '{volume.Pool}/{volume.Name}' although {string.Join(", ", users)} use it (-Force).");
        }

        log.Verbose($"Deleting volume '{volume.Pool}/{volume.Name}' ({info.Path})");
        volume.Connection.Invoke(c => c.DeleteStorageVolume(info));
        Forget(volume.Connection, VolumeKind(volume.Pool), volume.Name);
    }

    /// <summary>Changes a volume's capacity; a smaller size needs <paramref name="allowShrink"/> (data past the new end is lost).</summary>
    public static KvmVolume ResizeVolume(KvmVolume volume, ulong sizeBytes, bool allowShrink, IKvmLog log)
    {
        StorageVolumeInfo info = RequireVolumeInfo(volume.Connection, volume.Pool, volume.Name);
        if (sizeBytes == 0)
        {
            throw new KvmOperationException("InvalidSize", "A volume needs a size above 0 bytes.", sizeBytes) { Kind = KvmErrorKind.InvalidArgument };
        }

        if (sizeBytes == info.CapacityBytes)
        {
            log.Verbose($"Volume '{volume.Pool}/{volume.Name}' is already {ByteSize.Format(sizeBytes)}");
            return ToVolume(volume.Connection, info, null);
        }

        bool shrink = sizeBytes < info.CapacityBytes;
        if (shrink && !allowShrink)
        {
            throw new KvmOperationException("VolumeShrinkRefused",
                $"Volume '{volume.Pool}/{volume.Name}' is {ByteSize.Format(info.CapacityBytes)}; resizing it to {ByteSize.Format(sizeBytes)} would cut off its end and the data there. It was not changed.", volume.Name)
            {
                Kind = KvmErrorKind.InvalidOperation,
                Hint = "Shrink the guest's partitions and file systems first, then run the command again with -AllowShrink.",
            };
        }

        if (shrink && sizeBytes < info.AllocationBytes)
        {
            throw new KvmOperationException("VolumeShrinkBelowAllocation",
                $"Volume '{volume.Pool}/{volume.Name}' already takes {ByteSize.Format(info.AllocationBytes)} in the pool; libvirt cannot shrink a volume below the space it takes ({ByteSize.Format(sizeBytes)} asked). It was not changed.", volume.Name)
            {
                Kind = KvmErrorKind.InvalidOperation,
                Hint = "Fully allocated raw volumes cannot be shrunk; copy the data into a new, smaller volume instead.",
            };
        }

        log.Verbose($"{(shrink ? "Shrinking" : "Growing")} volume '{volume.Pool}/{volume.Name}' from {ByteSize.Format(info.CapacityBytes)} to {ByteSize.Format(sizeBytes)}");
        volume.Connection.Invoke(c => c.ResizeStorageVolume(info, sizeBytes, shrink ? ResizeShrink : 0));
        return GetVolume(volume.Connection, volume.Pool, volume.Name, null);
    }

    /// <summary>
    /// Clones a volume (same format, same allocation: sparse stays sparse) into <paramref name="destinationPool"/>. The clone
    /// runs on a worker task while this thread reports the new volume's growth. libvirt cannot abort a clone: on cancel this
    /// waits for it to end, deletes the new volume and throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public static KvmVolume CopyVolume(KvmVolume source, string? destinationPool, string destinationName, IKvmLog log, CancellationToken cancel)
    {
        KvmConnection connection = source.Connection;
        ValidateVolumeName(destinationName);
        StorageVolumeInfo src = RequireVolumeInfo(connection, source.Pool, source.Name);
        string pool = destinationPool ?? source.Pool;
        KvmStoragePool p = RequireRunningPool(connection, pool);
        RequireNoVolume(connection, pool, destinationName);
        string format = FormatOf(XElement.Parse(connection.Invoke(c => c.GetStorageVolumeXml(src)))) ?? "raw";
        if (format == "qcow2" && src.Type != 1)
        {
            // libvirt copies a qcow2 volume with qemu-img convert, which flattens the backing chain its header names; in
            // a directory pool that format was read from the bytes, which a guest may have written. Only chains of pool
            // volumes with declared formats are copied.
            Images.ImageTrust.CheckExisting(connection, src.Path, "qcow2", src, "volume", log);
        }

        ulong needed = src.AllocationBytes;
        if (needed > p.AvailableBytes)
        {
            throw TooLarge(pool, destinationName, needed, p.AvailableBytes, "the copy takes as much space as the source volume");
        }

        var xml = new XElement("volume",
            new XElement("name", destinationName),
            new XElement("capacity", new XAttribute("unit", "bytes"), src.CapacityBytes),
            new XElement("allocation", new XAttribute("unit", "bytes"), Math.Min(src.AllocationBytes, src.CapacityBytes)),
            new XElement("target", new XElement("format", new XAttribute("type", format)), format == "qcow2" ? new XElement("compat", "1.1") : null));
        string activity = $"Copying volume {source.Pool}/{source.Name} to {pool}/{destinationName}";
        log.Verbose($"{activity} ({format}, {ByteSize.Format(src.AllocationBytes)} allocated)");
        cancel.ThrowIfCancellationRequested();
        // libvirt cannot abort a clone: it runs outside the command's call scope (Ctrl+C does not give it up; only the
        // connection's OperationTimeout does), and on Ctrl+C the new volume is deleted as soon as the clone ends.
        var undo = new UndoLog(log);
        Task<StorageVolumeInfo> clone = Task.Run(() =>
        {
            using IDisposable unbounded = KvmCallScope.Enter(CancellationToken.None);
            return undo.Call(connection, $"remove the copy {pool}/{destinationName}", c => c.CloneStorageVolume(pool, xml.ToString(), src, 0),
                _ => DeleteVolumeIfPresent(connection, pool, destinationName), () => DeleteVolumeIfPresent(connection, pool, destinationName));
        }, CancellationToken.None);
        try
        {
            while (Task.WaitAny([clone], TimeSpan.FromMilliseconds(250)) < 0)   // WaitAny: a failed clone is rethrown below, unwrapped
            {
                if (cancel.IsCancellationRequested)
                {
                    break;
                }

                ulong done = CurrentAllocation(connection, pool, destinationName);
                int percent = needed == 0 ? -1 : (int)Math.Min(99, 100 * (double)done / needed);
                log.Progress(activity, $"{ByteSize.Format(done)} of {ByteSize.Format(needed)}", percent);
            }

            if (cancel.IsCancellationRequested)
            {
                log.Verbose("Cancelled: libvirt cannot abort a copy; the new volume is deleted as soon as the copy ends");
                // the undo step (registered before the clone) deletes the copy by name, whichever way the clone ends
                Task cleanup = clone.ContinueWith(_ => undo.Rollback(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                cleanup.Wait(UndoLog.RollbackTime);
                throw new OperationCanceledException(cancel);
            }

            StorageVolumeInfo created = clone.GetAwaiter().GetResult();
            Remember(connection, VolumeKind(pool), destinationName);
            KvmVolume result = ToVolume(connection, created, null);
            undo.Commit();
            return result;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            undo.Rollback();
            throw;
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
        }
    }

    /// <summary>
    /// Uploads a local file into a new volume sized to the file; the volume holds exactly the file's bytes (libvirt reports
    /// the format it finds in them). Works the same to a remote host. On failure or cancel the new volume is deleted.
    /// </summary>
    public static KvmVolume ImportVolume(KvmConnection connection, string localPath, string pool, string name, string? format, IKvmLog log, CancellationToken cancel)
    {
        ValidateVolumeName(name);
        if (!File.Exists(localPath))
        {
            throw new KvmOperationException("SourceFileNotFound", $"The file '{localPath}' does not exist.", localPath) { Kind = KvmErrorKind.NotFound };
        }

        ulong length = (ulong)new FileInfo(localPath).Length;
        if (length == 0)
        {
            throw new KvmOperationException("SourceFileEmpty", $"The file '{localPath}' is empty; a volume needs at least one byte.", localPath)
            {
                Kind = KvmErrorKind.InvalidArgument,
            };
        }

        // The uploaded bytes are checked in-process before libvirt reads a format from them: a file used as qcow2 (declared,
        // or not declared and carrying a qcow2 header, which libvirt would then report) may not pull in other host files.
        Images.Qcow2Header? header;
        try
        {
            header = Images.Qcow2Header.Read(localPath);
        }
        catch (InvalidDataException e)
        {
            if (format == "raw")
            {
                header = null;
            }
            else
            {
                throw new KvmOperationException("ImageFormatMismatch", $"The file '{localPath}' has a qcow2 header that cannot be read safely: {e.Message}", localPath, e)
                {
                    Kind = KvmErrorKind.InvalidData,
                    Hint = "Say -Format raw to import its bytes as a raw image.",
                };
            }
        }

        if (format == "qcow2" && header is null)
        {
            throw new KvmOperationException("ImageFormatMismatch", $"The file '{localPath}' is not a qcow2 image (it has no qcow2 header).", localPath)
            {
                Kind = KvmErrorKind.InvalidData,
                Hint = "Leave -Format out to import the file as it is (raw).",
            };
        }

        if (header is not null && format != "raw")
        {
            Images.ImageTrust.RefuseReferences(localPath, "image", header);
        }
        else if (header is not null)
        {
            log.Warning($"'{localPath}' starts with a qcow2 header{(header.BackingFile is null ? string.Empty : $" naming the backing file '{header.BackingFile}'")}; it is imported as raw bytes, as -Format raw says. libvirt may still describe the volume as qcow2; KvmPS checks it again before a VM uses it.");
        }

        string detected = header is null ? "raw" : "qcow2 header, no backing or data file";

        KvmStoragePool p = RequireRunningPool(connection, pool);
        RequireNoVolume(connection, pool, name);
        if (length > p.AvailableBytes)
        {
            throw TooLarge(pool, name, length, p.AvailableBytes, "the uploaded file is stored in full");
        }

        // Made as a sparse raw file of exactly the file's length, so that after the upload the volume IS the file, byte for
        // byte (a qcow2 volume would first get qemu-img's own header, which the upload would only partly overwrite).
        var xml = new XElement("volume",
            new XElement("name", name),
            new XElement("capacity", new XAttribute("unit", "bytes"), length),
            new XElement("allocation", new XAttribute("unit", "bytes"), 0),
            new XElement("target", new XElement("format", new XAttribute("type", "raw"))));
        log.Verbose($"Creating volume '{name}' ({ByteSize.Format(length)}) in pool '{pool}' for {localPath} ({format ?? detected})");
        string activity = $"Uploading {Path.GetFileName(localPath)} to {pool}/{name}";
        var undo = new UndoLog(log);
        StorageVolumeInfo created;
        try
        {
            created = undo.Call(connection, $"remove the incomplete volume {pool}/{name}", c => c.CreateStorageVolume(pool, xml.ToString(), 0),
                _ => DeleteVolumeIfPresent(connection, pool, name), () => DeleteVolumeIfPresent(connection, pool, name));
        }
        catch (Exception)
        {
            undo.Rollback();
            throw;
        }

        try
        {
            using (var file = new FileStream(localPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
            {
                int last = -1;
                connection.Invoke(c => c.UploadStorageVolume(created, file, length, sent =>
                {
                    int percent = (int)(100 * (double)sent / length);
                    if (percent != last)
                    {
                        last = percent;
                        log.Progress(activity, $"{ByteSize.Format(sent)} of {ByteSize.Format(length)}", Math.Min(99, percent));
                    }
                }, cancel));
            }

            log.Verbose($"Uploaded {length} bytes; refreshing pool '{pool}' so libvirt reads the volume's format");
            TryRefresh(connection, pool, log);
            Remember(connection, VolumeKind(pool), name);
            KvmVolume result = GetVolume(connection, pool, name, null);
            undo.Commit();
            return result;
        }
        catch (Exception e)
        {
            undo.Rollback();
            if (e is not (LibvirtException or IOException or UnauthorizedAccessException))
            {
                throw;
            }

            throw new KvmOperationException("VolumeUploadFailed", $"Uploading '{localPath}' to volume '{pool}/{name}' failed: {e.Message} The volume was deleted.", localPath, e)
            {
                Kind = KvmErrorKind.WriteError,
            };
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
        }
    }

    /// <summary>
    /// Downloads a volume's content (its file as stored: a qcow2 volume downloads as a qcow2 file) into a local file. Writes
    /// a hidden partial file beside the destination and renames it at the end; on failure or cancel the partial file is
    /// deleted and an existing destination is untouched. Returns the bytes written.
    /// </summary>
    public static ulong ExportVolume(KvmVolume volume, string destination, bool overwrite, IKvmLog log, CancellationToken cancel)
    {
        StorageVolumeInfo info = RequireVolumeInfo(volume.Connection, volume.Pool, volume.Name);
        if (File.Exists(destination) && !overwrite)
        {
            throw new KvmOperationException("DestinationExists", $"The file '{destination}' already exists.", destination)
            {
                Kind = KvmErrorKind.AlreadyExists,
                Hint = "Add -Force to replace it, or choose another -Destination.",
            };
        }

        string folder = Path.GetDirectoryName(destination) ?? ".";
        if (!Directory.Exists(folder))
        {
            throw new KvmOperationException("DestinationNotFound", $"The folder '{folder}' does not exist.", destination) { Kind = KvmErrorKind.NotFound };
        }

        ulong? expected = PhysicalOf(XElement.Parse(volume.Connection.Invoke(c => c.GetStorageVolumeXml(info))));
        string partial = Path.Combine(folder, $".{Path.GetFileName(destination)}.{Guid.NewGuid():N}.partial");
        string activity = $"Downloading {volume.Pool}/{volume.Name} to {destination}";
        log.Verbose($"{activity}{(expected is { } e0 ? $" ({ByteSize.Format(e0)})" : string.Empty)}");
        try
        {
            ulong received;
            // 0600 from the first byte: a disk image holds a guest's data (libvirt's own volumes are 0600 too)
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 1 << 16 };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var file = new FileStream(partial, options))
            {
                int last = -1;
                received = volume.Connection.Invoke(c => c.DownloadStorageVolume(info, file, got =>
                {
                    int percent = expected is { } total && total > 0 ? (int)Math.Min(99, 100 * (double)got / total) : -1;
                    if (percent != last || percent < 0)
                    {
                        last = percent;
                        log.Progress(activity, ByteSize.Format(got) + (expected is { } t ? $" of {ByteSize.Format(t)}" : string.Empty), percent);
                    }
                }, cancel));
                file.Flush(flushToDisk: true);
            }

            if (expected is { } size && received != size)
            {
                throw new IOException($"libvirt sent {received} bytes, but the volume is {size} bytes.");
            }

            File.Move(partial, destination, overwrite);
            log.Verbose($"Wrote {received} bytes to {destination}");
            return received;
        }
        catch (Exception e) when (e is LibvirtException or IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            try
            {
                File.Delete(partial);
            }
            catch (IOException de)
            {
                log.Warning($"Could not delete the partial file {partial}: {de.Message}");
            }

            if (e is OperationCanceledException)
            {
                throw;
            }

            throw new KvmOperationException("VolumeDownloadFailed", $"Downloading volume '{volume.Pool}/{volume.Name}' to '{destination}' failed: {e.Message} No partial file was left.", destination, e)
            {
                Kind = KvmErrorKind.WriteError,
            };
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
        }
    }

    /// <summary>A volume by full path, or by "pool/volume"; null when there is none.</summary>
    public static StorageVolumeInfo? ResolveVolumeReference(KvmConnection connection, string reference)
    {
        if (reference.StartsWith('/'))
        {
            return connection.Invoke(c => c.LookupStorageVolumeByPath(reference));
        }

        int slash = reference.IndexOf('/');
        if (slash <= 0 || slash == reference.Length - 1)
        {
            return null;
        }

        string pool = reference[..slash];
        string name = reference[(slash + 1)..];
        try
        {
            return connection.Invoke(c => c.LookupStorageVolume(pool, name));
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoStoragePool or LibvirtErrorCode.OperationInvalid)
        {
            return null;
        }
    }

    /// <summary>Volume names may not be empty, hold '/', or be '.' or '..'.</summary>
    public static void ValidateVolumeName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Contains('/') || name is "." or ".." || name.Any(char.IsControl))
        {
            throw new KvmOperationException("InvalidName", $"'{name}' is not a valid volume name: it may not be empty, contain '/', or be '.' or '..'.", name)
            {
                Kind = KvmErrorKind.InvalidArgument,
            };
        }
    }

    // ------------------------------------------------------------------ helpers

    internal static KvmStoragePool ToPool(KvmConnection connection, StoragePoolData d)
    {
        XElement root = XElement.Parse(d.Xml);
        return new KvmStoragePool
        {
            Name = d.Info.Name,
            Uuid = d.Info.Uuid,
            Type = (string?)root.Attribute("type") ?? string.Empty,
            State = (KvmStoragePoolState)d.Info.State,
            Path = (string?)root.Element("target")?.Element("path"),
            Source = DescribeSource(root),
            CapacityBytes = d.Info.CapacityBytes,
            AllocationBytes = d.Info.AllocationBytes,
            AvailableBytes = d.Info.AvailableBytes,
            Autostart = d.Autostart,
            Persistent = d.Persistent,
            VolumeCount = d.VolumeCount,
            Connection = connection,
        };
    }

    /// <summary>"host:/export" (netfs), "host/iqn" (iscsi), "vg (devices)" (logical), the device(s) (fs), or null.</summary>
    public static string? DescribeSource(XElement pool)
    {
        XElement? s = pool.Element("source");
        if (s is null)
        {
            return null;
        }

        string type = (string?)pool.Attribute("type") ?? string.Empty;
        XElement? hostElement = s.Element("host");
        string? host = (string?)hostElement?.Attribute("name");
        string? port = (string?)hostElement?.Attribute("port");
        string? dir = (string?)s.Element("dir")?.Attribute("path");
        List<string> devices = s.Elements("device").Select(e => (string?)e.Attribute("path")).OfType<string>().ToList();
        string? name = (string?)s.Element("name");
        if (host is not null)
        {
            string h = port is null ? host : $"{host}:{port}";
            return dir is not null ? $"{h}:{dir}"
                : devices.Count > 0 ? $"{h}/{string.Join(",", devices)}"
                : name is not null ? $"{h}/{name}"
                : h;
        }

        if (type == "logical" && name is not null)
        {
            return devices.Count > 0 ? $"{name} ({string.Join(", ", devices)})" : name;
        }

        return devices.Count > 0 ? string.Join(", ", devices) : dir ?? name;
    }

    internal static KvmVolume ToVolume(KvmConnection connection, StorageVolumeInfo v, StorageUsage? usage)
    {
        XElement x = XElement.Parse(connection.Invoke(c => c.GetStorageVolumeXml(v)));
        string pool = v.Pool;
        return new KvmVolume
        {
            Pool = pool,
            Name = v.Name,
            Path = v.Path,
            Key = v.Key,
            Type = (string?)x.Attribute("type") ?? (v.Type >= 0 && v.Type < s_volumeTypes.Length ? s_volumeTypes[v.Type] : v.Type.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            Format = FormatOf(x),
            CapacityBytes = v.CapacityBytes,
            AllocationBytes = v.AllocationBytes,
            PhysicalBytes = PhysicalOf(x),
            BackingStore = (string?)x.Element("backingStore")?.Element("path") is { Length: > 0 } b ? b : null,
            UsedBy = usage?.VmNamesUsing(v.Path) ?? [],
            Connection = connection,
        };
    }

    private static string? FormatOf(XElement volumeXml) => (string?)volumeXml.Element("target")?.Element("format")?.Attribute("type");

    private static ulong? PhysicalOf(XElement volumeXml)
        => ulong.TryParse((string?)volumeXml.Element("physical"), out ulong p) && ((string?)volumeXml.Element("physical")?.Attribute("unit") ?? "bytes") == "bytes" ? p : null;

    private static StorageVolumeInfo RequireVolumeInfo(KvmConnection connection, string pool, string name)
    {
        StorageVolumeInfo? info = Translate(connection, pool, name, () => connection.Invoke(c => c.LookupStorageVolume(pool, name)));
        return info ?? throw new KvmOperationException("VolumeNotFound", $"Storage pool '{pool}' has no volume '{name}'.", name)
        {
            Kind = KvmErrorKind.NotFound,
            Hint = $"Run Get-KvmVolume -Pool {pool} to list its volumes (Update-KvmStoragePool rereads files added outside libvirt).",
        };
    }

    private static void RequireNoVolume(KvmConnection connection, string pool, string name)
    {
        if (Translate(connection, pool, name, () => connection.Invoke(c => c.LookupStorageVolume(pool, name))) is { } existing)
        {
            throw new KvmOperationException("VolumeExists", $"Storage pool '{pool}' already has a volume '{name}' ({existing.Path}); it was not touched.", name)
            {
                Kind = KvmErrorKind.AlreadyExists,
                Hint = "Choose another name, or remove the old volume with Remove-KvmVolume.",
            };
        }
    }

    /// <summary>Runs a pool call, turning libvirt's "no such pool" / "pool not active" into StoragePoolNotFound / StoragePoolInactive.</summary>
    private static T Translate<T>(KvmConnection connection, string pool, string? volume, Func<T> call)
    {
        try
        {
            return call();
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoStoragePool)
        {
            throw PoolNotFound(connection, pool, e);
        }
        catch (LibvirtException e) when (e.Code == LibvirtErrorCode.OperationInvalid)
        {
            throw new KvmOperationException("StoragePoolInactive", $"Storage pool '{pool}' is not running: {e.Message}", volume ?? pool, e)
            {
                Kind = KvmErrorKind.Unavailable,
                Hint = $"Start it with Start-KvmStoragePool {pool}.",
            };
        }
    }

    private static KvmOperationException PoolNotFound(KvmConnection connection, string name, Exception? inner = null)
        => new("StoragePoolNotFound", $"There is no storage pool '{name}' on {connection.Uri}.", name, inner)
        {
            Kind = KvmErrorKind.NotFound,
            Hint = "Run Get-KvmStoragePool to list the pools.",
        };

    private static KvmOperationException TooLarge(string pool, string name, ulong bytes, ulong available, string why)
        => new("VolumeTooLarge",
            $"Volume '{name}' needs {ByteSize.Format(bytes)} ({why}), but pool '{pool}' has only {ByteSize.Format(available)} free. Nothing was created.", name)
        {
            Kind = KvmErrorKind.InvalidArgument,
            Hint = "Choose a smaller size or another pool, free space in the pool, or use the thin qcow2 format.",
        };

    private static ulong CurrentAllocation(KvmConnection connection, string pool, string name)
    {
        try
        {
            return connection.Invoke(c => c.LookupStorageVolume(pool, name))?.AllocationBytes ?? 0;
        }
        catch (LibvirtException)
        {
            return 0;
        }
    }

    private static void TryRefresh(KvmConnection connection, string pool, IKvmLog log)
    {
        try
        {
            connection.Invoke(c => c.RefreshStoragePool(pool));
        }
        catch (LibvirtException e)
        {
            log.Warning($"Could not refresh pool '{pool}' ({e.Message}); the volume's format shows after Update-KvmStoragePool.");
        }
    }

    /// <summary>
    /// Deletes volume <paramref name="name"/> of <paramref name="pool"/> if it exists (an undo step: idempotent). Right after an
    /// aborted upload libvirt may still count the volume as in use, so "in use" is retried for a few seconds.
    /// </summary>
    internal static void DeleteVolumeIfPresent(KvmConnection connection, string pool, string name)
    {
        for (int attempt = 1; ; attempt++)
        {
            StorageVolumeInfo? v;
            try
            {
                v = connection.Invoke(c => c.LookupStorageVolume(pool, name));
            }
            catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoStorageVol or LibvirtErrorCode.NoStoragePool)
            {
                v = null;
            }

            if (v is null)
            {
                Forget(connection, VolumeKind(pool), name);
                return;
            }

            try
            {
                connection.Invoke(c => c.DeleteStorageVolume(v));
                Forget(connection, VolumeKind(pool), name);
                return;
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.NoStorageVol)
            {
                return;
            }
            catch (LibvirtException e) when (e.Code == LibvirtErrorCode.OperationInvalid && attempt < 50)
            {
                Thread.Sleep(100);
            }
        }
    }

    private static void Rollback(Stack<(string What, Action Do)> undo, IKvmLog log)
    {
        while (undo.Count > 0)
        {
            (string what, Action action) = undo.Pop();
            try
            {
                log.Verbose($"Rolling back: removing {what}");
                action();
            }
            catch (Exception e)
            {
                log.Warning($"Could not remove {what} while rolling back: {e.Message}");
            }
        }
    }

    /// <summary>Build flags per type; null: do not build. Folders are created; devices are never formatted.</summary>
    private static uint? BuildFlags(KvmStoragePoolType type, bool hasDevices) => type switch
    {
        KvmStoragePoolType.Dir or KvmStoragePoolType.Fs or KvmStoragePoolType.Netfs => 0,
        KvmStoragePoolType.Logical when hasDevices => BuildNoOverwrite,
        _ => null,
    };

    private static bool IsLocal(KvmConnection connection) => connection.IsProvenLocal;

    private static string TypeName(KvmStoragePoolType type) => type.ToString().ToLowerInvariant();

    private static void Remember(KvmConnection connection, string kind, string name)
        => connection.CacheNames(kind, connection.CachedNames(kind).Append(name).Distinct(StringComparer.Ordinal));

    private static void Forget(KvmConnection connection, string kind, string name)
        => connection.CacheNames(kind, connection.CachedNames(kind).Where(n => n != name));

    private enum Need
    {
        Required,
        No,
    }

    private static void ValidateDefinition(KvmStoragePoolDefinition d)
    {
        if (string.IsNullOrWhiteSpace(d.Name) || d.Name.Contains('/') || d.Name.Any(char.IsControl))
        {
            throw new KvmOperationException("InvalidName", $"'{d.Name}' is not a valid pool name: it may not be empty or contain '/'.", d.Name)
            {
                Kind = KvmErrorKind.InvalidArgument,
            };
        }

        string type = TypeName(d.Type);
        var missing = new List<string>();
        var extra = new List<string>();
        (string Parameter, bool Given, Need Need)[] rules = d.Type switch
        {
            KvmStoragePoolType.Dir => [("-Path", d.Path is not null, Need.Required), ("-SourceDevice", d.SourceDevices.Count > 0, Need.No),
                ("-SourceHost", d.SourceHost is not null, Need.No), ("-SourcePath", d.SourcePath is not null, Need.No), ("-SourceName", d.SourceName is not null, Need.No)],
            KvmStoragePoolType.Fs => [("-Path", d.Path is not null, Need.Required), ("-SourceDevice", d.SourceDevices.Count > 0, Need.Required),
                ("-SourceHost", d.SourceHost is not null, Need.No), ("-SourcePath", d.SourcePath is not null, Need.No), ("-SourceName", d.SourceName is not null, Need.No)],
            KvmStoragePoolType.Netfs => [("-Path", d.Path is not null, Need.Required), ("-SourceDevice", d.SourceDevices.Count > 0, Need.No),
                ("-SourceHost", d.SourceHost is not null, Need.Required), ("-SourcePath", d.SourcePath is not null, Need.Required), ("-SourceName", d.SourceName is not null, Need.No)],
            KvmStoragePoolType.Logical => [("-SourceHost", d.SourceHost is not null, Need.No), ("-SourcePath", d.SourcePath is not null, Need.No)],
            _ => [("-SourceDevice", d.SourceDevices.Count > 0, Need.Required), ("-SourceHost", d.SourceHost is not null, Need.Required),
                ("-SourcePath", d.SourcePath is not null, Need.No), ("-SourceName", d.SourceName is not null, Need.No)],
        };
        foreach ((string parameter, bool given, Need need) in rules)
        {
            if (need == Need.Required && !given)
            {
                missing.Add(parameter);
            }
            else if (need == Need.No && given)
            {
                extra.Add(parameter);
            }
        }

        if (missing.Count > 0 || extra.Count > 0)
        {
            string text = (missing.Count > 0 ? $"a {type} pool needs {string.Join(", ", missing)}" : string.Empty)
                + (missing.Count > 0 && extra.Count > 0 ? "; " : string.Empty)
                + (extra.Count > 0 ? $"{string.Join(", ", extra)} cannot be used with a {type} pool" : string.Empty);
            throw new KvmOperationException("InvalidPoolDefinition", $"Cannot define pool '{d.Name}': {text}.", d.Name)
            {
                Kind = KvmErrorKind.InvalidArgument,
                Hint = "dir: -Path; fs: -Path -SourceDevice; netfs: -Path -SourceHost -SourcePath; logical: -SourceName and/or -SourceDevice; iscsi: -SourceHost -SourceDevice (the target IQN).",
            };
        }

        if (d.Type is KvmStoragePoolType.Fs or KvmStoragePoolType.Iscsi && d.SourceDevices.Count > 1)
        {
            throw new KvmOperationException("InvalidPoolDefinition", $"A {type} pool takes one -SourceDevice, not {d.SourceDevices.Count}.", d.Name)
            {
                Kind = KvmErrorKind.InvalidArgument,
            };
        }

        if (d.Path is not null && !d.Path.StartsWith('/'))
        {
            throw new KvmOperationException("InvalidPoolDefinition", $"-Path '{d.Path}' must be an absolute path on the host.", d.Path)
            {
                Kind = KvmErrorKind.InvalidArgument,
            };
        }
    }
}
