namespace KvmPS.Core;

/// <summary>Which accelerator a new VM asks for: Auto picks KVM when the host offers it, else QEMU/TCG.</summary>
public enum KvmAcceleratorChoice
{
    Auto = 0,
    Kvm = 1,
    Qemu = 2,
}

/// <summary>
/// Everything New-KvmVm needs to create a VM, from parameters, a hashtable or a YAML file.
/// Sizes are bytes. <see cref="VmSpecValidator"/> checks it before anything is created.
/// </summary>
public sealed class VmSpec
{
    public string Name { get; set; } = string.Empty;
    public int? CpuCount { get; set; }
    public int? MaxCpuCount { get; set; }
    public ulong? MemoryBytes { get; set; }
    public ulong? MaxMemoryBytes { get; set; }
    public List<VmDiskSpec> Disks { get; } = [];
    /// <summary>libvirt networks to attach one virtio NIC each to.</summary>
    public List<string> Networks { get; } = [];
    /// <summary>No NIC at all (otherwise, with no networks given, the 'default' network when the host has one).</summary>
    public bool NoNetwork { get; set; }
    public KvmFirmware Firmware { get; set; } = KvmFirmware.Bios;
    public KvmAcceleratorChoice Accelerator { get; set; }
    public string? MachineType { get; set; }
    /// <summary>host-passthrough, host-model, maximum, custom; null: libvirt's default for the accelerator.</summary>
    public string? CpuMode { get; set; }
    public string? Kernel { get; set; }
    public string? Initrd { get; set; }
    public string? KernelArguments { get; set; }
    public string? Title { get; set; }
    public string? Description { get; set; }
    /// <summary>The pool new volumes go to (default: 'default').</summary>
    public string? StoragePool { get; set; }
    public bool Start { get; set; }

    /// <summary>A cloud-init NoCloud seed to build and attach (New-KvmVm -CloudInit); null: none.</summary>
    public CloudInitSeed? CloudInit { get; set; }
}

/// <summary>The files of a cloud-init NoCloud seed, ready to be written to an ISO labelled cidata.</summary>
public sealed class CloudInitSeed
{
    /// <summary>meta-data: instance-id and local-hostname (YAML).</summary>
    public string MetaData { get; set; } = string.Empty;

    /// <summary>user-data: #cloud-config YAML or a script (#!).</summary>
    public string UserData { get; set; } = string.Empty;

    /// <summary>network-config (netplan v2 / v1 YAML); null: cloud-init's default (DHCP on the first NIC).</summary>
    public string? NetworkConfig { get; set; }

    /// <summary>A description for -WhatIf and Verbose that never includes secrets.</summary>
    public string Summary { get; set; } = "cloud-init seed";
}

/// <summary>One disk of a <see cref="VmSpec"/>: a new volume (SizeBytes), an overlay on BaseImage, or an existing Path.</summary>
public sealed class VmDiskSpec
{
    /// <summary>Size of a new volume, or the size to grow an overlay to.</summary>
    public ulong? SizeBytes { get; set; }
    /// <summary>With <see cref="SizeBytes"/>: where the new volume goes (inside a pool's folder); without: an existing image or ISO to attach as it is.</summary>
    public string? Path { get; set; }
    /// <summary>A base image (file path, or pool/volume): the VM gets a qcow2 overlay on it, never a copy.</summary>
    public string? BaseImage { get; set; }
    public string? Pool { get; set; }
    /// <summary>
    /// qcow2 (default for new volumes) or raw; for an existing image (<see cref="Path"/>) the format it was made in: raw
    /// when not given, since an image's own bytes never decide its format.
    /// </summary>
    public string? Format { get; set; }
    /// <summary>The format of <see cref="BaseImage"/> (qcow2 or raw); raw when not given.</summary>
    public string? BaseImageFormat { get; set; }
    /// <summary>virtio (default), scsi, sata, ide.</summary>
    public string? Bus { get; set; }
    /// <summary>disk (default) or cdrom.</summary>
    public string Device { get; set; } = "disk";
    public bool ReadOnly { get; set; }
}

/// <summary>A spec value that is wrong: names the key (and, for files, where it is).</summary>
public sealed class VmSpecException : Exception
{
    public VmSpecException(string key, string message, int? line = null, int? column = null, Exception? inner = null)
        : base(line is null ? $"{key}: {message}" : $"{key} (line {line}, column {column}): {message}", inner)
    {
        Key = key;
        Line = line;
        Column = column;
    }

    /// <summary>The spec key at fault, as a path (disks[0].size).</summary>
    public string Key { get; }

    public int? Line { get; }

    public int? Column { get; }
}

