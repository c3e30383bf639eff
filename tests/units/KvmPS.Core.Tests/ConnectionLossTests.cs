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
