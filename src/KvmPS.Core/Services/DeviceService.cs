using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using KvmPS.Core.Backend;
using KvmPS.Core.Images;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Services;

/// <summary>What Add-KvmVmDisk attaches: an existing volume, an existing file or block device, or a new qcow2 volume.</summary>
public sealed class DiskAddRequest
{
    /// <summary>An existing volume: pool/volume, or the path of a volume.</summary>
    public string? Volume { get; init; }

    /// <summary>An existing image file or block device (/dev/...) on the host.</summary>
    public string? Path { get; init; }

    /// <summary>Creates a new qcow2 volume of this size.</summary>
    public ulong? SizeBytes { get; init; }

    /// <summary>The pool of the new volume (default 'default').</summary>
    public string? StoragePool { get; init; }

    /// <summary>virtio, scsi or sata.</summary>
    public string Bus { get; init; } = "virtio";

    public bool ReadOnly { get; init; }

    /// <summary>
    /// The format of an existing image (qcow2 or raw). Null: raw for -Path (an image's own bytes never decide), libvirt's
    /// format for -Volume with no backing file allowed.
    /// </summary>
    public string? Format { get; init; }
}

/// <summary>What Add-KvmVmNetworkAdapter attaches: a NIC on a libvirt network or a host bridge.</summary>
public sealed class NetworkAdapterAddRequest
{
    public string? Network { get; init; }
    public string? Bridge { get; init; }
    /// <summary>The MAC address; null: a random one in QEMU's 52:54:00 range.</summary>
    public string? MacAddress { get; init; }
    /// <summary>virtio, e1000 or rtl8139.</summary>
    public string Model { get; init; } = "virtio";
}

/// <summary>
/// Adds, changes and removes a VM's disks, CD-ROM drives and network adapters. A running VM is changed live
/// (hot-plug) and in its configuration; a shut-off VM in its configuration. Device XML is built with XElement.
/// </summary>
public static class DeviceService
{
    /// <summary>The smallest new disk (qcow2 needs a few clusters).</summary>
    public const ulong MinDiskBytes = 1024UL * 1024;

    private const DomainModificationFlags Live = DomainModificationFlags.Live;
    private const DomainModificationFlags Config = DomainModificationFlags.Config;
    private static readonly Regex s_mac = new(@"^[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$", RegexOptions.CultureInvariant);

    /// <summary>The completion cache key (KvmConnection.CacheNames) for the disk targets of a VM.</summary>
    public static string DiskCacheKind(string vmName) => "vmdisk:" + vmName;

    /// <summary>The completion cache key for the MAC addresses of a VM's network adapters.</summary>
    public static string AdapterCacheKind(string vmName) => "vmnic:" + vmName;

    // ---------------------------------------------------------------- disks

    /// <summary>The VM's disks and CD-ROM drives (running VM and configuration merged), with sizes when known.</summary>
    public static IReadOnlyList<KvmVmDisk> GetDisks(KvmVm vm)
    {
        DomainDevices d = Read(vm);
        List<KvmVmDisk> disks = Pair(d, "disk", DiskKey).Select(p => ToDisk(d, p)).ToList();
        vm.Connection.CacheNames(DiskCacheKind(vm.Name), disks.Select(x => x.Target));
        return disks;
    }

    /// <summary>Attaches a disk: hot-plugged into a running VM (virtio, scsi) and added to its configuration.</summary>
    public static KvmVmDisk AddDisk(KvmVm vm, DiskAddRequest request, IKvmLog log, CancellationToken cancel = default)
    {
        int sources = (request.Volume is null ? 0 : 1) + (request.Path is null ? 0 : 1) + (request.SizeBytes is null ? 0 : 1);
        if (sources != 1)
        {
            throw new KvmOperationException("ConflictingParameters", "Give exactly one of -Volume, -Path and -SizeBytes.", vm.Name) { Kind = KvmErrorKind.InvalidArgument };
        }

        if (request.StoragePool is not null && request.SizeBytes is null)
        {
            throw new KvmOperationException("ConflictingParameters", "-StoragePool is only used with -SizeBytes (a new volume).", request.StoragePool) { Kind = KvmErrorKind.InvalidArgument };
        }

        if (request.SizeBytes is { } tiny && tiny < MinDiskBytes)
        {
            throw new KvmOperationException("InvalidSize", $"A new disk needs at least {ByteSize.Format(MinDiskBytes)}; {ByteSize.Format(tiny)} was asked for.", tiny) { Kind = KvmErrorKind.InvalidArgument };
        }

        string bus = request.Bus.ToLowerInvariant();
        if (bus is not ("virtio" or "scsi" or "sata"))
        {
            throw new KvmOperationException("InvalidBus", $"Bus '{request.Bus}' is not supported for new disks (virtio, scsi, sata).", request.Bus) { Kind = KvmErrorKind.InvalidArgument };
        }

        KvmConnection conn = vm.Connection;
        DomainDevices d = Read(vm);
        DomainModificationFlags flags = PlugFlags(d, hotPluggable: bus != "sata", $"a {bus} disk", out string? pending);
        string target = NextTarget(d, bus == "virtio" ? "vd" : "sd");

        // Where the disk comes from
        string? path;
        string format;
        string sourceType = "file";
        if (request.Volume is not null)
        {
            StorageVolumeInfo vol = FindVolume(conn, request.Volume)
                ?? throw new KvmOperationException("VolumeNotFound", $"There is no storage volume '{request.Volume}' on {conn.Uri}.", request.Volume)
                {
                    Kind = KvmErrorKind.NotFound,
                    Hint = "Give pool/volume (for example default/data.qcow2) or the full path of a volume.",
                };
            path = vol.Path;
            format = request.Format ?? VolumeFormat(conn, vol) ?? "raw";
            if (vol.Type != 1)
            {
                ImageTrust.CheckExisting(conn, vol.Path, format, vol, "volume", log, allowPoolChain: request.Format is not null);
            }
        }
        else if (request.Path is not null)
        {
            path = request.Path;
            (format, sourceType) = ExistingImage(conn, path, request.Format, log);
        }
        else
        {
            path = null;
            format = "qcow2";
        }

        if (path is not null)
        {
            CheckNotInUse(conn, vm, path, request.ReadOnly, cancel);
        }

        var undo = new Stack<(string What, Action Do)>();
        try
        {
            if (request.SizeBytes is { } size)
            {
                cancel.ThrowIfCancellationRequested();
                string pool = request.StoragePool ?? VmProvisioner.DefaultPool;
                VmProvisioner.EnsurePool(conn, pool, log);
                string name = FreeVolumeName(conn, pool, $"{VmProvisioner.SafeFileName(vm.Name)}-{target}");
                log.Verbose($"Creating qcow2 volume '{name}' ({ByteSize.Format(size)}) in pool '{pool}'");
                string xml = new XElement("volume",
                    new XElement("name", name),
                    new XElement("capacity", new XAttribute("unit", "bytes"), size),
                    new XElement("target", new XElement("format", new XAttribute("type", "qcow2")), new XElement("compat", "1.1"))).ToString();
                StorageVolumeInfo vol = conn.Invoke(c => c.CreateStorageVolume(pool, xml, 0));
                undo.Push(($"volume {vol.Path}", () => conn.Invoke(c => c.DeleteStorageVolume(vol))));
                path = vol.Path;
            }

            XElement? address = null;
            if (bus == "scsi")
            {
                int controller = EnsureScsiController(d, flags, undo, log);
                address = new XElement("address", new XAttribute("type", "drive"), new XAttribute("controller", controller),
                    new XAttribute("bus", 0), new XAttribute("target", FreeScsiTarget(d, controller)), new XAttribute("unit", 0));
            }

            cancel.ThrowIfCancellationRequested();
            XElement disk = DomainXml.BuildDisk(new KvmVmDisk
            {
                Target = target,
                Bus = bus,
                Device = "disk",
                Format = format,
                Path = path,
                SourceType = sourceType,
                ReadOnly = request.ReadOnly,
            });
            if (address is not null)
            {
                disk.Add(address);
            }

            log.Verbose($"Attaching {path} to VM '{vm.Name}' as {target} ({bus}, {format}{(request.ReadOnly ? ", read-only" : string.Empty)}) {Describe(flags)}");
            Attach(vm, disk, flags);
        }
        catch (Exception e) when (undo.Count > 0 && e is LibvirtException or KvmOperationException or OperationCanceledException or IOException)
        {
            string undone = Rollback(vm, undo, log);
            if (e is LibvirtException le && !le.IsConnectionFailure)
            {
                throw new KvmOperationException("DiskAttachFailed", $"Attaching a disk to VM '{vm.Name}' failed: {le.Message} {undone}", vm.Name, le)
                {
                    Kind = KvmErrorKind.InvalidOperation,
                };
            }

            throw;
        }

        if (pending is not null)
        {
            log.Warning(pending);
        }

        return GetDisks(vm).FirstOrDefault(x => x.Target == target)
            ?? throw new KvmOperationException("DiskNotFound", $"Disk {target} vanished from VM '{vm.Name}' right after it was attached.", target) { Kind = KvmErrorKind.NotFound };
    }

