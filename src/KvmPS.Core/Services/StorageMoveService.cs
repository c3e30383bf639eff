using System.Diagnostics;
using System.Xml.Linq;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>
/// Moves a running VM's disks to another storage pool on the same host while the guest runs (libvirt's block copy,
/// then a pivot to the copy), keeping each disk's format and thin-ness, like Hyper-V's Move-VMStorage. The VM's
/// definition follows, and the old images go unless something else uses them. Ctrl+C cancels the copy and removes it.
/// </summary>
public static class StorageMoveService
{
    private static readonly TimeSpan s_poll = TimeSpan.FromMilliseconds(250);

    /// <summary>One disk to move: its target, where it is and where it goes.</summary>
    public sealed record Move(string Target, string Path, string Format, StorageVolumeInfo Volume, string DestinationPool, string DestinationName);

    /// <summary>Checks and plans the moves (nothing changes): the VM runs, each disk is a pool volume, the pool exists with room.</summary>
    public static IReadOnlyList<Move> Plan(KvmVm vm, string[]? disks, string destinationPool)
    {
        KvmConnection connection = vm.Connection;
        (int state, _) = connection.Invoke(c => c.GetDomainState(vm.Ref));
        if (state is not (1 or 2 or 3))
        {
            throw new KvmOperationException("VmStateInvalid",
                $"'{vm.Name}' is {(KvmVmState)state}: Move-KvmVmStorage moves the disks of a running VM (a shut-off VM's disks can be copied with Copy-KvmVolume and the VM pointed at them).", vm.Name)
            { Kind = KvmErrorKind.InvalidOperation };
        }

        KvmStoragePool pool = StorageService.RequireRunningPool(connection, destinationPool);
        XElement domain = XElement.Parse(connection.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.None)));
        var moves = new List<Move>();
        foreach (XElement disk in domain.Element("devices")?.Elements("disk") ?? [])
        {
            string target = (string?)disk.Element("target")?.Attribute("dev") ?? string.Empty;
            bool writable = (string?)disk.Attribute("device") is null or "disk" && disk.Element("readonly") is null && disk.Element("shareable") is null;
            if (!writable || (disks is not null && !disks.Contains(target, StringComparer.Ordinal)))
            {
                continue;
            }

            XElement? src = disk.Element("source");
            string? path = (string?)src?.Attribute("file") ?? (string?)src?.Attribute("dev");
            if (path is null && (string?)src?.Attribute("volume") is { } volumeName)
            {
                path = connection.Invoke(c => c.LookupStorageVolume((string?)src!.Attribute("pool") ?? string.Empty, volumeName))?.Path;
            }

            if (path is null)
            {
                throw new KvmOperationException("StorageNotSupported", $"The disk {target} of '{vm.Name}' has no file or volume to move.", target) { Kind = KvmErrorKind.NotSupported };
            }

            StorageVolumeInfo volume = connection.Invoke(c => c.LookupStorageVolumeByPath(path))
                ?? throw new KvmOperationException("DiskNotInPool", $"The disk {target} ({path}) is in no storage pool, so its size and format are not known.", path)
                {
                    Kind = KvmErrorKind.InvalidArgument,
                    Hint = "Put the image's folder in a pool (New-KvmStoragePool), then move it.",
                };
            if (volume.Pool == destinationPool)
            {
                throw new KvmOperationException("DiskAlreadyInPool", $"The disk {target} of '{vm.Name}' is already in pool '{destinationPool}'.", target) { Kind = KvmErrorKind.InvalidArgument };
            }

            string format = (string?)XElement.Parse(connection.Invoke(c => c.GetStorageVolumeXml(volume))).Element("target")?.Element("format")?.Attribute("type") ?? "raw";
            if (connection.Invoke(c => c.LookupStorageVolume(destinationPool, volume.Name)) is not null)
            {
                throw new KvmOperationException("VolumeExists", $"Pool '{destinationPool}' already has a volume '{volume.Name}'.", volume.Name) { Kind = KvmErrorKind.AlreadyExists };
            }

            moves.Add(new Move(target, path, format, volume, destinationPool, volume.Name));
        }

        if (disks is not null && disks.FirstOrDefault(d => moves.All(m => m.Target != d)) is { } missing)
        {
            throw new KvmOperationException("DiskNotFound", $"'{vm.Name}' has no writable disk '{missing}'.", missing) { Kind = KvmErrorKind.NotFound };
        }

        ulong need = (ulong)moves.Sum(m => (decimal)m.Volume.AllocationBytes);
        if (need > pool.AvailableBytes)
        {
            throw new KvmOperationException("InsufficientStorage",
                $"Pool '{destinationPool}' has {ByteSize.Format(pool.AvailableBytes)} free; the disks need {ByteSize.Format(need)}.", destinationPool)
            { Kind = KvmErrorKind.Unavailable };
        }

        return moves;
    }

    /// <summary>Moves the planned disks one after the other; returns the VM as it is now.</summary>
    public static KvmVm MoveDisks(KvmVm vm, IReadOnlyList<Move> moves, ulong? bandwidthMiBps, IKvmLog log, CancellationToken cancel)
    {
        foreach (Move m in moves)
        {
            MoveOne(vm, m, bandwidthMiBps, log, cancel);
        }

        return VmService.Refresh(vm);
    }

    private static void MoveOne(KvmVm vm, Move m, ulong? bandwidthMiBps, IKvmLog log, CancellationToken cancel)
    {
        KvmConnection connection = vm.Connection;
        var undo = new UndoLog(log);
        var xml = new XElement("volume",
            new XElement("name", m.DestinationName),
            new XElement("capacity", new XAttribute("unit", "bytes"), m.Volume.CapacityBytes),
            new XElement("allocation", new XAttribute("unit", "bytes"), 0),
            new XElement("target", new XElement("format", new XAttribute("type", m.Format)), m.Format == "qcow2" ? new XElement("compat", "1.1") : null));
        string activity = $"Moving disk {m.Target} of {vm.Name} to pool {m.DestinationPool}";
        bool pivoted = false;
        try
        {
            StorageVolumeInfo copy = undo.Call(connection, $"remove the copy {m.DestinationPool}/{m.DestinationName}",
                c => c.CreateStorageVolume(m.DestinationPool, xml.ToString(), 0),
                _ => StorageService.DeleteVolumeIfPresent(connection, m.DestinationPool, m.DestinationName),
                () => StorageService.DeleteVolumeIfPresent(connection, m.DestinationPool, m.DestinationName));
            var dest = new XElement("disk", new XAttribute("type", "file"),
                new XElement("source", new XAttribute("file", copy.Path)),
                new XElement("driver", new XAttribute("type", m.Format)));
            TypedParameter[] pars = bandwidthMiBps is { } bw ? [new TypedParameter("bandwidth", TypedParameterType.ULLong, bw * 1024 * 1024)] : [];
            // TransientJob: libvirt refuses a copy job on a persistent VM otherwise (a managed save could not carry the
            // mirror over); the job lives only as long as this command, and the definition is updated after the pivot.
            log.Verbose($"Copying {m.Path} to {copy.Path} while '{vm.Name}' runs");
            connection.Invoke(c => { c.BlockCopy(vm.Ref, m.Target, dest.ToString(SaveOptions.DisableFormatting), pars, BlockCopyFlags.ReuseExternal | BlockCopyFlags.TransientJob); return 0; });
            undo.Add($"cancel the copy of {m.Target}", () => TryAbort(connection, vm, m.Target, BlockJobAbortFlags.None, log));

            var sw = Stopwatch.StartNew();
            while (true)
            {
                if (cancel.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancel);
                }

                BlockJobInfo? info = connection.Invoke(c => c.GetBlockJobInfo(vm.Ref, m.Target));
                if (info is null)
                {
                    throw new KvmOperationException("StorageMoveFailed", $"The copy of disk {m.Target} of '{vm.Name}' ended before it was ready (see the libvirt log).", vm.Name);
                }

                BlockJobInfo j = info.Value;
                log.Progress(activity, $"{ByteSize.Format(j.Current)} of {ByteSize.Format(j.End)}", j.End == 0 ? -1 : (int)Math.Min(99, 100.0 * j.Current / j.End));
                if (j.End > 0 && j.Current == j.End)
                {
                    try
                    {
                        connection.Invoke(c => { c.AbortBlockJob(vm.Ref, m.Target, BlockJobAbortFlags.Pivot); return 0; });
                        pivoted = true;
                        break;
                    }
                    catch (LibvirtException e) when (e.Code is LibvirtErrorCode.OperationInvalid or LibvirtErrorCode.BlockCopyActive && sw.Elapsed < TimeSpan.FromMinutes(10))
                    {
                        // not ready for the pivot yet (the guest wrote meanwhile): go on mirroring
                    }
                }

                Thread.Sleep(s_poll);
            }

            log.Verbose($"'{vm.Name}' now uses {copy.Path} for {m.Target}");
            UpdateDefinition(connection, vm, m.Path, copy.Path, m.Format, log);
            undo.Commit();
        }
        catch
        {
            if (!pivoted)
            {
                undo.Rollback();
            }

            throw;
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
        }

        RemoveOld(connection, m.Path, log);
    }

    private static void TryAbort(KvmConnection connection, KvmVm vm, string target, BlockJobAbortFlags flags, IKvmLog log)
    {
        try
        {
            connection.Invoke(c => { c.AbortBlockJob(vm.Ref, target, flags); return 0; });
            var sw = Stopwatch.StartNew();
            while (connection.Invoke(c => c.GetBlockJobInfo(vm.Ref, target)) is not null && sw.Elapsed < TimeSpan.FromSeconds(20))
            {
                Thread.Sleep(100);
            }
        }
        catch (LibvirtException e)
        {
            log.Verbose($"Cancelling the copy of {target}: {e.Message}");
        }
    }

    // libvirt changes the running VM; its persistent definition is pointed at the copy here when it still names the old image.
    private static void UpdateDefinition(KvmConnection connection, KvmVm vm, string oldPath, string newPath, string format, IKvmLog log)
    {
        if (!connection.Invoke(c => c.IsDomainPersistent(vm.Ref)))
        {
            return;
        }

        XElement inactive = XElement.Parse(connection.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive | DomainXmlFlags.Secure)));
        bool changed = false;
        foreach (XElement disk in inactive.Element("devices")?.Elements("disk") ?? [])
        {
            XElement? src = disk.Element("source");
            string? path = (string?)src?.Attribute("file") ?? (string?)src?.Attribute("dev");
            if (src is null || path != oldPath)
            {
                continue;
            }

            disk.SetAttributeValue("type", "file");
            src.RemoveAttributes();
            src.SetAttributeValue("file", newPath);
            disk.Element("backingStore")?.Remove();
            disk.Element("driver")?.SetAttributeValue("type", format);
            changed = true;
        }

        if (changed)
        {
            log.Verbose($"Pointing the definition of '{vm.Name}' at {newPath}");
            _ = connection.Invoke(c => c.DefineDomain(inactive.ToString(), 0));
        }
    }

    private static void RemoveOld(KvmConnection connection, string path, IKvmLog log)
    {
        try
        {
            foreach (StorageDisposition d in StorageUsage.Read(connection).Plan([path], null))
            {
                if (d.Delete)
                {
                    log.Verbose($"Removing the old image {d.Path}");
                    _ = StorageUsage.DeleteImage(connection, d.Path, log);
                }
                else
                {
                    log.Warning($"Kept the old image {d.Path}: {d.Reason}.");
                }
            }
        }
        catch (Exception e) when (e is LibvirtException or KvmOperationException or IOException or UnauthorizedAccessException)
        {
            log.Warning($"The disk moved, but its old image {path} could not be removed: {e.Message}");
        }
    }
}
