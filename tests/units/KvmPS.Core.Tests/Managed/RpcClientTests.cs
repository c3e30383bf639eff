using System.Diagnostics;
using KvmPS.Core.Backend;
using KvmPS.Core.Managed;

namespace KvmPS.Core.Tests.Managed;

/// <summary>The RPC engine against a scripted in-memory daemon: routing, errors, events, keepalive, streams.</summary>
public sealed class RpcClientTests
{
    private const uint Remote = RpcPrograms.Remote;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    internal static void Await(Task t) => Sync.Await(t);

    private static (RpcClient Client, FakeDaemon Daemon) Pair(bool socket)
    {
        (Stream client, Stream server) = FakeDaemon.Connect(socket);
        return (new RpcClient(client, "fake"), new FakeDaemon(server));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Call_SendsAWellFormedCall_AndDecodesTheReply(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            Task<string> call = Task.Run(() => client.Call(Remote, 14, w => w.WriteString("arg"), r => r.ReadString()));
            FakeDaemon.Packet p = daemon.Read()!.Value;
            Assert.Equal(Remote, p.Program);
            Assert.Equal(1u, p.Version);
            Assert.Equal(14, p.Procedure);
            Assert.Equal(0, p.Type);
            Assert.Equal(0, p.Status);
            Assert.Equal("arg", new XdrReader(p.Payload).ReadString());
            daemon.Reply(p, w => w.WriteString("<domain/>"));
            Assert.True(Sync.Done(call));
            Assert.Equal("<domain/>", Sync.Get(call));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ConcurrentCalls_Pipeline_AndRepliesAreRoutedBySerial(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            // three calls in flight before any reply; answered in reverse order
            Task<int>[] calls = [.. Enumerable.Range(0, 3).Select(i => Task.Run(() => client.Call(Remote, 100 + i, w => w.WriteInt32(i), r => r.ReadInt32())))];
            FakeDaemon.Packet[] got = [daemon.Read()!.Value, daemon.Read()!.Value, daemon.Read()!.Value];
            Assert.Equal(3, got.Select(p => p.Serial).Distinct().Count());
            foreach (FakeDaemon.Packet p in got.Reverse())
            {
                int arg = new XdrReader(p.Payload).ReadInt32();
                daemon.Reply(p, w => w.WriteInt32(arg * 10));
            }

            Assert.True(Sync.Done(Task.WhenAll(calls)));
            Assert.Equal(new[] { 0, 10, 20 }, calls.Select(Sync.Get));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ErrorReply_BecomesTheDaemonsLibvirtException_AndTheConnectionStaysUp(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            Task call = Task.Run(() => client.Call(Remote, 23, w => w.WriteString("nope")));
            FakeDaemon.Packet p = daemon.Read()!.Value;
            daemon.ReplyError(p, 42, 10, "Domain not found: no domain with matching name 'nope'");
            var e = Assert.Throws<LibvirtException>(() => Await(call));
            Assert.Equal(LibvirtErrorCode.NoDomain, e.Code);
            Assert.Equal(LibvirtErrorDomain.Qemu, e.ErrorDomain);
            Assert.Equal("Domain not found: no domain with matching name 'nope'", e.Message);
            Assert.False(e.IsConnectionFailure);
            Assert.True(client.IsOpen);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Events_ReachMessageReceived(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            var got = new TaskCompletionSource<(int, string)>();
            client.MessageReceived += (proc, r) => got.TrySetResult((proc, r.ReadDomain().Name));
            daemon.Send(FakeDaemon.Frame(Remote, 318, 2, 1, 0, FakeDaemon.Xdr(w => w.WriteDomain(new DomainRef("vm", Guid.NewGuid(), 1)))));
            Assert.True(Sync.Done(got.Task));
            Assert.Equal((318, "vm"), Sync.Get(got.Task));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DaemonPing_IsAnsweredWithPong(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            daemon.Send(FakeDaemon.Frame(RpcPrograms.KeepAlive, 1, 2, 0, 0, []));
            Task<FakeDaemon.Packet?> read = Task.Run(() => daemon.Read());
            Assert.True(Sync.Done(read));
            FakeDaemon.Packet pong = Sync.Get(read)!.Value;
            Assert.Equal(RpcPrograms.KeepAlive, pong.Program);
            Assert.Equal(2, pong.Procedure);
            Assert.Equal(2, pong.Type);
            Assert.True(client.IsOpen);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SilentPeer_IsDeclaredDeadByKeepalive_AndPendingCallsFail(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            var closed = new TaskCompletionSource<ConnectionCloseReason>();
            client.Closed += r => closed.TrySetResult(r);
            client.StartKeepAlive(1, 2);
            var sw = Stopwatch.StartNew();
            Task call = Task.Run(() => client.Call(Remote, 3, null));
            var e = Assert.Throws<LibvirtException>(() => Await(call));
            Assert.True(e.IsConnectionFailure, e.Message);
            Assert.Contains("keepalive", e.Message);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(6), $"took {sw.Elapsed}");
            Assert.True(Sync.Done(closed.Task));
            Assert.Equal(ConnectionCloseReason.KeepAlive, Sync.Get(closed.Task));
            Assert.False(client.IsOpen);

            // the client did ping (proc 1 MESSAGE on the keepalive program) before giving up
            var packets = new List<FakeDaemon.Packet>();
            while (daemon.Read() is { } p)
            {
                packets.Add(p);
            }

            Assert.Contains(packets, p => p.Program == RpcPrograms.KeepAlive && p.Procedure == 1 && p.Type == 2);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnsweredPings_KeepTheConnectionAlive(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            client.StartKeepAlive(1, 1);
            using var cts = new CancellationTokenSource();
            Task answer = Task.Run(() =>
            {
                while (!cts.IsCancellationRequested && daemon.Read() is { } p)
                {
                    if (p.Program == RpcPrograms.KeepAlive && p.Procedure == 1)
                    {
                        daemon.Send(FakeDaemon.Frame(RpcPrograms.KeepAlive, 2, 2, 0, 0, []));
                    }
                }
            });
            Thread.Sleep(4000);
            Assert.True(client.IsOpen);
            cts.Cancel();
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Eof_FailsPendingCalls_WithAConnectionFailure_AndRaisesClosed(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            var closed = new TaskCompletionSource<ConnectionCloseReason>();
            client.Closed += r => closed.TrySetResult(r);
            Task call = Task.Run(() => client.Call(Remote, 3, null));
            _ = daemon.Read();
            daemon.Hangup();
            Assert.True(Sync.Done(closed.Task));
            Assert.Equal(ConnectionCloseReason.Eof, Sync.Get(closed.Task));
            var e = Assert.Throws<LibvirtException>(() => Await(call));
            Assert.True(e.IsConnectionFailure);
            Assert.Equal(LibvirtErrorCode.SystemError, e.Code);
            Assert.Equal(LibvirtErrorDomain.Rpc, e.ErrorDomain);

            // later calls fail at once, like native's "client socket is closed"
            var later = Assert.Throws<LibvirtException>(() => client.Call(Remote, 3, null));
            Assert.True(later.IsConnectionFailure);
            Assert.Contains("client socket is closed", later.Message);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Dispose_DoesNotRaiseClosed_AndStopsTheReader(bool socket)
    {
        int before = RpcClient.LiveReaderThreads;
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        bool raised = false;
        client.Closed += _ => raised = true;
        client.Dispose();
        daemon.Dispose();
        Assert.False(raised);
        Assert.False(client.IsOpen);
        Assert.True(SpinWait.SpinUntil(() => RpcClient.LiveReaderThreads <= before, s_timeout));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CancelledCall_ThrowsAtOnce_AndItsLateReplyIsIgnored(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            using var cts = new CancellationTokenSource();
            Task call = Task.Run(() => client.Call(Remote, 3, null, cts.Token));
            FakeDaemon.Packet p = daemon.Read()!.Value;
            cts.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => Await(call));
            daemon.Reply(p, w => w.WriteString("late"));

            Task<int> next = Task.Run(() => client.Call(Remote, 4, null, r => r.ReadInt32()));
            FakeDaemon.Packet q = daemon.Read()!.Value;
            daemon.Reply(q, w => w.WriteInt32(7));
            Assert.True(Sync.Done(next));
            Assert.Equal(7, Sync.Get(next));
            Assert.True(client.IsOpen);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DownloadStream_DeliversData_ThenEof_ThenFinishHandshake(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            byte[] data = [.. Enumerable.Range(0, 300_000).Select(i => (byte)i)];
            Task daemonSide = Task.Run(() =>
            {
                FakeDaemon.Packet call = daemon.Read()!.Value;
                daemon.Reply(call);
                for (int off = 0; off < data.Length; off += 100_000)
                {
                    daemon.Send(FakeDaemon.Frame(Remote, call.Procedure, 3, call.Serial, 2, data.AsSpan(off, Math.Min(100_000, data.Length - off))));
                }

                daemon.Send(FakeDaemon.Frame(Remote, call.Procedure, 3, call.Serial, 2, []));
                FakeDaemon.Packet ok = daemon.ReadUntil(p => p.Type == 3);
                Assert.Equal(0, ok.Status);
                Assert.Equal(call.Serial, ok.Serial);
                daemon.Send(FakeDaemon.Frame(Remote, call.Procedure, 3, call.Serial, 0, []));
            });

            RpcStream st = client.CallStream(Remote, 209, w => w.WriteInt32(0));
            var received = new MemoryStream();
            byte[] buf = new byte[7000];
            int n;
            while ((n = st.Read(buf)) > 0)
            {
                received.Write(buf, 0, n);
            }

            st.Finish();
            Assert.True(Sync.Done(daemonSide));
            Assert.Equal(data, received.ToArray());
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UploadStream_SendsChunkedData_AndReportsTheDaemonsError(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            byte[] data = new byte[600_000];
            Random.Shared.NextBytes(data);
            var got = new MemoryStream();
            Task daemonSide = Task.Run(() =>
            {
                FakeDaemon.Packet call = daemon.Read()!.Value;
                daemon.Reply(call);
                while (true)
                {
                    FakeDaemon.Packet p = daemon.ReadUntil(x => x.Type == 3);
                    if (p.Status == 2)
                    {
                        Assert.True(p.Payload.Length <= RpcClient.StreamChunkSize);
                        got.Write(p.Payload);
                        continue;
                    }

                    Assert.Equal(0, p.Status);   // the client's OK
                    daemon.Send(FakeDaemon.Frame(Remote, call.Procedure, 3, call.Serial, 1, FakeDaemon.ErrorPayload(38, 18, "disk full")));
                    return;
                }
            });

            RpcStream st = client.CallStream(Remote, 208, null);
            st.Write(data);
            var e = Assert.Throws<LibvirtException>(() => st.Finish());
            Assert.Equal("disk full", e.Message);
            Assert.Equal(LibvirtErrorDomain.Storage, e.ErrorDomain);
            Assert.True(Sync.Done(daemonSide));
            Assert.Equal(data, got.ToArray());
            Assert.True(client.IsOpen);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StreamAbort_SendsStreamError_AndWaitsForTheAcknowledgement(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            Task daemonSide = Task.Run(() =>
            {
                FakeDaemon.Packet call = daemon.Read()!.Value;
                daemon.Reply(call);
                FakeDaemon.Packet abort = daemon.ReadUntil(x => x.Type == 3);
                Assert.Equal(1, abort.Status);
                daemon.Send(FakeDaemon.Frame(Remote, call.Procedure, 3, call.Serial, 1, FakeDaemon.ErrorPayload(39, 7, "stream aborted at client request")));
            });
            RpcStream st = client.CallStream(Remote, 208, null);
            var sw = Stopwatch.StartNew();
            st.Abort();
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
            Assert.True(Sync.Done(daemonSide));
            Assert.Throws<InvalidOperationException>(() => st.Write([1]));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StreamCall_RefusedByTheDaemon_Throws(bool socket)
    {
        (RpcClient client, FakeDaemon daemon) = Pair(socket);
        using (client)
        {
            Task daemonSide = Task.Run(() => daemon.ReplyError(daemon.Read()!.Value, 3, 18, "not supported"));
            var e = Assert.Throws<LibvirtException>(() => client.CallStream(Remote, 208, null));
            Assert.Equal(LibvirtErrorCode.NoSupport, e.Code);
            Assert.True(Sync.Done(daemonSide));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ManyClients_OpenedAndClosed_LeakNoThreads(bool socket)
    {
        int before = RpcClient.LiveReaderThreads;
        for (int i = 0; i < 200; i++)
        {
            (RpcClient client, FakeDaemon daemon) = Pair(socket);
            client.StartKeepAlive(5, 3);
            client.Dispose();
            daemon.Dispose();
        }

        Assert.True(SpinWait.SpinUntil(() => RpcClient.LiveReaderThreads <= before, s_timeout), $"{RpcClient.LiveReaderThreads} readers alive, {before} before");
    }
}
