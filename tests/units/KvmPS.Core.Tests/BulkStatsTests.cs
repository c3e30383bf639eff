using KvmPS.Core.Backend;
using KvmPS.Core.Managed;
using KvmPS.Core.Native;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>
/// Bulk statistics with one VM whose record is larger than the daemon (or our decoder) accepts: the other VMs still
/// come from bulk calls, and the large one is read without its per-device groups. Two shut-off VMs on qemu:///system;
/// a daemon with the early 4,096-field limit is played by lowering the managed decoder's limit.
/// </summary>
public sealed class BulkStatsTests : IDisposable
{
    private const int BigDisks = 60;   // about 300 block fields when shut off
    private static readonly LibvirtOpenOptions s_options = new();
    private static readonly object s_limitLock = new();
    private readonly string _prefix = $"kvmps-t-{Guid.NewGuid().ToString("N")[..8]}-bulk";
    private readonly string _dir;
    private readonly ILibvirtConnection? _native;

    public BulkStatsTests()
    {
        _dir = Directory.CreateTempSubdirectory(_prefix).FullName;
        if (!SocketProxy.DaemonAvailable)
        {
            return;
        }

        _native = NativeBackend.Instance.Open("qemu:///system", s_options);
        string disk = Path.Combine(_dir, "d.img");
        File.WriteAllBytes(disk, new byte[1 << 20]);
        string disks = string.Concat(Enumerable.Range(0, BigDisks).Select(i =>
            $"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/><target dev='sd{(char)('a' + (i / 26))}{(char)('a' + (i % 26))}' bus='scsi'/></disk>"));
        _native.DefineDomain(Domain($"{_prefix}-big", "<controller type='scsi' model='virtio-scsi'/>" + disks), 0);
        _native.DefineDomain(Domain($"{_prefix}-small", $"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/><target dev='vda' bus='virtio'/></disk>"), 0);
    }

    public void Dispose()
    {
        if (_native is not null)
        {
            foreach (DomainRef d in _native.ListAllDomains(ListDomainsFlags.None).Where(d => d.Name.StartsWith(_prefix, StringComparison.Ordinal)))
            {
                _native.UndefineDomain(d, DomainUndefineFlags.None);
            }

            _native.Dispose();
        }

        Directory.Delete(_dir, recursive: true);
    }

    private static string Domain(string name, string devices)
        => $"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices>{devices}</devices></domain>";

    private DomainStatsRecord Of(IReadOnlyList<DomainStatsRecord> records, string suffix)
        => Assert.Single(records, r => r.Domain.Name == $"{_prefix}-{suffix}");

    [SkippableFact]
    public void OneOversizedVm_IsReadWithoutItsDeviceGroups_TheOthersFromBulk()
    {
        Skip.IfNot(SocketProxy.DaemonAvailable, "no libvirtd socket on this machine");
        using ILibvirtConnection managed = ManagedBackend.Instance.Open("qemu:///system", s_options);

        // Everything fits: both VMs with their block statistics, on both backends.
        foreach (ILibvirtConnection c in new[] { _native!, managed })
        {
            IReadOnlyList<DomainStatsRecord> all = VmService.GetStatsNoWait(c, MetricsService.Groups, ListDomainsFlags.None);
            Assert.Equal((ulong)BigDisks, Of(all, "big").GetUInt64("block.count"));
            Assert.Equal(1UL, Of(all, "small").GetUInt64("block.count"));
        }

        // A daemon that allows 200 fields per record: the bulk call fails because of the big VM alone.
        lock (s_limitLock)
        {
            int saved = ManagedConnection.DomainStatsParamsLimit;
            ManagedConnection.DomainStatsParamsLimit = 200;
            try
            {
                var e = Assert.Throws<LibvirtException>(() => managed.GetAllDomainStats(MetricsService.Groups, ListDomainsFlags.None));
                Assert.Equal(LibvirtErrorCode.Rpc, e.Code);

                IReadOnlyList<DomainStatsRecord> degraded = VmService.GetStatsNoWait(managed, MetricsService.Groups, ListDomainsFlags.None);
                DomainStatsRecord big = Of(degraded, "big");
                Assert.Null(big.GetUInt64("block.count"));          // its per-device groups were dropped ...
                Assert.Equal(5UL, big.GetUInt64("state.state"));     // ... the rest is there (shut off)
                Assert.Equal(64UL * 1024, big.GetUInt64("balloon.maximum"));
                Assert.Equal(1UL, Of(degraded, "small").GetUInt64("block.count"));   // the small one keeps everything
                // each VM once (other tests' VMs may come and go meanwhile, so only ours are counted exactly)
                Assert.Equal(degraded.Count, degraded.Select(r => r.Domain.Uuid).Distinct().Count());

                // The listing (Get-KvmVm) over the same connection still shows both.
                var names = VmService.GetStatsNoWait(managed, DomainStatsTypes.State | DomainStatsTypes.Block, ListDomainsFlags.Inactive).Select(r => r.Domain.Name).ToArray();
                Assert.Contains($"{_prefix}-big", names);
                Assert.Contains($"{_prefix}-small", names);
            }
            finally
            {
                ManagedConnection.DomainStatsParamsLimit = saved;
            }
        }
    }
}
