using KvmPS.Core.Backend;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Services;

/// <summary>Host facts: size and allocation (<see cref="GetHost"/>) and what it can run (<see cref="GetCapability"/>).</summary>
public static class HostService
{
    /// <summary>The host's size, use and VM allocation, from node info and one bulk VM listing.</summary>
    public static KvmHostInfo GetHost(KvmConnection connection, CancellationToken cancel = default)
    {
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
            FreeMemoryBytes = free,
            Hypervisor = connection.Hypervisor,
            HypervisorVersion = connection.HypervisorVersion,
            LibvirtVersion = connection.LibvirtVersion,
            VmCount = vms.Count,
            RunningVmCount = vms.Count(v => v.State == KvmVmState.Running),
            AllocatedCpuCount = allocCpu,
            AllocatedMemoryBytes = allocMem,
            DefinedCpuCount = vms.Sum(v => v.CpuCount),
            DefinedMemoryBytes = (ulong)vms.Sum(v => (decimal)v.MaxMemoryBytes),
            CpuOvercommitRatio = node.Cpus == 0 ? 0 : Math.Round((double)allocCpu / node.Cpus, 3),
            MemoryOvercommitRatio = memory == 0 ? 0 : Math.Round((double)allocMem / memory, 3),
            Connection = connection,
        };
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
        bool localMachine = !connection.IsRemote && !isTestDriver;
        string? skipLocal = isTestDriver ? "the test driver does not use this machine's hardware"
            : connection.IsRemote ? "local check; the connection is to another host" : null;

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
            yield return new KvmHostCheck("/dev/kvm permissions", KvmCheckResult.Skipped, "no /dev/kvm", true);
        }

        yield return nested switch
        {
            true => new KvmHostCheck("Nested virtualization", KvmCheckResult.Pass, "enabled in the kvm module", true),
            false => new KvmHostCheck("Nested virtualization", KvmCheckResult.Warn, "disabled: guests cannot run KVM themselves", true),
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
