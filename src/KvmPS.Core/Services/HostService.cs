using System.Diagnostics;
using KvmPS.Core.Backend;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Services;

/// <summary>Host facts: size and allocation (<see cref="GetHost(KvmConnection, CancellationToken)"/>) and what it can run (<see cref="GetCapability"/>).</summary>
public static class HostService
{
    /// <summary>How long <see cref="GetHost(KvmConnection, CancellationToken)"/> samples the host's CPU times.</summary>
    public static readonly TimeSpan DefaultCpuSampleInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>virNodeGetCPUStats' VIR_NODE_CPU_STATS_ALL_CPUS and virNodeGetMemoryStats' VIR_NODE_MEMORY_STATS_ALL_CELLS.</summary>
    private const int AllCpus = -1;
    private const int AllCells = -1;

    /// <summary>The host's size, use and VM allocation, from node info and one bulk VM listing.</summary>
    public static KvmHostInfo GetHost(KvmConnection connection, CancellationToken cancel = default)
        => GetHost(connection, DefaultCpuSampleInterval, cancel);

    /// <summary>
    /// The host's size, use and VM allocation. The CPU usage comes from two samples of the node's CPU times
    /// <paramref name="cpuSampleInterval"/> apart (zero: no CPU usage); the first is taken before the rest of
    /// the work, so the interval overlaps it.
    /// </summary>
    public static KvmHostInfo GetHost(KvmConnection connection, TimeSpan cpuSampleInterval, CancellationToken cancel = default)
    {
        (IReadOnlyList<TypedParameter>? Stats, long At) cpu1 = cpuSampleInterval > TimeSpan.Zero ? SampleCpu(connection) : (null, 0);
        (NodeInfo node, ulong? free, int cells) = connection.Invoke(c =>
        {
            NodeInfo n = c.GetNodeInfo();
            ulong? f;
            try
            {
                f = c.GetFreeMemory();
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure)
            {
                f = null;   // e.g. a test-driver node file without NUMA cells
            }

            int numa = n.Nodes;
            try
            {
                numa = Math.Max(numa, CapabilitiesXml.ParseHost(c.GetCapabilities()).NumaCells);
            }
            catch (LibvirtException)
            {
                // node info's count is good enough
            }

            return (n, f, numa);
        });
        IReadOnlyList<KvmVm> vms = VmService.List(connection, cancel);
        List<KvmVm> active = vms.Where(v => v.Id is not null).ToList();
        int allocCpu = active.Sum(v => v.CpuCount);
        ulong allocMem = (ulong)active.Sum(v => (decimal)v.MemoryBytes);
        ulong memory = node.MemoryKiB * 1024;
        int definedCpu = vms.Sum(v => v.CpuCount);
        ulong definedMem = (ulong)vms.Sum(v => (decimal)v.MaxMemoryBytes);
        IReadOnlyList<TypedParameter>? mem = NodeStats(connection, c => c.GetNodeMemoryStats(AllCells));
        ulong? memTotal = Stat(mem, "total"), memFree = Stat(mem, "free"), buffers = Stat(mem, "buffers"), cached = Stat(mem, "cached");
        ulong? reclaimable = memFree + (buffers ?? 0) + (cached ?? 0);
        double? cpuUsage = null;
        TimeSpan? cpuInterval = null;
        if (cpu1.Stats is not null)
        {
            TimeSpan left = cpuSampleInterval - Stopwatch.GetElapsedTime(cpu1.At);
            if (left > TimeSpan.Zero)
            {
                _ = cancel.WaitHandle.WaitOne(left);
            }

            cancel.ThrowIfCancellationRequested();
            (IReadOnlyList<TypedParameter>? Stats, long At) cpu2 = SampleCpu(connection);
            if (cpu2.Stats is not null)
            {
                cpuInterval = Stopwatch.GetElapsedTime(cpu1.At, cpu2.At);
                cpuUsage = CpuUsagePercent(cpu1.Stats, cpu2.Stats);
            }
        }

        return new KvmHostInfo
        {
            HostName = connection.HostName,
            Uri = connection.Uri,
            CpuModel = node.Model,
            CpuCount = node.Cpus,
            CpuMhz = node.Mhz,
            Sockets = node.Sockets,
            Cores = node.Cores,
            Threads = node.Threads,
            NumaNodes = cells,
            MemoryBytes = memory,
            FreeMemoryBytes = free ?? memFree * 1024,
            Hypervisor = connection.Hypervisor,
            HypervisorVersion = connection.HypervisorVersion,
            LibvirtVersion = connection.LibvirtVersion,
            VmCount = vms.Count,
            RunningVmCount = vms.Count(v => v.State == KvmVmState.Running),
            AllocatedCpuCount = allocCpu,
            AllocatedMemoryBytes = allocMem,
            DefinedCpuCount = definedCpu,
            DefinedMemoryBytes = definedMem,
            CpuOvercommitRatio = node.Cpus == 0 ? 0 : Math.Round((double)allocCpu / node.Cpus, 3),
            MemoryOvercommitRatio = memory == 0 ? 0 : Math.Round((double)allocMem / memory, 3),
            DefinedCpuOvercommitRatio = node.Cpus == 0 ? 0 : Math.Round((double)definedCpu / node.Cpus, 3),
            DefinedMemoryOvercommitRatio = memory == 0 ? 0 : Math.Round((double)definedMem / memory, 3),
            UnallocatedMemoryBytes = (long)Math.Clamp((decimal)memory - allocMem, long.MinValue, long.MaxValue),
            CpuUsagePercent = cpuUsage,
            CpuSampleInterval = cpuInterval,
            MemoryUsedBytes = memTotal is { } t && reclaimable is { } r && t >= r ? (t - r) * 1024 : null,
            MemoryCachedBytes = cached * 1024,
            MemoryBuffersBytes = buffers * 1024,
            MemoryAvailableBytes = reclaimable * 1024,
            Connection = connection,
        };
    }