    /// <summary>Adds a SATA CD-ROM drive (with a medium when <paramref name="path"/> is given). SATA cannot be hot-plugged: on a running VM it appears at the next start.</summary>
    public static KvmVmDisk AddDvdDrive(KvmVm vm, string? path, IKvmLog log)
    {
        DomainDevices d = Read(vm);
        DomainModificationFlags flags = PlugFlags(d, hotPluggable: false, "a SATA CD-ROM drive", out string? pending);
        string target = NextTarget(d, "sd");
        string? sourceType = path is null ? "file" : ExistingMedia(vm.Connection, path);
        XElement disk = DomainXml.BuildDisk(new KvmVmDisk
        {
            Target = target,
            Bus = "sata",
            Device = "cdrom",
            Format = "raw",
            Path = path,
            SourceType = sourceType,
            ReadOnly = true,
        });
        log.Verbose($"Adding CD-ROM drive {target} (sata{(path is null ? ", empty" : $", {path}")}) to VM '{vm.Name}' {Describe(flags)}");
        Attach(vm, disk, flags);
        if (pending is not null)
        {
            log.Warning(pending);
        }

        return GetDisks(vm).First(x => x.Target == target);
    }

    /// <summary>Inserts a medium into a CD-ROM drive (<paramref name="path"/>), or ejects it (null). Live when the VM runs.</summary>
    public static KvmVmDisk SetDvdMedia(KvmVm vm, string? target, string? path, IKvmLog log)
    {
        DomainDevices d = Read(vm);
        List<(XElement? Live, XElement? Config)> drives = Pair(d, "disk", DiskKey)
            .Where(p => (string?)(p.Live ?? p.Config)!.Attribute("device") == "cdrom").ToList();
        (XElement? Live, XElement? Config) drive;
        if (target is null)
        {
            drive = drives.FirstOrDefault();
            if (drive == default)
            {
                throw new KvmOperationException("DvdDriveNotFound", $"VM '{vm.Name}' has no CD-ROM drive.", vm.Name)
                {
                    Kind = KvmErrorKind.NotFound,
                    Hint = "Add one with Add-KvmVmDvdDrive.",
                };
            }

            target = DiskKey((drive.Live ?? drive.Config)!);
        }
        else
        {
            drive = drives.FirstOrDefault(p => DiskKey((p.Live ?? p.Config)!) == target);
            if (drive == default)
            {
                throw new KvmOperationException("DvdDriveNotFound", $"VM '{vm.Name}' has no CD-ROM drive {target}{(drives.Count == 0 ? string.Empty : $" (its drives: {string.Join(", ", drives.Select(p => DiskKey((p.Live ?? p.Config)!)))})")}.", target)
                {
                    Kind = KvmErrorKind.NotFound,
                };
            }
        }

        string? sourceType = path is null ? null : ExistingMedia(vm.Connection, path);
        foreach ((XElement? element, DomainModificationFlags flag) in new[] { (drive.Live, Live), (drive.Config, Config) })
        {
            if (element is null)
            {
                continue;
            }

            XElement update = new(element);
            update.Elements("source").Remove();
            update.Elements("backingStore").Remove();
            update.Elements("alias").Remove();
            if (path is not null)
            {
                update.SetAttributeValue("type", sourceType);
                var source = new XElement("source", new XAttribute(sourceType == "block" ? "dev" : "file", path));
                if (update.Element("driver") is { } driver)
                {
                    driver.SetAttributeValue("type", "raw");
                    driver.AddAfterSelf(source);
                }
                else
                {
                    update.AddFirst(source);
                }
            }

            string scope = flag == Live ? "in the running VM" : "in the configuration";
            log.Verbose(path is null ? $"Ejecting the medium of {target} of VM '{vm.Name}' {scope}" : $"Inserting {path} into {target} of VM '{vm.Name}' {scope}");
            vm.Connection.Invoke(c => c.UpdateDevice(vm.Ref, update.ToString(), flag));
        }

        return GetDisks(vm).First(x => x.Target == target);
    }

