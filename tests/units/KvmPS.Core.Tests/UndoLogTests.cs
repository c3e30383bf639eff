using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>Rollback runs to the end, newest first, whatever a step throws, and without the command's cancelled token.</summary>
public sealed class UndoLogTests
{
    private sealed class Log : IKvmLog
    {
        public List<string> Warnings { get; } = [];

        public void Verbose(string message)
        {
        }

        public void Warning(string message) => Warnings.Add(message);

        public void Progress(string activity, string status, int percent, bool completed = false)
        {
        }
    }

    [Fact]
    public void Rollback_RunsEveryStepNewestFirst_WhateverTheyThrow()
    {
        var log = new Log();
        var undo = new UndoLog(log);
        var ran = new List<string>();
        undo.Add("a", () => ran.Add("a"));
        undo.Add("b", () =>
        {
            ran.Add("b");
            throw new InvalidOperationException("b failed");
        });
        undo.Add("c", () =>
        {
            ran.Add("c");
            throw new OperationCanceledException();
        });
        undo.Add("d", () =>
        {
            ran.Add("d");
            throw new LibvirtException(LibvirtErrorCode.NoStorageVol, LibvirtErrorDomain.Storage, "gone");
        });

        undo.Rollback();

        Assert.Equal(["d", "c", "b", "a"], ran);
        Assert.Equal(3, log.Warnings.Count);
        Assert.Contains(log.Warnings, w => w.Contains("b failed", StringComparison.Ordinal));
        Assert.Empty(undo.Pending);
    }

    [Fact]
    public void Rollback_RunsWithItsOwnBudget_NotTheCancelledToken()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        using IDisposable scope = KvmCallScope.Enter(cts.Token);
        CancellationToken seen = default;
        var undo = new UndoLog(new Log());
        undo.Add("look", () => seen = KvmCallScope.Token);

        undo.Rollback();

        Assert.True(seen.CanBeCanceled);
        Assert.False(seen.IsCancellationRequested);
        Assert.True(KvmCallScope.Token.IsCancellationRequested);   // the command's scope is back afterwards
    }

    [Fact]
    public void DismissedAndCommittedSteps_AreNotUndone()
    {
        var ran = new List<string>();
        var undo = new UndoLog(new Log());
        undo.Add("kept", () => ran.Add("kept")).Dismiss();
        undo.Rollback();
        undo.Add("committed", () => ran.Add("committed"));
        undo.Commit();
        undo.Rollback();
        Assert.Empty(ran);
    }

    [Fact]
    public void Call_ThatLibvirtRefuses_MadeNothing_SoItsStepIsDropped()
    {
        using var conn = new KvmConnection("test:///default").Open();
        var ran = new List<string>();
        var undo = new UndoLog(new Log());
        var e = Assert.Throws<LibvirtException>(() => undo.Call(conn, "volume", c => c.CreateStorageVolume("no-such-pool", "<volume><name>x</name><capacity>1</capacity></volume>", 0),
            _ => ran.Add("result"), () => ran.Add("any")));
        Assert.False(UndoLog.IsUnknownOutcome(e));
        Assert.Empty(undo.Pending);
        undo.Rollback();
        Assert.Empty(ran);
    }

    [Fact]
    public void Call_ThatSucceeded_IsUndoneByItsResult()
    {
        using var conn = new KvmConnection("test:///default").Open();
        string name = $"kvmps-t-{Guid.NewGuid():N}"[..20] + ".img";
        var undo = new UndoLog(new Log());
        Backend.StorageVolumeInfo made = undo.Call(conn, "volume", c => c.CreateStorageVolume("default-pool", $"<volume><name>{name}</name><capacity>1048576</capacity></volume>", 0),
            v => conn.Invoke(c => c.DeleteStorageVolume(v)), () => throw new InvalidOperationException("not the by-name undo"));
        Assert.Equal(name, made.Name);
        Assert.NotNull(conn.Invoke(c => c.LookupStorageVolume("default-pool", name)));

        undo.Rollback();

        Assert.Null(conn.Invoke(c => c.LookupStorageVolume("default-pool", name)));
    }
}