    /// <summary>
    /// The share of CPU time the host spent busy (kernel + user + interrupts) between two samples of
    /// virNodeGetCPUStats (all CPUs), 0-100; null when a counter is missing, went backwards, or no time
    /// passed (the test driver's counters are constant).
    /// </summary>
    public static double? CpuUsagePercent(IReadOnlyList<TypedParameter> first, IReadOnlyList<TypedParameter> second)
    {
        if (Stat(first, "kernel") is not { } k1 || Stat(first, "user") is not { } u1 || Stat(first, "idle") is not { } i1
            || Stat(second, "kernel") is not { } k2 || Stat(second, "user") is not { } u2 || Stat(second, "idle") is not { } i2)
        {
            // Drivers that only give a ready-made utilization (percent) report that instead.
            return Stat(second, "utilization") is { } u ? Math.Clamp(u, 0, 100) : null;
        }

        ulong busy1 = k1 + u1 + (Stat(first, "intr") ?? 0), busy2 = k2 + u2 + (Stat(second, "intr") ?? 0);
        ulong idle1 = i1 + (Stat(first, "iowait") ?? 0), idle2 = i2 + (Stat(second, "iowait") ?? 0);
        if (busy2 < busy1 || idle2 < idle1)
        {
            return null;
        }

        double busy = busy2 - busy1;
        double total = busy + (idle2 - idle1);
        return total > 0 ? Math.Clamp(100 * busy / total, 0, 100) : null;
    }

    /// <summary>One CPU sample (all CPUs) and the midpoint of its call as a Stopwatch time stamp; null stats when the driver has none.</summary>
    private static (IReadOnlyList<TypedParameter>? Stats, long At) SampleCpu(KvmConnection connection)
    {
        long before = Stopwatch.GetTimestamp();
        IReadOnlyList<TypedParameter>? stats = NodeStats(connection, c => c.GetNodeCpuStats(AllCpus));
        long after = Stopwatch.GetTimestamp();
        return (stats, before + ((after - before) / 2));
    }

