using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Tests;

public sealed class CmdletTests
{
    [Fact]
    public void GetKvmVm_ReturnsTheTestVm()
    {
        using var shell = new KvmShell();
        KvmVm vm = shell.PS.AddCommand("Get-KvmVm").AddParameter("Name", "test").AddParameter("Connection", "test:///default").Invoke<KvmVm>().Single();
        Assert.False(shell.PS.HadErrors);
        Assert.Equal(KvmVmState.Running, vm.State);
        Assert.Equal(2, vm.CpuCount);
        Assert.Equal(2UL << 30, vm.MemoryBytes);
        Assert.Equal(8UL << 30, vm.MaxMemoryBytes);
    }

    [Fact]
    public void GetKvmVm_MissingName_IsNonTerminatingVmNotFound()
    {
        using var shell = new KvmShell();
        var found = shell.Run($"Get-KvmVm -Connection '{KvmShell.FixtureUri}' -Name nope, web1");
        Assert.Single(found);
        Assert.Equal("web1", ((KvmVm)found[0].BaseObject).Name);
        ErrorRecord e = Assert.Single(shell.PS.Streams.Error);
        Assert.Equal("VmNotFound,KvmPS.Commands.GetKvmVmCommand", e.FullyQualifiedErrorId);
        Assert.Equal("nope", e.TargetObject);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
    }

    [Fact]
    public void GetKvmVm_Pipeline_ByPropertyName()
    {
        using var shell = new KvmShell();
        var vms = shell.Run($"[pscustomobject]@{{ Name = 'db1'; Connection = '{KvmShell.FixtureUri}' }} | Get-KvmVm");
        KvmVm vm = (KvmVm)Assert.Single(vms).BaseObject;
        Assert.Equal("db1", vm.Name);
        Assert.Equal(KvmVmState.ShutOff, vm.State);
        Assert.Null(vm.Id);
        Assert.Equal(4, vm.CpuCount);
    }

    [Fact]
    public void ConnectionTransformation_RejectsOtherTypes()
    {
        using var shell = new KvmShell();
        var ex = Assert.ThrowsAny<ParameterBindingException>(() => shell.PS.AddCommand("Get-KvmVm").AddParameter("Connection", 42.5).Invoke());
        Assert.Contains("qemu:///system", ex.Message);
    }

    [Fact]
    public void ConnectAndDisconnect_ManageTheDefaultList()
    {
        using var shell = new KvmShell();
        var c = (KvmConnection)shell.Run($"Connect-KvmHost '{KvmShell.FixtureUri}'").Single().BaseObject;
        Assert.True(c.IsAlive);
        Assert.Equal(7, shell.Run("Get-KvmVm").Count);
        Assert.Single(shell.Run("Get-KvmConnection"));
        shell.Run("Get-KvmConnection | Disconnect-KvmHost -Confirm:$false");
        Assert.Empty(shell.Run("Get-KvmConnection"));
        Assert.False(c.IsAlive);
    }

    [Fact]
    public void GetKvmHostCapability_TestDriver_IsHonest()
    {
        using var shell = new KvmShell();
        var cap = (KvmHostCapability)shell.Run("Get-KvmHostCapability -Connection test:///default").Single().BaseObject;
        Assert.False(cap.KvmAvailable);
        Assert.Equal(["test"], cap.Accelerators);
        // Nothing about this machine's hardware concerns the simulated host: every check is NotApplicable,
        // so the report shows no failure of the product (and Overall says the same).
        KvmHostCheck only = Assert.Single(cap.Checks);
        Assert.Equal("Simulated host", only.Name);
        Assert.Equal(KvmCheckResult.NotApplicable, only.Result);
        Assert.Equal(KvmCheckResult.NotApplicable, cap.Overall);
    }

    [Fact]
    public void BadUri_GivesKvmConnectionFailed_WithUriAsTarget()
    {
        using var shell = new KvmShell();
        shell.Run("Get-KvmHost -Connection 'bogus+driver:///nowhere'");
        ErrorRecord e = Assert.Single(shell.PS.Streams.Error);
        Assert.Equal("KvmConnectionFailed,KvmPS.Commands.GetKvmHostCommand", e.FullyQualifiedErrorId);
        Assert.Equal("bogus+driver:///nowhere", e.TargetObject);
        Assert.Equal(ErrorCategory.ConnectionError, e.CategoryInfo.Category);
    }

    [Fact]
    public void OneConnection_ManyRunspacesAtOnce()
    {
        var conn = new KvmConnection(KvmShell.FixtureUri).Open();
        int errors = 0;
        Parallel.For(0, 8, _ =>
        {
            using var shell = new KvmShell();
            for (int i = 0; i < 20; i++)
            {
                shell.PS.Commands.Clear();
                var vms = shell.PS.AddCommand("Get-KvmVm").AddParameter("Connection", conn).Invoke<KvmVm>();
                if (shell.PS.HadErrors || vms.Count != 7)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        });
        Assert.Equal(0, errors);
        conn.Dispose();
    }
}
