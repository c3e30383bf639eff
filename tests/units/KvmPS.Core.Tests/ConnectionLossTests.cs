using System.Diagnostics;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>A daemon that goes away mid-session: the next call fails fast and clearly, the one after reconnects.</summary>
public sealed class ConnectionLossTests
{
    [SkippableFact]
    public void DeadDaemon_FailsFastWithConnectionLost_ThenReconnects()
    {
        Skip.IfNot(SocketProxy.DaemonAvailable, "no libvirtd socket on this machine");
        using var proxy = new SocketProxy();
        proxy.Start();
        using var conn = new KvmConnection($"test+unix:///default?socket={proxy.Path}").Open();
        Assert.Contains(VmService.List(conn), v => v.Name == "test");
        Assert.True(conn.IsAlive);
        var lost = new ManualResetEventSlim();
        conn.ConnectionLost += (_, _) => lost.Set();

        proxy.Kill();
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<LibvirtException>(() => VmService.List(conn));
        Assert.Equal(LibvirtErrorCode.ConnectionLost, e.Code);
        Assert.True(e.IsConnectionFailure);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.False(conn.IsAlive);

        // The daemon is back (the proxy listens again): the next call reconnects by itself.
        proxy.Start();
        Assert.Contains(VmService.List(conn), v => v.Name == "test");
        Assert.True(conn.IsAlive);
    }

    [SkippableFact]
    public void CloseCallback_MarksTheConnectionLost()
    {
        Skip.IfNot(SocketProxy.DaemonAvailable, "no libvirtd socket on this machine");
        using var proxy = new SocketProxy();
        proxy.Start();
        using var conn = new KvmConnection($"test+unix:///default?socket={proxy.Path}").Open();
        var lost = new ManualResetEventSlim();
        conn.ConnectionLost += (_, _) => lost.Set();
        proxy.Kill();
        Assert.True(lost.Wait(TimeSpan.FromSeconds(15)), "the close callback never fired (is the event loop running?)");
        Assert.False(conn.IsAlive);
    }
}

public sealed class KeepAliveAndExportTests
{
    [SkippableFact]
    public void FrozenDaemon_IsDetectedByKeepalive_NotAHang()
    {
        Skip.IfNot(SocketProxy.DaemonAvailable, "no libvirtd socket on this machine");
        using var proxy = new SocketProxy();
        proxy.Start();
        using var conn = new KvmConnection($"test+unix:///default?socket={proxy.Path}", false, null, null, keepAliveIntervalSeconds: 1, keepAliveCount: 2).Open();
        Assert.Contains(VmService.List(conn), v => v.Name == "test");

        proxy.Freeze();   // sockets stay open, nothing passes: a wedged daemon
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<LibvirtException>(() => VmService.List(conn));
        sw.Stop();
        Assert.Equal(LibvirtErrorCode.ConnectionLost, e.Code);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"took {sw.Elapsed}: keepalive did not fire");
        Assert.False(conn.IsAlive);
    }

    [Fact]
    public void MissingExport_SaysWhichLibvirtIsNeeded()
    {
        Assert.True(KvmPS.Core.Native.LibvirtLibrary.TryLoad(out _));
        Assert.True(KvmPS.Core.Native.LibvirtLibrary.HasExport("virConnectOpenAuth"));
        var e = Assert.Throws<LibvirtException>(() => KvmPS.Core.Native.LibvirtLibrary.RequireExport("virDomainDoesNotExistYet", "99.1.0"));
        Assert.Equal(LibvirtErrorCode.NoSupport, e.Code);
        Assert.Contains("needs libvirt ≥ 99.1.0", e.Message);
    }
}