    /// <summary>Node statistics, or null when the driver does not offer them (NoSupport and other non-connection failures).</summary>
    private static IReadOnlyList<TypedParameter>? NodeStats(KvmConnection connection, Func<ILibvirtConnection, IReadOnlyList<TypedParameter>> read)
        => connection.Invoke(c =>
        {
            try
            {
                return read(c);
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
            {
                return null;
            }
        });

    private static ulong? Stat(IReadOnlyList<TypedParameter>? stats, string name)
    {
        if (stats is not null)
        {
            foreach (TypedParameter p in stats)
            {
                if (string.Equals(p.Name, name, StringComparison.Ordinal))
                {
                    return p.AsUInt64();
                }
            }
        }

        return null;
    }

    /// <summary>
    /// What the host can run, from libvirt's capabilities and domain capabilities (works remotely),
    /// plus checks that read this machine (/dev/kvm, nested, vhost) when the connection is local.
    /// </summary>
    public static KvmHostCapability GetCapability(KvmConnection connection, LocalHostProbe? probe = null)
    {
        probe ??= LocalHostProbe.Default;
        HostCapabilities caps = CapabilitiesXml.ParseHost(connection.Invoke(c => c.GetCapabilities()));
        string? arch = caps.Arch;
        List<GuestCapability> guests = caps.Guests.Where(g => g.Arch == arch && g.OsType == "hvm").ToList();
        if (guests.Count == 0)
        {
            guests = caps.Guests.Where(g => g.Arch == arch).ToList();
        }

        List<string> domainTypes = guests.SelectMany(g => g.DomainTypes).Distinct().ToList();
        bool kvm = domainTypes.Contains("kvm");
        string? virtType = kvm ? "kvm" : domainTypes.Contains("qemu") ? "qemu" : null;
        DomainCapabilities? domCaps = null;
        string? domCapsError = null;
        if (virtType is not null)
        {
            try
            {
                domCaps = CapabilitiesXml.ParseDomain(connection.Invoke(c => c.GetDomainCapabilities(null, arch, null, virtType, 0)));
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
            {
                domCapsError = e.Message;
            }
        }
        else
        {
            domCapsError = $"the {connection.Hypervisor} driver offers no kvm or qemu domain type";
        }

        int? maxCpus = domCaps?.MaxVcpus;
        if (maxCpus is null)
        {
            try
            {
                maxCpus = connection.Invoke(c => c.GetMaxVcpus(virtType ?? domainTypes.FirstOrDefault()));
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
            {
                maxCpus = null;
            }
        }

        bool isTestDriver = string.Equals(connection.Hypervisor, "TEST", StringComparison.OrdinalIgnoreCase);
        bool localMachine = !isTestDriver && connection.IsProvenLocal;
        string? skipLocal = isTestDriver ? "the test driver does not use this machine's hardware"
            : !localMachine ? $"local check; the daemon is not proven to be this machine ({connection.LocalityDetail})" : null;

        KvmHardwareVirtualization hw = caps.CpuFeatures.Contains("vmx") ? KvmHardwareVirtualization.VTx
            : caps.CpuFeatures.Contains("svm") ? KvmHardwareVirtualization.AmdV
            : localMachine ? probe.CpuVirtualization() : KvmHardwareVirtualization.Unknown;
        if (hw == KvmHardwareVirtualization.None && kvm)
        {
            hw = KvmHardwareVirtualization.Unknown;   // KVM works, so the CPU flags are hidden (nested or masked)
        }

        bool? nested = localMachine ? probe.NestedEnabled() : null;
        bool? iommu = caps.IommuSupport ?? (localMachine ? probe.IommuGroupsPresent() : null);
        KvmFirmwareSupport firmware = KvmFirmwareSupport.None;
        if (domCaps is not null)
        {
            if (arch is "x86_64" or "i686")
            {
                firmware |= KvmFirmwareSupport.Bios;
            }

            if (domCaps.FirmwareValues.Contains("efi") || (domCaps.LoaderTypes.Contains("pflash") && domCaps.Loaders.Count > 0))
            {
                firmware |= KvmFirmwareSupport.Uefi;
            }

            if (domCaps.LoaderSecure.Contains("yes"))
            {
                firmware |= KvmFirmwareSupport.SecureBoot;
            }
        }

        var checks = new List<KvmHostCheck>
        {
            hw switch
            {
                KvmHardwareVirtualization.VTx => new("Hardware virtualization", KvmCheckResult.Pass, "Intel VT-x (vmx) present", false),
                KvmHardwareVirtualization.AmdV => new("Hardware virtualization", KvmCheckResult.Pass, "AMD-V (svm) present", false),
                KvmHardwareVirtualization.None => new("Hardware virtualization", KvmCheckResult.Fail, "the CPU shows neither vmx nor svm: enable VT-x/AMD-V in the firmware", false),
                _ => new("Hardware virtualization", kvm ? KvmCheckResult.Pass : KvmCheckResult.Warn,
                    kvm ? "vmx/svm not visible to libvirt, but KVM is usable (nested or masked CPU flags)" : "cannot tell from this driver", false),
            },
            kvm
                ? new("KVM in libvirt", KvmCheckResult.Pass, $"libvirt offers domain type kvm for {arch}", false)
                : new("KVM in libvirt", KvmCheckResult.Fail,
                    domainTypes.Count == 0 ? $"libvirt offers no {arch} guests" : $"libvirt offers only {string.Join(", ", domainTypes)} for {arch}: no KVM acceleration", false),
            new("Domain capabilities", domCaps is null ? KvmCheckResult.Warn : KvmCheckResult.Pass,
                domCaps is null ? $"not available: {domCapsError}" : $"{domCaps.DomainType} on {domCaps.Machine}, up to {domCaps.MaxVcpus} vCPUs", false),
            domCaps is null
                ? new("UEFI firmware", KvmCheckResult.Skipped, "needs domain capabilities", false)
                : firmware.HasFlag(KvmFirmwareSupport.Uefi)
                    ? new("UEFI firmware", KvmCheckResult.Pass, firmware.HasFlag(KvmFirmwareSupport.SecureBoot) ? "UEFI with Secure Boot" : "UEFI (no Secure Boot loader)", false)
                    : new("UEFI firmware", KvmCheckResult.Warn, "no UEFI loader: install OVMF (Debian: ovmf)", false),
            iommu switch
            {
                true => new("IOMMU", KvmCheckResult.Pass, "IOMMU active: PCI passthrough possible", false),
                false => new("IOMMU", KvmCheckResult.Warn, "no IOMMU: PCI device passthrough is not possible (enable intel_iommu/amd_iommu)", false),
                null => new("IOMMU", KvmCheckResult.Skipped, "unknown", false),
            },
        };

        if (skipLocal is not null)
        {
            foreach (string name in new[] { "/dev/kvm", "/dev/kvm permissions", "Nested virtualization", "/dev/vhost-net", "/dev/net/tun" })
            {
                checks.Add(new KvmHostCheck(name, KvmCheckResult.Skipped, skipLocal, true));
            }
        }
        else
        {
            checks.AddRange(probe.LocalChecks(nested));
        }

        if (isTestDriver)
        {
            // The test driver simulates a hypervisor in this process: it has no CPU, firmware or devices of its
            // own, so no check of a KVM host concerns it. The facts above still say what it offers.
            // One NotApplicable line says so instead of ten hardware checks that do not concern it.
            checks = [new KvmHostCheck("Simulated host", KvmCheckResult.NotApplicable,
                "libvirt's test driver simulates a hypervisor inside this process: there is no hardware, KVM or firmware to check", false)];
        }

        return new KvmHostCapability
        {
            HostName = connection.HostName,
            Uri = connection.Uri,
            Arch = arch,
            CpuVendor = caps.CpuVendor,
            CpuModel = caps.CpuModel,
            HardwareVirtualization = hw,
            KvmAvailable = kvm,
            Accelerators = domainTypes,
            NestedVirtualization = nested,
            Iommu = iommu,
            MaxCpuCount = maxCpus,
            MachineTypes = guests.SelectMany(g => g.Machines).Where(m => !m.Deprecated).Select(m => m.Name).Distinct().Order(StringComparer.Ordinal).ToList(),
            Firmware = firmware,
            Checks = checks,
            Connection = connection,
        };
    }
}

/// <summary>Reads this machine's virtualization facts from /proc, /sys and /dev (rooted, so tests can point it at a fake tree).</summary>
public sealed class LocalHostProbe
{
    public LocalHostProbe(string root = "/") => Root = root;

    public static LocalHostProbe Default { get; } = new();

    public string Root { get; }

    public KvmHardwareVirtualization CpuVirtualization()
    {
        string? cpuinfo = Read("proc/cpuinfo");
        if (cpuinfo is null)
        {
            return KvmHardwareVirtualization.Unknown;
        }

        foreach (string line in cpuinfo.Split('\n'))
        {
            if (line.StartsWith("flags", StringComparison.Ordinal))
            {
                string[] flags = line.Split([' ', '\t', ':'], StringSplitOptions.RemoveEmptyEntries);
                if (flags.Contains("vmx"))
                {
                    return KvmHardwareVirtualization.VTx;
                }

                if (flags.Contains("svm"))
                {
                    return KvmHardwareVirtualization.AmdV;
                }
            }
        }

        return KvmHardwareVirtualization.None;
    }

    public bool? NestedEnabled()
    {
        string? v = Read("sys/module/kvm_intel/parameters/nested") ?? Read("sys/module/kvm_amd/parameters/nested");
        return v?.Trim() switch
        {
            "Y" or "y" or "1" => true,
            "N" or "n" or "0" => false,
            _ => null,
        };
    }

    public bool? IommuGroupsPresent()
    {
        string dir = Path.Combine(Root, "sys/kernel/iommu_groups");
        return Directory.Exists(dir) ? Directory.EnumerateFileSystemEntries(dir).Any() : null;
    }

    public IEnumerable<KvmHostCheck> LocalChecks(bool? nested)
    {
        string kvm = Path.Combine(Root, "dev/kvm");
        bool kvmExists = Exists(kvm);
        yield return kvmExists
            ? new KvmHostCheck("/dev/kvm", KvmCheckResult.Pass, "present", true)
            : new KvmHostCheck("/dev/kvm", KvmCheckResult.Fail, "missing: load kvm_intel or kvm_amd (guests fall back to slow TCG)", true);
        if (kvmExists && !OperatingSystem.IsWindows())
        {
            UnixFileMode mode = File.GetUnixFileMode(kvm);
            bool groupRw = mode.HasFlag(UnixFileMode.GroupRead) && mode.HasFlag(UnixFileMode.GroupWrite);
            bool otherRw = mode.HasFlag(UnixFileMode.OtherRead) && mode.HasFlag(UnixFileMode.OtherWrite);
            string? group = GroupOf(kvm);
            yield return otherRw || (groupRw && group is null or "kvm")
                ? new KvmHostCheck("/dev/kvm permissions", KvmCheckResult.Pass, $"mode {ModeString(mode)}, group {group ?? "?"}: the qemu user (group kvm) can open it", true)
                : new KvmHostCheck("/dev/kvm permissions", KvmCheckResult.Warn,
                    $"mode {ModeString(mode)}, group {group ?? "?"}: the qemu user may not open it (guests then fail to start with KVM); run 'chgrp kvm /dev/kvm; chmod 0660 /dev/kvm'", true);
        }
        else
        {
            yield return new KvmHostCheck("/dev/kvm permissions", KvmCheckResult.NotApplicable, "no /dev/kvm to open", true);
        }

        yield return nested switch
        {
            true => new KvmHostCheck("Nested virtualization", KvmCheckResult.Pass, "enabled in the kvm module", true),
            false => new KvmHostCheck("Nested virtualization", KvmCheckResult.Warn, "disabled: guests cannot run KVM themselves", true),
            null when !kvmExists => new KvmHostCheck("Nested virtualization", KvmCheckResult.NotApplicable, "no KVM on this machine", true),
            null => new KvmHostCheck("Nested virtualization", KvmCheckResult.Skipped, "kvm_intel/kvm_amd 'nested' parameter not readable", true),
        };
        yield return Exists(Path.Combine(Root, "dev/vhost-net"))
            ? new KvmHostCheck("/dev/vhost-net", KvmCheckResult.Pass, "present: in-kernel virtio-net acceleration", true)
            : new KvmHostCheck("/dev/vhost-net", KvmCheckResult.Warn, "missing: load vhost_net for faster virtio networking", true);
        yield return Exists(Path.Combine(Root, "dev/net/tun"))
            ? new KvmHostCheck("/dev/net/tun", KvmCheckResult.Pass, "present", true)
            : new KvmHostCheck("/dev/net/tun", KvmCheckResult.Fail, "missing: guests cannot get tap network devices (load tun)", true);
    }

    private static bool Exists(string path) => File.Exists(path) || Directory.Exists(path);   // File.Exists is true for device nodes

    /// <summary>The group name of a file (stat), or null when it cannot be read.</summary>
    private static string? GroupOf(string path)
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%G", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = System.Diagnostics.Process.Start(psi);
            if (p is null)
            {
                return null;
            }

            string output = p.StandardOutput.ReadToEnd().Trim();
            return p.WaitForExit(2000) && p.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return null;
        }
    }

    private static string ModeString(UnixFileMode m) => Convert.ToString((int)m & 0x1FF, 8).PadLeft(4, '0');

    private string? Read(string relative)
    {
        try
        {
            string p = Path.Combine(Root, relative);
            return File.Exists(p) ? File.ReadAllText(p) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