    /// <summary>Detaches a disk or CD-ROM drive; with <paramref name="deleteVolume"/> deletes its image afterwards (never one another VM uses).</summary>
    public static void RemoveDisk(KvmVm vm, string target, bool deleteVolume, TimeSpan timeout, IKvmLog log, CancellationToken cancel = default)
    {
        DomainDevices d = Read(vm);
        (XElement? live, XElement? config) = FindPair(d, "disk", DiskKey, target)
            ?? throw new KvmOperationException("DiskNotFound", $"VM '{vm.Name}' has no disk {target}.", target)
            {
                Kind = KvmErrorKind.NotFound,
                Hint = $"List its disks with Get-KvmVmDisk -VMName '{vm.Name}'.",
            };
        KvmVmDisk disk = DomainXml.ParseDisk((live ?? config)!);
        bool pendingLive = false;
        if (live is not null && disk.Bus is "sata" or "ide" or "fdc" && config is not null)
        {
            pendingLive = true;   // cannot be hot-unplugged: leave it in the running VM until it stops
            log.Warning($"Disk {target} ({disk.Bus}) cannot be removed from the running VM '{vm.Name}': it was removed from the configuration and disappears at the next start.");
        }
        else if (live is not null)
        {
            log.Verbose($"Detaching {target} from the running VM '{vm.Name}'");
            Detach(vm, live, Live, log);
        }

        if (config is not null)
        {
            log.Verbose($"Removing {target} from the configuration of VM '{vm.Name}'");
            vm.Connection.Invoke(c => c.DetachDevice(vm.Ref, Strip(config).ToString(), Config));
        }

        if (live is not null && !pendingLive)
        {
            WaitGone(vm, devices => FindElement(devices, "disk", DiskKey, target) is not null, $"disk {target}", timeout, log, cancel);
        }

        if (!deleteVolume)
        {
            return;
        }

        string? image = ImagePath(vm.Connection, (live ?? config)!);
        if (disk.Device != "disk" || image is null)
        {
            log.Warning($"{target} is a {disk.Device}{(image is null ? " without an image" : string.Empty)}: nothing was deleted.");
            return;
        }

        if (pendingLive)
        {
            log.Warning($"'{image}' was not deleted: the running VM '{vm.Name}' still uses it until it stops.");
            return;
        }

        DeleteImage(vm.Connection, image, log, cancel);
    }

    /// <summary>Grows a disk: live (block resize) when the VM runs, else its volume. Never shrinks.</summary>
    public static KvmVmDisk ResizeDisk(KvmVm vm, string target, ulong bytes, IKvmLog log)
    {
        DomainDevices d = Read(vm);
        (XElement? live, XElement? config) = FindPair(d, "disk", DiskKey, target)
            ?? throw new KvmOperationException("DiskNotFound", $"VM '{vm.Name}' has no disk {target}.", target) { Kind = KvmErrorKind.NotFound };
        KvmVmDisk disk = DomainXml.ParseDisk((live ?? config)!);
        if (disk.Device != "disk" || disk.Path is null)
        {
            throw new KvmOperationException("DiskNotResizable", $"{target} of VM '{vm.Name}' is a {disk.Device}{(disk.Path is null ? " without an image" : string.Empty)}: only disks can be resized.", target)
            {
                Kind = KvmErrorKind.InvalidOperation,
            };
        }

        KvmConnection conn = vm.Connection;
        StorageVolumeInfo? vol = SafeVolumeByPath(conn, disk.Path);
        ulong? current = vol?.CapacityBytes ?? ProbeSize(conn, disk);
        if (current is not { } now)
        {
            throw new KvmOperationException("DiskSizeUnknown", $"The size of '{disk.Path}' cannot be read (it is in no storage pool), so it is not resized.", target)
            {
                Kind = KvmErrorKind.NotSupported,
                Hint = "Put the image in a storage pool's folder (and refresh the pool), or resize it with qemu-img while the VM is off.",
            };
        }

        if (bytes < now)
        {
            throw new KvmOperationException("DiskShrinkRefused", $"{target} of VM '{vm.Name}' is {ByteSize.Format(now)}; shrinking it to {ByteSize.Format(bytes)} would destroy data and is refused.", bytes)
            {
                Kind = KvmErrorKind.InvalidArgument,
                Hint = "Give a size at least as large as the current CapacityBytes.",
            };
        }

        if (bytes == now)
        {
            log.Verbose($"{target} of VM '{vm.Name}' is already {ByteSize.Format(now)}: nothing to do");
        }
        else if (live is not null)
        {
            log.Verbose($"Growing {target} of the running VM '{vm.Name}' from {ByteSize.Format(now)} to {ByteSize.Format(bytes)} (live block resize)");
            conn.Invoke(c => c.ResizeBlockDevice(vm.Ref, target, bytes));
        }
        else if (vol is not null)
        {
            log.Verbose($"Growing volume '{vol.Name}' ({target} of VM '{vm.Name}') from {ByteSize.Format(now)} to {ByteSize.Format(bytes)}");
            conn.Invoke(c => c.ResizeStorageVolume(vol, bytes, 0));
        }
        else
        {
            throw new KvmOperationException("DiskSizeUnknown", $"'{disk.Path}' is in no storage pool: KvmPS resizes a shut-off VM's disks through their volumes.", target)
            {
                Kind = KvmErrorKind.NotSupported,
                Hint = "Put the image in a storage pool's folder, or resize it while the VM runs.",
            };
        }

        return GetDisks(vm).First(x => x.Target == target);
    }

    // ---------------------------------------------------------------- network adapters

