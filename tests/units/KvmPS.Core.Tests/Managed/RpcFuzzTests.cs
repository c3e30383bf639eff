using System.Buffers.Binary;
using KvmPS.Core.Backend;
using KvmPS.Core.Managed;

namespace KvmPS.Core.Tests.Managed;

/// <summary>
/// Hostile or broken input from the daemon side: whatever arrives, the client never hangs or crashes;
/// the pending call fails with a connection failure, Closed is raised and the connection is marked dead.
/// </summary>
public sealed class RpcFuzzTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    public static TheoryData<string, bool> Cases
    {
        get
        {
            var data = new TheoryData<string, bool>();
            foreach (string kind in new[]
            {
                "truncated-header", "truncated-payload", "length-0", "length-27", "length-2^31", "length-max+1",
                "unknown-serial", "wrong-program", "wrong-version", "wrong-procedure", "garbage-after-good-frame",
                "call-from-server", "reply-status-continue", "keepalive-reply",
            })
            {
                data.Add(kind, false);   // in-memory pipe: the background reader does all reading
                data.Add(kind, true);    // unix socket: the waiting caller reads its own reply
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BrokenInput_FailsTheCall_AndMarksTheConnectionDead(string kind, bool socket)
        => Run(kind, socket, (daemon, call) =>
        {
            uint serial = call.Serial;
            byte[] good = FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, serial, 0, FakeDaemon.Xdr(w => w.WriteInt32(1)));
            switch (kind)
            {
                case "truncated-header":
                    daemon.Send(good[..10]);
                    daemon.Hangup();
                    break;
                case "truncated-payload":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, serial, 0, new byte[64])[..50]);
                    daemon.Hangup();
                    break;
                case "length-0":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, serial, 0, [], lengthOverride: 0));
                    break;
                case "length-27":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, serial, 0, [], lengthOverride: 27));
                    break;
                case "length-2^31":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, serial, 0, [], lengthOverride: int.MinValue));
                    break;
                case "length-max+1":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, serial, 0, [], lengthOverride: 32 * 1024 * 1024 + 29));
                    break;
                case "unknown-serial":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, serial + 1000, 0, []));
                    break;
                case "wrong-program":
                    daemon.Send(FakeDaemon.Frame(0x12345678, call.Procedure, 1, serial, 0, []));
                    break;
                case "wrong-version":
                    byte[] v = good.ToArray();
                    BinaryPrimitives.WriteUInt32BigEndian(v.AsSpan(8), 2);
                    daemon.Send(v);
                    break;
                case "wrong-procedure":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure + 1, 1, serial, 0, []));
                    break;
                case "garbage-after-good-frame":
                    // the good reply completes the call; then the garbage kills the connection
                    daemon.Send([.. good, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
                    break;
                case "call-from-server":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 0, serial, 0, []));
                    break;
                case "reply-status-continue":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, serial, 2, []));
                    break;
                case "keepalive-reply":
                    daemon.Send(FakeDaemon.Frame(RpcPrograms.KeepAlive, 1, 1, serial, 0, []));
                    break;
            }
        }, expectCallSuccess: kind == "garbage-after-good-frame");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedFrame_FromAPeerThatStaysSilent_IsEndedByKeepalive(bool socket)
        => Run("truncated-silent", socket, (daemon, call) =>
        {
            daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, call.Procedure, 1, call.Serial, 0, new byte[64])[..40]);
        }, expectCallSuccess: false, keepAliveSeconds: 1);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void RandomBytes_NeverHang_NeverCrash(int seed)
    {
        var rng = new Random(seed);
        Run("random", seed % 2 == 0, (daemon, _) =>
        {
            byte[] junk = new byte[rng.Next(1, 4096)];
            rng.NextBytes(junk);
            daemon.Send(junk);
            daemon.Hangup();   // random bytes may form a plausible length: end the stream so it cannot wait forever
        }, expectCallSuccess: null);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(14)]
    public void RandomPayloadInAValidReply_FailsOnlyThatCall(int seed)
    {
        // malformed XDR inside a well-framed reply is the caller's decode error, not a dead connection
        var rng = new Random(seed);
        var pipe = new DuplexPipe();
        using var client = new RpcClient(pipe.Client, "fuzz");
        using var daemon = new FakeDaemon(pipe.Server);
        Task<IReadOnlyList<DomainRef>> call = Task.Run(() => client.Call(RpcPrograms.Remote, 273, null, r => r.ReadArray(x => x.ReadDomain(), 16384)));
        Assert.NotNull(call);
        FakeDaemon.Packet p = daemon.Read()!.Value;
        byte[] junk = new byte[rng.Next(4, 512)];
        rng.NextBytes(junk);
        junk[0] = 0x7F;   // an absurd count
        daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, p.Procedure, 1, p.Serial, 0, junk));
        var e = Assert.Throws<LibvirtException>(() => RpcClientTests.Await(call));
        Assert.Equal(LibvirtErrorCode.Rpc, e.Code);
        Assert.True(client.IsOpen);
    }

    [Fact]
    public void UndecodableEvent_IsDropped_ConnectionStaysUp()
    {
        var pipe = new DuplexPipe();
        using var client = new RpcClient(pipe.Client, "fuzz");
        using var daemon = new FakeDaemon(pipe.Server);
        int seen = 0;
        client.MessageReceived += (proc, r) =>
        {
            Interlocked.Increment(ref seen);
            r.ReadDomain();   // throws: the payload is too short
        };
        daemon.Send(FakeDaemon.Frame(RpcPrograms.Remote, 318, 2, 1, 0, [0, 0, 0, 9]));
        Task<int> call = Task.Run(() => client.Call(RpcPrograms.Remote, 4, null, r => r.ReadInt32()));
        FakeDaemon.Packet p = daemon.Read()!.Value;
        daemon.Reply(p, w => w.WriteInt32(5));
        Assert.True(Sync.Done(call));
        Assert.Equal(5, Sync.Get(call));
        Assert.Equal(1, seen);
        Assert.True(client.IsOpen);
    }

    /// <summary>Starts one call, lets <paramref name="attack"/> answer it, and checks the outcome within a deadline.</summary>
    private static void Run(string kind, bool socket, Action<FakeDaemon, FakeDaemon.Packet> attack, bool? expectCallSuccess, int keepAliveSeconds = 0)
    {
        (Stream clientEnd, Stream serverEnd) = FakeDaemon.Connect(socket);
        using var client = new RpcClient(clientEnd, "fuzz");
        client.StartKeepAlive(keepAliveSeconds, 1);
        using var daemon = new FakeDaemon(serverEnd);
        var closed = new TaskCompletionSource<ConnectionCloseReason>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Closed += r => closed.TrySetResult(r);

        Task<int> call = Task.Run(() => client.Call(RpcPrograms.Remote, 4, null, r => r.ReadInt32()));
        FakeDaemon.Packet p = daemon.Read()!.Value;
        attack(daemon, p);

        Assert.True(Sync.Done(closed.Task), $"{kind}: the connection was not closed");
        Assert.True(Sync.Done(call), $"{kind}: the call hangs");
        Assert.False(client.IsOpen);
        Assert.NotNull(client.CloseError);
        if (expectCallSuccess == true)
        {
            Assert.Equal(1, Sync.Get(call));
        }
        else if (expectCallSuccess == false || call.IsFaulted)
        {
            var e = Assert.Throws<LibvirtException>(() => Sync.Await(call));
            Assert.True(e.IsConnectionFailure, $"{kind}: {e.Code}/{e.ErrorDomain} {e.Message}");
        }

        var later = Assert.Throws<LibvirtException>(() => client.Call(RpcPrograms.Remote, 4, null));
        Assert.True(later.IsConnectionFailure);
    }
}