/// <summary>Checks a spec before anything is created.</summary>
public static class VmSpecValidator
{
    public const ulong MinMemoryBytes = 16UL * 1024 * 1024;

    private static readonly string[] s_buses = ["virtio", "scsi", "sata", "ide", "usb"];
    private static readonly string[] s_formats = ["qcow2", "raw"];
    private static readonly string[] s_cpuModes = ["host-passthrough", "host-model", "maximum", "custom"];

    /// <summary>Throws <see cref="VmSpecException"/> naming the first wrong key.</summary>
    public static void Validate(VmSpec s)
    {
        ValidateName(s.Name);
        if (s.CpuCount is < 1 or > 4096)
        {
            throw new VmSpecException("cpu", $"{s.CpuCount} is not a valid vCPU count (1-4096).");
        }

        if (s.MaxCpuCount is { } maxCpu && maxCpu < (s.CpuCount ?? 1))
        {
            throw new VmSpecException("maxCpu", $"the maximum ({maxCpu}) is below the vCPU count ({s.CpuCount}).");
        }

        if (s.MemoryBytes is { } mem && mem < MinMemoryBytes)
        {
            throw new VmSpecException("memory", $"{ByteSize.Format(mem)} is too little: a VM needs at least {ByteSize.Format(MinMemoryBytes)}.");
        }

        if (s.MaxMemoryBytes is { } maxMem && maxMem < (s.MemoryBytes ?? MinMemoryBytes))
        {
            throw new VmSpecException("maxMemory", $"the maximum ({ByteSize.Format(maxMem)}) is below the memory ({ByteSize.Format(s.MemoryBytes ?? 0)}).");
        }

        if (s.CpuMode is not null && !s_cpuModes.Contains(s.CpuMode))
        {
            throw new VmSpecException("cpuMode", $"'{s.CpuMode}' is not one of {string.Join(", ", s_cpuModes)}.");
        }

        if (s.Initrd is not null && s.Kernel is null)
        {
            throw new VmSpecException("initrd", "an initrd needs a kernel.");
        }

        for (int i = 0; i < s.Disks.Count; i++)
        {
            VmDiskSpec d = s.Disks[i];
            string key = $"disks[{i}]";
            int sources = (d.Path is null ? 0 : 1) + (d.BaseImage is null ? 0 : 1);
            if (sources > 1)
            {
                throw new VmSpecException(key, "give either path or baseImage, not both.");
            }

            if (sources == 0 && d.SizeBytes is null && d.Device != "cdrom")
            {
                throw new VmSpecException(key, "give a size (new volume), a path (existing image) or a baseImage (overlay).");
            }


            if (d.SizeBytes is { } size && size < 1024 * 1024)
            {
                throw new VmSpecException($"{key}.size", $"{size} bytes is too small for a disk (at least 1 MiB).");
            }

            if (d.Bus is not null && !s_buses.Contains(d.Bus))
            {
                throw new VmSpecException($"{key}.bus", $"'{d.Bus}' is not one of {string.Join(", ", s_buses)}.");
            }

            if (d.Format is not null && !s_formats.Contains(d.Format))
            {
                throw new VmSpecException($"{key}.format", $"'{d.Format}' is not one of {string.Join(", ", s_formats)}.");
            }

            if (d.BaseImageFormat is not null && !s_formats.Contains(d.BaseImageFormat))
            {
                throw new VmSpecException($"{key}.baseImageFormat", $"'{d.BaseImageFormat}' is not one of {string.Join(", ", s_formats)}.");
            }

            if (d.Device is not ("disk" or "cdrom"))
            {
                throw new VmSpecException($"{key}.device", $"'{d.Device}' is not disk or cdrom.");
            }
        }

        foreach (string n in s.Networks)
        {
            if (string.IsNullOrWhiteSpace(n))
            {
                throw new VmSpecException("networks", "a network name is empty.");
            }
        }

        if (s.NoNetwork && s.Networks.Count > 0)
        {
            throw new VmSpecException("networks", "networks were given together with noNetwork.");
        }
    }

    /// <summary>VM names are stored exactly; ones libvirt or file systems cannot hold are rejected.</summary>
    public static void ValidateName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new VmSpecException("name", "a VM needs a name.");
        }

        if (name.Length > 200)
        {
            throw new VmSpecException("name", "the name is longer than 200 characters.");
        }

        if (name.Any(char.IsControl))
        {
            throw new VmSpecException("name", "the name contains a control character (newline, tab ...).");
        }

        if (name.Contains('/') || name.Contains('\\'))
        {
            throw new VmSpecException("name", "the name contains a slash, which libvirt cannot store.");
        }

        if (name != name.Trim())
        {
            throw new VmSpecException("name", "the name starts or ends with white space.");
        }
    }
}