    /// <summary>The VM's network adapters; with <paramref name="addresses"/>, a running VM's IP addresses (guest agent, DHCP lease, ARP).</summary>
    public static IReadOnlyList<KvmVmNetworkAdapter> GetNetworkAdapters(KvmVm vm, bool addresses)
    {
        DomainDevices d = Read(vm);
        List<KvmVmNetworkAdapter> result = Pair(d, "interface", MacKey).Select(p => ToAdapter(d, p)).ToList();
        vm.Connection.CacheNames(AdapterCacheKind(vm.Name), result.Where(a => a.MacAddress is not null).Select(a => a.MacAddress!));
        if (addresses && d.Running && result.Count > 0)
        {
            FillAddresses(vm, result);
        }

        return result;
    }

    /// <summary>Attaches a network adapter: hot-plugged into a running VM and added to its configuration.</summary>
    public static KvmVmNetworkAdapter AddNetworkAdapter(KvmVm vm, NetworkAdapterAddRequest request, IKvmLog log)
    {
        if ((request.Network is null) == (request.Bridge is null))
        {
            throw new KvmOperationException("ConflictingParameters", "Give exactly one of -Network and -Bridge.", vm.Name) { Kind = KvmErrorKind.InvalidArgument };
        }

        string model = request.Model.ToLowerInvariant();
        if (model is not ("virtio" or "e1000" or "rtl8139"))
        {
            throw new KvmOperationException("InvalidModel", $"Model '{request.Model}' is not supported (virtio, e1000, rtl8139).", request.Model) { Kind = KvmErrorKind.InvalidArgument };
        }

        string? mac = request.MacAddress is null ? null : NormalizeMac(request.MacAddress);
        KvmConnection conn = vm.Connection;
        if (request.Network is { } network && !conn.Invoke(c => c.NetworkExists(network)))
        {
            throw new KvmOperationException("NetworkNotFound", $"There is no virtual network '{network}' on {conn.Uri}.", network)
            {
                Kind = KvmErrorKind.NotFound,
                Hint = "List the networks with Get-KvmNetwork, or use -Bridge for a host bridge.",
            };
        }

        DomainDevices d = Read(vm);
        HashSet<string> used = Pair(d, "interface", MacKey).Select(p => MacKey((p.Live ?? p.Config)!)).Where(m => m is not null).Select(m => m!).ToHashSet(StringComparer.Ordinal);
        if (mac is not null && used.Contains(mac))
        {
            throw new KvmOperationException("MacAddressInUse", $"VM '{vm.Name}' already has a network adapter with MAC address {mac}.", request.MacAddress)
            {
                Kind = KvmErrorKind.AlreadyExists,
            };
        }

        mac ??= RandomMac(used);
        DomainModificationFlags flags = PlugFlags(d, hotPluggable: true, "a network adapter", out _);
        if (request.Network is { } liveNetwork && flags.HasFlag(Live))
        {
            NetworkReadiness.RequireActive(conn, [liveNetwork], $"no adapter can be plugged into running VM '{vm.Name}' on it");
        }

        XElement nic = DomainXml.BuildInterface(new KvmVmNetworkAdapter
        {
            Type = request.Network is null ? "bridge" : "network",
            Source = request.Network ?? request.Bridge,
            MacAddress = mac,
            Model = model,
        });
        log.Verbose($"Attaching a {model} network adapter ({mac}) on {(request.Network is null ? "bridge" : "network")} '{request.Network ?? request.Bridge}' to VM '{vm.Name}' {Describe(flags)}");
        Attach(vm, nic, flags);
        return GetNetworkAdapters(vm, addresses: false).FirstOrDefault(a => a.MacAddress == mac)
            ?? throw new KvmOperationException("NetworkAdapterNotFound", $"The adapter {mac} vanished from VM '{vm.Name}' right after it was attached.", mac) { Kind = KvmErrorKind.NotFound };
    }

    /// <summary>Detaches the network adapter with <paramref name="macAddress"/>: live (waiting for the guest to release it) and from the configuration.</summary>
    public static void RemoveNetworkAdapter(KvmVm vm, string macAddress, TimeSpan timeout, IKvmLog log, CancellationToken cancel = default)
    {
        string mac = NormalizeMac(macAddress);
        DomainDevices d = Read(vm);
        (XElement? live, XElement? config) = FindPair(d, "interface", MacKey, mac) ?? throw AdapterNotFound(vm, macAddress);
        if (live is not null)
        {
            log.Verbose($"Detaching network adapter {mac} from the running VM '{vm.Name}'");
            Detach(vm, live, Live, log);
        }

        if (config is not null)
        {
            log.Verbose($"Removing network adapter {mac} from the configuration of VM '{vm.Name}'");
            vm.Connection.Invoke(c => c.DetachDevice(vm.Ref, Strip(config).ToString(), Config));
        }

        if (live is not null)
        {
            WaitGone(vm, devices => FindElement(devices, "interface", MacKey, mac) is not null, $"network adapter {mac}", timeout, log, cancel);
        }
    }

    /// <summary>Connects (link up) or disconnects (link down) a network adapter: live and in the configuration.</summary>
    public static KvmVmNetworkAdapter SetLinkState(KvmVm vm, string macAddress, bool connected, IKvmLog log)
    {
        string mac = NormalizeMac(macAddress);
        DomainDevices d = Read(vm);
        (XElement? live, XElement? config) = FindPair(d, "interface", MacKey, mac) ?? throw AdapterNotFound(vm, macAddress);
        string state = connected ? "up" : "down";
        foreach ((XElement? element, DomainModificationFlags flag) in new[] { (live, Live), (config, Config) })
        {
            if (element is null)
            {
                continue;
            }

            XElement update = new(element);
            update.Elements("link").Remove();
            update.Add(new XElement("link", new XAttribute("state", state)));
            log.Verbose($"Setting the link of {mac} of VM '{vm.Name}' {state} {(flag == Live ? "in the running VM" : "in the configuration")}");
            vm.Connection.Invoke(c => c.UpdateDevice(vm.Ref, update.ToString(), flag));
        }

        return GetNetworkAdapters(vm, addresses: false).First(a => a.MacAddress == mac);
    }

