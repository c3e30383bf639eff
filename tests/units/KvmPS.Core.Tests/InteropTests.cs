using KvmPS.Core;
using KvmPS.Core.Backend;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>Interop against libvirt's in-process test driver (real libvirt, no daemon).</summary>
public sealed class InteropTests : IDisposable
{
    private readonly KvmConnection _conn = new KvmConnection("test:///default").Open();

    public void Dispose() => _conn.Dispose();

    [Fact]
    public void TestDriverVm_HasDocumentedResources()
    {
        KvmVm vm = VmService.List(_conn).Single(v => v.Name == "test");
        Assert.Equal(KvmVmState.Running, vm.State);
        Assert.Equal(2, vm.CpuCount);
        Assert.Equal(2UL * 1024 * 1024 * 1024, vm.MemoryBytes);
        Assert.Equal(8UL * 1024 * 1024 * 1024, vm.MaxMemoryBytes);
        Assert.Equal(1, vm.Id);
        Assert.True(vm.Persistent);
        Assert.Equal(KvmAccelerator.Other, vm.Accelerator);
        Assert.Equal("test", vm.DomainType);
    }

    [Fact]
    public void Connection_DescribesItself()
    {
        Assert.Equal("test:///default", _conn.Uri);
        Assert.Equal("TEST", _conn.Hypervisor);
        Assert.True(_conn.IsAlive);
        Assert.NotNull(_conn.LibvirtVersion);
        Assert.True(_conn.LibvirtVersion!.Major >= 9);
        Assert.Equal("Native", _conn.Backend);
    }

    [Fact]
    public void LookupOfMissingVm_IsLibvirtNoDomain()
    {
        var e = Assert.Throws<LibvirtException>(() => _conn.Invoke(c => c.LookupDomainByName("kvmps-no-such-vm")));
        Assert.Equal(LibvirtErrorCode.NoDomain, e.Code);
        Assert.Equal("virDomainLookupByName", e.Function);
        Assert.Null(VmService.GetByName(_conn, "kvmps-no-such-vm"));
    }

    [Fact]
    public void OpeningABadUri_FailsWithLibvirtCode()
    {
        using var bad = new KvmConnection("nosuchdriver:///x");
        var e = Assert.Throws<LibvirtException>(() => bad.Open());
        Assert.NotEqual(LibvirtErrorCode.Ok, e.Code);
        Assert.Contains("nosuchdriver", e.Message + e.Function, StringComparison.OrdinalIgnoreCase);
    }
}