    /// <summary>Checks a MAC address (6 octets, unicast) and writes it as libvirt does: lower case, colons. Throws InvalidMacAddress.</summary>
    public static string NormalizeMac(string mac)
    {
        string m = mac.Trim();
        if (!s_mac.IsMatch(m))
        {
            throw new KvmOperationException("InvalidMacAddress", $"'{mac}' is not a MAC address: give 6 octets in hex, such as 52:54:00:12:34:56.", mac) { Kind = KvmErrorKind.InvalidArgument };
        }

        string hex = m.Replace(":", string.Empty, StringComparison.Ordinal).Replace("-", string.Empty, StringComparison.Ordinal).ToLowerInvariant();
        byte first = byte.Parse(hex.AsSpan(0, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        if ((first & 1) != 0)
        {
            throw new KvmOperationException("InvalidMacAddress", $"'{mac}' is a multicast address (the lowest bit of its first octet is set); a network adapter needs a unicast one.", mac)
            {
                Kind = KvmErrorKind.InvalidArgument,
                Hint = "QEMU's own range is 52:54:00:xx:xx:xx.",
            };
        }

        if (hex == "000000000000")
        {
            throw new KvmOperationException("InvalidMacAddress", $"'{mac}' (all zeros) is not a usable MAC address.", mac) { Kind = KvmErrorKind.InvalidArgument };
        }

        return string.Join(':', Enumerable.Range(0, 6).Select(i => hex.Substring(i * 2, 2)));
    }

    // ---------------------------------------------------------------- reading

    /// <summary>A VM's device lists: the running VM's (when it runs) and the persistent configuration's (when it has one).</summary>
    private sealed class DomainDevices
    {
        public required KvmVm Vm { get; init; }
        public required bool Running { get; init; }
        public required bool Persistent { get; init; }
        public XElement? Live { get; init; }
        public XElement? Config { get; init; }
    }

    private static DomainDevices Read(KvmVm vm)
    {
        KvmConnection conn = vm.Connection;
        return conn.Invoke(c =>
        {
            (int state, _) = c.GetDomainState(vm.Ref);
            bool running = state is 1 or 2 or 3 or 4 or 7;
            bool persistent = c.IsDomainPersistent(vm.Ref);
            XElement? live = running ? Devices(c.GetDomainXml(vm.Ref, DomainXmlFlags.None)) : null;
            XElement? config = persistent ? Devices(c.GetDomainXml(vm.Ref, DomainXmlFlags.Inactive)) : null;
            return new DomainDevices { Vm = vm, Running = running, Persistent = persistent, Live = live, Config = config };
        });
    }

    private static XElement Devices(string xml) => XElement.Parse(xml).Element("devices") ?? new XElement("devices");

    private static string? DiskKey(XElement e) => (string?)e.Element("target")?.Attribute("dev");

    private static string? MacKey(XElement e) => ((string?)e.Element("mac")?.Attribute("address"))?.ToLowerInvariant();

    /// <summary>Devices of one kind from the running VM and the configuration, matched by key: live order first, then configuration-only ones.</summary>
    private static List<(XElement? Live, XElement? Config)> Pair(DomainDevices d, string kind, Func<XElement, string?> key)
    {
        var result = new List<(XElement? Live, XElement? Config)>();
        List<XElement> config = d.Config?.Elements(kind).ToList() ?? [];
        foreach (XElement live in d.Live?.Elements(kind) ?? [])
        {
            string? k = key(live);
            XElement? match = k is null ? null : config.FirstOrDefault(c => key(c) == k);
            if (match is not null)
            {
                config.Remove(match);
            }

            result.Add((live, match));
        }

        result.AddRange(config.Select(c => ((XElement?)null, (XElement?)c)));
        return result;
    }

    private static (XElement? Live, XElement? Config)? FindPair(DomainDevices d, string kind, Func<XElement, string?> key, string value)
    {
        foreach ((XElement? live, XElement? config) p in Pair(d, kind, key))
        {
            if (key((p.live ?? p.config)!) == value)
            {
                return p;
            }
        }

        return null;
    }

    private static XElement? FindElement(XElement devices, string kind, Func<XElement, string?> key, string value)
        => devices.Elements(kind).FirstOrDefault(e => key(e) == value);

    private static KvmDeviceScope Scope(DomainDevices d, (XElement? Live, XElement? Config) p)
        => !d.Running ? KvmDeviceScope.Config
            : (p.Live is null ? KvmDeviceScope.None : KvmDeviceScope.Live) | (p.Config is null ? KvmDeviceScope.None : KvmDeviceScope.Config);

    private static KvmVmDisk ToDisk(DomainDevices d, (XElement? Live, XElement? Config) p)
    {
        KvmVm vm = d.Vm;
        KvmVmDisk disk = DomainXml.ParseDisk((p.Live ?? p.Config)!) with
        {
            VMName = vm.Name,
            VMUuid = vm.Uuid,
            Connection = vm.Connection,
            Scope = Scope(d, p),
        };
        if (disk.Path is null || disk.SourceType is "network" or "dir")
        {
            return disk;
        }

        StorageVolumeInfo? vol = SafeVolumeByPath(vm.Connection, disk.Path);
        return vol is not null
            ? disk with { CapacityBytes = vol.CapacityBytes, AllocationBytes = vol.AllocationBytes, Pool = disk.Pool ?? vol.Pool, Volume = disk.Volume ?? vol.Name }
            : disk with { CapacityBytes = ProbeSize(vm.Connection, disk) };
    }

    private static KvmVmNetworkAdapter ToAdapter(DomainDevices d, (XElement? Live, XElement? Config) p)
        => DomainXml.ParseInterface((p.Live ?? p.Config)!) with
        {
            VMName = d.Vm.Name,
            VMUuid = d.Vm.Uuid,
            Connection = d.Vm.Connection,
            Scope = Scope(d, p),
            MacAddress = MacKey((p.Live ?? p.Config)!),
        };

    /// <summary>Fills IPAddresses from the guest agent, then the network's DHCP leases, then the host's ARP table; a source that cannot answer is skipped.</summary>
    private static void FillAddresses(KvmVm vm, List<KvmVmNetworkAdapter> adapters)
    {
        foreach ((int source, string name) in new[] { (1, "Agent"), (0, "Lease"), (2, "Arp") })
        {
            if (adapters.All(a => a.IPAddresses.Length > 0 || a.MacAddress is null))
            {
                return;
            }

            IReadOnlyList<GuestInterface> found;
            try
            {
                found = vm.Connection.Invoke(c => c.GetInterfaceAddresses(vm.Ref, source));
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
            {
                continue;   // no agent, no lease support, not running any more ...
            }

            for (int i = 0; i < adapters.Count; i++)
            {
                KvmVmNetworkAdapter a = adapters[i];
                if (a.IPAddresses.Length > 0 || a.MacAddress is null)
                {
                    continue;
                }

                string[] ips = found.Where(g => string.Equals(g.MacAddress, a.MacAddress, StringComparison.OrdinalIgnoreCase))
                    .SelectMany(g => g.Addresses).Select(x => x.Address)
                    .Where(x => System.Net.IPAddress.TryParse(x, out System.Net.IPAddress? ip) && !System.Net.IPAddress.IsLoopback(ip))
                    .Distinct(StringComparer.Ordinal).ToArray();
                if (ips.Length > 0)
                {
                    adapters[i] = a with { IPAddresses = ips, AddressSource = name };
                }
            }
        }
    }

    // ---------------------------------------------------------------- changing

    /// <summary>
    /// The flags for a new device: live + config on a running VM when it can be hot-plugged, config only otherwise;
    /// <paramref name="warning"/> is what to tell the user once it was added only to a running VM's configuration.
    /// </summary>
    private static DomainModificationFlags PlugFlags(DomainDevices d, bool hotPluggable, string what, out string? warning)
    {
        warning = null;
        if (!d.Running)
        {
            return Config;
        }

        if (hotPluggable)
        {
            return d.Persistent ? Live | Config : Live;
        }

        if (!d.Persistent)
        {
            throw new KvmOperationException("HotPlugUnsupported", $"{Capitalize(what)} cannot be hot-plugged, and the running VM '{d.Vm.Name}' is transient (it has no configuration to add it to).", d.Vm.Name)
            {
                Kind = KvmErrorKind.NotSupported,
            };
        }

        warning = $"{Capitalize(what)} cannot be hot-plugged: it was added to the configuration of the running VM '{d.Vm.Name}' and appears at its next start.";
        return Config;
    }

    private static string Describe(DomainModificationFlags flags) => flags switch
    {
        Live | Config => "(hot-plug into the running VM, and its configuration)",
        Live => "(hot-plug into the running, transient VM)",
        _ => "(configuration only)",
    };

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    private static void Attach(KvmVm vm, XElement device, DomainModificationFlags flags)
        => vm.Connection.Invoke(c => c.AttachDevice(vm.Ref, device.ToString(), flags));

    /// <summary>Asks the running VM to release a device. libvirt waits a few seconds itself; an unplug that is already pending is not an error.</summary>
    private static void Detach(KvmVm vm, XElement live, DomainModificationFlags flags, IKvmLog log)
    {
        try
        {
            vm.Connection.Invoke(c => c.DetachDevice(vm.Ref, Strip(live).ToString(), flags));
        }
        catch (LibvirtException e) when (!e.IsConnectionFailure && e.Message.Contains("already in the process of unplug", StringComparison.OrdinalIgnoreCase))
        {
            log.Verbose("The guest was already asked to release it; waiting");
        }
    }

    /// <summary>A copy of a device element without the parts libvirt adds to the live definition.</summary>
    private static XElement Strip(XElement device)
    {
        XElement copy = new(device);
        copy.Elements("alias").Remove();
        copy.Descendants("backingStore").Remove();
        return copy;
    }

    /// <summary>Polls the running VM until the device is gone (libvirt's detach is asynchronous: the guest must release it).</summary>
    private static void WaitGone(KvmVm vm, Func<XElement, bool> present, string what, TimeSpan timeout, IKvmLog log, CancellationToken cancel)
    {
        string activity = $"Removing {what} from {vm.Name}";
        var sw = Stopwatch.StartNew();
        try
        {
            while (true)
            {
                cancel.ThrowIfCancellationRequested();
                XElement? devices = vm.Connection.Invoke(c =>
                {
                    (int state, _) = c.GetDomainState(vm.Ref);
                    return state is 1 or 2 or 3 or 4 or 7 ? Devices(c.GetDomainXml(vm.Ref, DomainXmlFlags.None)) : null;
                });
                if (devices is null || !present(devices))
                {
                    log.Verbose($"The running VM '{vm.Name}' released {what} after {sw.Elapsed.TotalSeconds:0.0} s");
                    return;
                }

                TimeSpan left = timeout - sw.Elapsed;
                if (left <= TimeSpan.Zero)
                {
                    throw new KvmOperationException("DetachTimeout",
                        $"The guest of VM '{vm.Name}' did not release {what} within {timeout.TotalSeconds:0} s. It was removed from the configuration; the running VM drops it when the guest acknowledges the unplug request, or when the VM stops.", vm.Name)
                    {
                        Kind = KvmErrorKind.Timeout,
                        Hint = "The guest OS must support hot-unplug (ACPI); run the command again to wait longer, or stop the VM.",
                    };
                }

                int percent = timeout.TotalMilliseconds <= 0 ? 0 : (int)Math.Min(99, 100 * sw.Elapsed.TotalMilliseconds / timeout.TotalMilliseconds);
                log.Progress(activity, $"waiting for the guest to release it ({left.TotalSeconds:0} s left)", percent);
                cancel.WaitHandle.WaitOne(left < TimeSpan.FromMilliseconds(250) ? left : TimeSpan.FromMilliseconds(250));
            }
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
        }
    }

    private static string Rollback(KvmVm vm, Stack<(string What, Action Do)> undo, IKvmLog log)
    {
        var removed = new List<string>();
        var left = new List<string>();
        while (undo.Count > 0)
        {
            (string what, Action action) = undo.Pop();
            try
            {
                log.Verbose($"Rolling back: removing {what}");
                action();
                removed.Add(what);
            }
            catch (LibvirtException e)
            {
                log.Warning($"Could not remove {what} of VM '{vm.Name}' while rolling back: {e.Message}");
                left.Add(what);
            }
        }

        return left.Count == 0
            ? $"What was created for it was removed again ({string.Join(", ", removed)})."
            : $"Could not remove again: {string.Join(", ", left)}.";
    }

    /// <summary>The next free target name for a prefix (vda, vdb ... vdz, vdaa ...), over the running VM and the configuration.</summary>
    private static string NextTarget(DomainDevices d, string prefix)
    {
        var used = new HashSet<string>(
            (d.Live?.Elements("disk") ?? []).Concat(d.Config?.Elements("disk") ?? []).Select(DiskKey).Where(t => t is not null).Select(t => t!),
            StringComparer.Ordinal);
        for (int i = 0; i < 26 * 27; i++)
        {
            string name = prefix + DiskLetters(i);
            if (!used.Contains(name))
            {
                return name;
            }
        }

        throw new KvmOperationException("NoFreeTarget", $"VM '{d.Vm.Name}' has no free {prefix}* target name left.", d.Vm.Name) { Kind = KvmErrorKind.Unavailable };
    }

    /// <summary>libvirt's disk index to letters: 0 a, 25 z, 26 aa, 27 ab ...</summary>
    internal static string DiskLetters(int index)
    {
        var sb = new StringBuilder();
        for (int i = index; i >= 0; i = (i / 26) - 1)
        {
            sb.Insert(0, (char)('a' + (i % 26)));
        }

        return sb.ToString();
    }

    /// <summary>The index of a SCSI controller for a new SCSI disk: an existing one, or a new virtio-scsi controller (rolled back with the disk).</summary>
    private static int EnsureScsiController(DomainDevices d, DomainModificationFlags flags, Stack<(string What, Action Do)> undo, IKvmLog log)
    {
        static List<XElement> Scsi(XElement? devices) => devices?.Elements("controller").Where(c => (string?)c.Attribute("type") == "scsi").ToList() ?? [];
        static int Index(XElement c) => int.TryParse((string?)c.Attribute("index"), NumberStyles.None, CultureInfo.InvariantCulture, out int i) ? i : 0;

        List<XElement> live = Scsi(d.Live);
        List<XElement> config = Scsi(d.Config);
        bool wantLive = flags.HasFlag(Live);
        bool wantConfig = flags.HasFlag(Config);
        IEnumerable<XElement> candidates = wantLive ? live : config;
        XElement? existing = candidates.OrderBy(c => (string?)c.Attribute("model") == "virtio-scsi" ? 0 : 1).ThenBy(Index)
            .FirstOrDefault(c => !wantConfig || !wantLive || config.Any(x => Index(x) == Index(c)));
        if (existing is not null)
        {
            return Index(existing);
        }

        int index = live.Concat(config).Select(Index).DefaultIfEmpty(-1).Max() + 1;
        var controller = new XElement("controller", new XAttribute("type", "scsi"), new XAttribute("index", index), new XAttribute("model", "virtio-scsi"));
        KvmVm vm = d.Vm;
        log.Verbose($"VM '{vm.Name}' has no SCSI controller: adding a virtio-scsi controller (index {index}) {Describe(flags)}");
        vm.Connection.Invoke(c => c.AttachDevice(vm.Ref, controller.ToString(), flags));
        undo.Push(($"the SCSI controller {index}", () => vm.Connection.Invoke(c => c.DetachDevice(vm.Ref, controller.ToString(), flags))));
        return index;
    }

    /// <summary>The lowest SCSI target id on <paramref name="controller"/> that no disk uses (one LUN per target, like libvirt's wide SCSI).</summary>
    private static int FreeScsiTarget(DomainDevices d, int controller)
    {
        string c = controller.ToString(CultureInfo.InvariantCulture);
        var used = (d.Live?.Elements("disk") ?? []).Concat(d.Config?.Elements("disk") ?? [])
            .Where(x => (string?)x.Element("target")?.Attribute("bus") == "scsi")
            .Select(x => x.Element("address"))
            .Where(a => a is not null && (string?)a.Attribute("type") == "drive" && ((string?)a.Attribute("controller") ?? "0") == c)
            .Select(a => int.TryParse((string?)a!.Attribute("target"), NumberStyles.None, CultureInfo.InvariantCulture, out int t) ? t : 0)
            .ToHashSet();
        int target = 0;
        while (used.Contains(target))
        {
            target++;
        }

        return target;
    }

    private static string FreeVolumeName(KvmConnection conn, string pool, string baseName)
    {
        for (int i = 1; ; i++)
        {
            string name = i == 1 ? $"{baseName}.qcow2" : $"{baseName}-{i}.qcow2";
            if (conn.Invoke(c => c.LookupStorageVolume(pool, name)) is null)
            {
                return name;
            }
        }
    }

    private static string RandomMac(HashSet<string> used)
    {
        Span<byte> b = stackalloc byte[3];
        while (true)
        {
            RandomNumberGenerator.Fill(b);
            string mac = string.Create(CultureInfo.InvariantCulture, $"52:54:00:{b[0]:x2}:{b[1]:x2}:{b[2]:x2}");
            if (!used.Contains(mac))
            {
                return mac;
            }
        }
    }

    private static KvmOperationException AdapterNotFound(KvmVm vm, string mac)
        => new("NetworkAdapterNotFound", $"VM '{vm.Name}' has no network adapter with MAC address {mac}.", mac)
        {
            Kind = KvmErrorKind.NotFound,
            Hint = $"List its adapters with Get-KvmVmNetworkAdapter -VMName '{vm.Name}'.",
        };

    // ---------------------------------------------------------------- storage helpers

    /// <summary>pool/volume, or the path of a volume.</summary>
    private static StorageVolumeInfo? FindVolume(KvmConnection conn, string spec)
    {
        try
        {
            if (spec.StartsWith('/'))
            {
                return conn.Invoke(c => c.LookupStorageVolumeByPath(spec));
            }

            return spec.Split('/') is [var pool, var name] && pool.Length > 0 && name.Length > 0
                ? conn.Invoke(c => c.LookupStorageVolume(pool, name))
                : null;
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.NoStoragePool or LibvirtErrorCode.NoStorageVol or LibvirtErrorCode.OperationInvalid)
        {
            return null;
        }
    }

    private static StorageVolumeInfo? SafeVolumeByPath(KvmConnection conn, string path)
    {
        try
        {
            return conn.Invoke(c => c.LookupStorageVolumeByPath(path));
        }
        catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
        {
            return null;
        }
    }

    private static string? VolumeFormat(KvmConnection conn, StorageVolumeInfo vol)
    {
        string? f = (string?)XElement.Parse(conn.Invoke(c => c.GetStorageVolumeXml(vol))).Element("target")?.Element("format")?.Attribute("type");
        return f is null or "iso" or "none" ? null : f;
    }

    /// <summary>The virtual size of a local image that is in no pool (qcow2 header or file length); null when unknown.</summary>
    private static ulong? ProbeSize(KvmConnection conn, KvmVmDisk disk)
    {
        if (!conn.IsProvenLocal || disk.Path is null || disk.SourceType is not (null or "file") || !File.Exists(disk.Path))
        {
            return null;
        }

        try
        {
            return ImageTrust.LocalVirtualSize(disk.Path, disk.Format);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The format and source type of an existing image given by path: the declared format, else raw (never the image's own
    /// bytes, nor libvirt's volume format read from them); raw for block devices. qcow2 images are checked (ImageTrust).
    /// </summary>
    private static (string Format, string SourceType) ExistingImage(KvmConnection conn, string path, string? declared, IKvmLog log)
    {
        if (!path.StartsWith('/'))
        {
            throw new KvmOperationException("DiskNotFound", $"'{path}' is not an absolute path on the host.", path) { Kind = KvmErrorKind.InvalidArgument };
        }

        string format = declared ?? "raw";
        if (SafeVolumeByPath(conn, path) is { } vol)
        {
            if (vol.Type != 1)
            {
                ImageTrust.CheckExisting(conn, path, format, vol, "disk image", log);
            }

            return (format, vol.Type == 1 ? "block" : "file");
        }

        if (conn.IsProvenLocal && path.StartsWith("/dev/", StringComparison.Ordinal) && File.Exists(path))
        {
            return (format, "block");
        }

        if (conn.IsProvenLocal && File.Exists(path))
        {
            ImageTrust.CheckExisting(conn, path, format, null, "disk image", log);
            return (format, "file");
        }

        throw new KvmOperationException("DiskNotFound",
            $"The disk image '{path}' was found neither as a storage volume nor{(conn.IsProvenLocal ? " as a file" : $" (only volumes can be checked: {conn.LocalityDetail})")} on {conn.HostName}.", path)
        {
            Kind = KvmErrorKind.NotFound,
            Hint = !conn.IsProvenLocal ? "Put the image in a storage pool's folder on the host, or use -Volume." : "Check the path, or use -SizeBytes to create a new disk.",
        };
    }

    /// <summary>Checks that a CD/DVD image exists; returns its source type (file or block).</summary>
    private static string ExistingMedia(KvmConnection conn, string path)
    {
        if (path.StartsWith('/') && SafeVolumeByPath(conn, path) is { } vol)
        {
            return vol.Type == 1 ? "block" : "file";
        }

        if (conn.IsProvenLocal && path.StartsWith('/') && File.Exists(path))
        {
            return path.StartsWith("/dev/", StringComparison.Ordinal) ? "block" : "file";
        }

        throw new KvmOperationException("MediaNotFound",
            $"The image '{path}' was found neither as a storage volume nor{(conn.IsProvenLocal ? " as a file" : $" (only volumes can be checked: {conn.LocalityDetail})")} on {conn.HostName}.", path)
        {
            Kind = KvmErrorKind.NotFound,
            Hint = "Give the absolute path of an ISO file on the host (or of a volume).",
        };
    }

    /// <summary>Refuses to attach an image as a second writer (or writable under a VM that reads it), per the host's usage graph.</summary>
    private static void CheckNotInUse(KvmConnection conn, KvmVm vm, string path, bool readOnly, CancellationToken cancel)
        => StorageUsage.Read(conn, cancel).RequireNoConflict(path, vm.Uuid, vm.Name, readOnly, shareable: false);

    /// <summary>
    /// What Remove-KvmVmDisk -DeleteVolume would do with the image of <paramref name="target"/>: delete it, or keep it because
    /// another VM (or this VM's snapshots) uses it. Null when the disk has no image to delete (empty drive, CD-ROM).
    /// </summary>
    public static StorageDisposition? PlanImageDeletion(KvmVm vm, string target, CancellationToken cancel = default)
    {
        DomainDevices d = Read(vm);
        if (FindPair(d, "disk", DiskKey, target) is not { } pair)
        {
            return null;
        }

        XElement element = (pair.Live ?? pair.Config)!;
        KvmVmDisk disk = DomainXml.ParseDisk(element);
        StorageUsage usage = StorageUsage.Read(vm.Connection, cancel);
        if (disk.Device != "disk" || ImagePath(vm.Connection, element) is not { } path)
        {
            return null;
        }

        // this disk's own attachment goes away; every other use (other VMs, this VM's snapshots) keeps the image
        IReadOnlyList<StorageUse> users = usage.UsersOf(path).Where(u => !(u.VmUuid == vm.Uuid && u.Kind == StorageUseKind.Disk)).ToList();
        return new StorageDisposition(path, usage.Identify(path), users.Count == 0, users);
    }

    /// <summary>The image of a disk element: its file or device, or the path of its volume (type='volume').</summary>
    private static string? ImagePath(KvmConnection conn, XElement disk)
    {
        XElement? source = disk.Element("source");
        if (((string?)source?.Attribute("file") ?? (string?)source?.Attribute("dev")) is { Length: > 0 } direct)
        {
            return direct;
        }

        if ((string?)source?.Attribute("pool") is { } pool && (string?)source?.Attribute("volume") is { } volume)
        {
            try
            {
                return conn.Invoke(c => c.LookupStorageVolume(pool, volume))?.Path;
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>Deletes a detached disk image: its volume, or a file in no pool on a proven-local host. Never one any VM still uses.</summary>
    private static void DeleteImage(KvmConnection conn, string path, IKvmLog log, CancellationToken cancel)
    {
        IReadOnlyList<StorageUse> users = StorageUsage.Read(conn, cancel).UsersOf(path);
        if (users.Count > 0)
        {
            log.Warning($"'{path}' was kept: used by {string.Join(", ", users.Select(u => u.ToString()).Distinct())}.");
            return;
        }

        StorageUsage.DeleteImage(conn, path, log);
    }
}
