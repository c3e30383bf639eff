using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>
/// libvirt's RPC protocol over one duplex stream. Replies are routed to their callers by serial, so any
/// number of calls can be in flight at once (callers pipeline instead of queueing). On a socket a waiting
/// caller reads frames itself while nobody else does (one thread hop less per call, like libvirt's own
/// client); a background reader thread covers idle times and non-socket streams. Events go to <see cref="MessageReceived"/>, stream packets to their <see cref="RpcStream"/>, keepalive
/// pings are answered and, once <see cref="StartKeepAlive"/> ran, the client pings a silent peer and
/// declares it dead after the configured count. Any protocol violation or I/O failure closes the
/// connection: every pending and later call then fails with a connection-failure <see cref="LibvirtException"/>.
/// </summary>
internal sealed class RpcClient : IDisposable
{
    /// <summary>STREAM data per packet: VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX, what libvirt's own client sends.</summary>
    public const int StreamChunkSize = 256 * 1024 - 24;

    private static int s_liveReaders;

    private readonly Stream _stream;
    private readonly object _writeLock = new();
    private readonly object _stateLock = new();
    private readonly Dictionary<uint, PendingCall> _pending = [];
    private readonly HashSet<uint> _abandoned = [];
    private readonly Dictionary<uint, RpcStream> _streams = [];
    private readonly Thread _reader;
    private readonly FrameReader _in;

    /// <summary>Held by whoever reads frames: the background reader, or a caller reading its own reply.</summary>
    private readonly object _readLock = new();

    /// <summary>The socket under the stream, when there is one: callers may then read their own replies.</summary>
    private readonly Socket? _socket;
    private readonly ManualResetEventSlim _noLeader = new(true);
    private int _leaders;
    private Timer? _keepAliveTimer;
    private int _keepAliveIntervalMs;
    private uint _keepAliveCount;
    private int _unansweredPings;
    private int _pingsAnswered;
    private long _lastReceive = Environment.TickCount64;
    private int _serial = -1;
    private volatile bool _closed;
    private volatile bool _readerBlocked;
    private LibvirtException? _closeError;
    private bool _disposed;

    /// <summary>Wraps <paramref name="stream"/> (owned from now on) and starts the reader thread.</summary>
    public RpcClient(Stream stream, string? description = null)
    {
        _stream = stream;
        _socket = (stream as NetworkStream)?.Socket;
        _in = new FrameReader(stream);
        Description = description ?? "libvirt";
        _reader = new Thread(ReadLoop)
        {
            IsBackground = true,
            Name = $"KvmPS RPC reader ({Description})",
        };
        _reader.Start();
    }

    /// <summary>Reader threads alive in this process (tests check that none leak).</summary>
    internal static int LiveReaderThreads => Volatile.Read(ref s_liveReaders);

    /// <summary>What this client talks to, for thread names and messages.</summary>
    public string Description { get; }

    /// <summary>False once the connection closed (EOF, error, keepalive timeout, Dispose).</summary>
    public bool IsOpen => !_closed;

    /// <summary>Why the connection closed, once it did.</summary>
    public LibvirtException? CloseError => _closeError;

    /// <summary>Keepalive PINGs the peer sent and this client answered.</summary>
    internal int PingsAnswered => Volatile.Read(ref _pingsAnswered);

    /// <summary>True after <see cref="StartKeepAlive"/> armed the client's own pings.</summary>
    public bool KeepAliveActive => _keepAliveTimer is not null;

    /// <summary>
    /// REMOTE program MESSAGE packets (events): the procedure and its payload. Runs on whichever thread
    /// is reading frames (the reader thread or a waiting caller): decode and hand off, never block or call
    /// back into the connection from here. The reader is only valid during the call.
    /// </summary>
    public event Action<int, XdrReader>? MessageReceived;

    /// <summary>QEMU program MESSAGE packets (monitor events), same rules as <see cref="MessageReceived"/>.</summary>
    public event Action<int, XdrReader>? QemuMessageReceived;

    /// <summary>Raised once when the connection closes for any reason but <see cref="Dispose"/>.</summary>
    public event Action<ConnectionCloseReason>? Closed;

    /// <summary>Calls a procedure and decodes its reply on the calling thread.</summary>
    public T Call<T>(uint program, int procedure, Action<XdrWriter>? args, Func<XdrReader, T> ret, CancellationToken ct = default)
    {
        RpcFrame reply = Roundtrip(program, procedure, args, null, ct);
        try
        {
            var r = new XdrReader(reply.Buffer, 0, reply.Length);
            return ret(r);
        }
        finally
        {
            reply.Return();
        }
    }

    /// <summary>Calls a procedure whose reply has no payload.</summary>
    public void Call(uint program, int procedure, Action<XdrWriter>? args, CancellationToken ct = default)
        => Roundtrip(program, procedure, args, null, ct).Return();

    /// <summary>Starts a call without waiting: several can be in flight; <see cref="RpcPendingCall{T}.Wait"/> collects each.</summary>
    public RpcPendingCall<T> Begin<T>(uint program, int procedure, Action<XdrWriter>? args, Func<XdrReader, T> ret)
    {
        (uint serial, PendingCall pending) = Send(program, procedure, args, null);
        return new RpcPendingCall<T>(this, serial, pending, ret);
    }

    /// <summary>
    /// Calls a stream procedure (volume upload/download, screenshot ...). Returns after the REPLY/OK;
    /// data then moves with <see cref="RpcStream.Write"/> / <see cref="RpcStream.Read(Span{byte})"/>, and
    /// <see cref="RpcStream.Finish"/> or <see cref="RpcStream.Abort"/> ends it.
    /// </summary>
    public RpcStream CallStream(uint program, int procedure, Action<XdrWriter>? args, CancellationToken ct = default)
    {
        var stream = new RpcStream(this, program, procedure);
        Roundtrip(program, procedure, args, stream, ct).Return();
        return stream;
    }

    /// <summary>Arms client-side keepalive: a PING after every <paramref name="intervalSeconds"/> of silence, dead after <paramref name="count"/> unanswered.</summary>
    public void StartKeepAlive(int intervalSeconds, uint count)
    {
        if (intervalSeconds <= 0)
        {
            return;
        }

        lock (_stateLock)
        {
            if (_closed || _keepAliveTimer is not null)
            {
                return;
            }

            _keepAliveIntervalMs = intervalSeconds * 1000;
            _keepAliveCount = count;
            Volatile.Write(ref _lastReceive, Environment.TickCount64);
            _keepAliveTimer = new Timer(OnKeepAliveTick, null, _keepAliveIntervalMs, _keepAliveIntervalMs);
        }
    }

    /// <summary>Closes the connection (no Closed event) and stops the reader thread.</summary>
    public void Dispose()
    {
        lock (_stateLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        Close(ConnectionCloseReason.Client, null);
        if (Thread.CurrentThread != _reader && !Monitor.IsEntered(_readLock))
        {
            // (not from a Closed handler running on a thread that reads: the reader may be waiting for that lock)
            _ = _reader.Join(TimeSpan.FromSeconds(10));
        }
    }

    // ---------------- calls ----------------

    private RpcFrame Roundtrip(uint program, int procedure, Action<XdrWriter>? args, RpcStream? stream, CancellationToken ct)
    {
        (uint serial, PendingCall pending) = Send(program, procedure, args, stream);
        RpcFrame reply = Wait(serial, pending, stream, ct);
        if (reply.Status == RpcStatus.Ok)
        {
            return reply;
        }

        LibvirtException error = RpcErrors.DecodeOrDescribe(reply.Buffer, reply.Length, $"procedure {procedure}");
        reply.Return();
        if (stream is not null)
        {
            RemoveStream(stream.Serial);
        }

        throw error;
    }

    private (uint Serial, PendingCall Pending) Send(uint program, int procedure, Action<XdrWriter>? args, RpcStream? stream)
    {
        using var w = new XdrWriter(RpcHeader.FrameHeaderLength);
        args?.Invoke(w);
        uint serial = (uint)Interlocked.Increment(ref _serial);
        var pending = new PendingCall(program, procedure);
        lock (_stateLock)
        {
            if (_closed)
            {
                throw RpcErrors.SocketClosed(_closeError);
            }

            _pending.Add(serial, pending);
            if (stream is not null)
            {
                stream.Serial = serial;
                _streams.Add(serial, stream);
            }
        }

        try
        {
            WriteFrame(w, new RpcHeader(program, RpcPrograms.Version, procedure, RpcMessageType.Call, serial, RpcStatus.Ok));
        }
        catch
        {
            lock (_stateLock)
            {
                _pending.Remove(serial);
                _streams.Remove(serial);
            }

            throw;
        }

        return (serial, pending);
    }

    internal RpcFrame Wait(uint serial, PendingCall pending, RpcStream? stream, CancellationToken ct)
    {
        LeadUntilDone(pending, ct);
        try
        {
            pending.Task.Wait(ct);
        }
        catch (OperationCanceledException)
        {
            lock (_stateLock)
            {
                if (_pending.Remove(serial))
                {
                    _abandoned.Add(serial);   // its reply may still come: drop it then
                }

                _streams.Remove(serial);
            }

            if (pending.Task.IsCompletedSuccessfully)
            {
                pending.Task.Result.Return();
            }

            throw;
        }
        catch (AggregateException)
        {
            // rethrown unwrapped below
        }

        if (pending.Task.IsFaulted && stream is not null)
        {
            RemoveStream(serial);
        }

        return pending.Task.GetAwaiter().GetResult();
    }

    /// <summary>Sends one STREAM packet for <paramref name="serial"/> (raw data, no XDR).</summary>
    internal void SendStreamPacket(uint program, int procedure, uint serial, RpcStatus status, ReadOnlySpan<byte> data)
    {
        using var w = new XdrWriter(RpcHeader.FrameHeaderLength, RpcHeader.FrameHeaderLength + data.Length);
        w.WriteRaw(data);
        WriteFrame(w, new RpcHeader(program, RpcPrograms.Version, procedure, RpcMessageType.Stream, serial, status));
    }

    internal void RemoveStream(uint serial)
    {
        lock (_stateLock)
        {
            _streams.Remove(serial);
        }
    }

    /// <summary>Called by a stream whose queue is full: the reader waits for the consumer, which is not a dead peer.</summary>
    internal bool ReaderBlocked
    {
        set => _readerBlocked = value;
    }

    internal bool IsClosed => _closed;

    internal LibvirtException ConnectionFailure() => Failure(_closeError);

    private void WriteFrame(XdrWriter w, RpcHeader header)
    {
        header.Write(w.WrittenSpan, w.Length);
        Exception? failed = null;
        lock (_writeLock)
        {
            if (_closed)
            {
                throw RpcErrors.SocketClosed(_closeError);
            }

            try
            {
                _stream.Write(w.Buffer, 0, w.Length);
                _stream.Flush();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failed = e;
            }
        }

        if (failed is not null)
        {
            bool wasOpen = !_closed;
            Close(ConnectionCloseReason.Error, RpcErrors.Io(failed));
            throw wasOpen ? RpcErrors.Io(failed) : Failure(_closeError);
        }
    }

    private void SendControl(uint program, int procedure, RpcMessageType type, RpcStatus status)
    {
        try
        {
            using var w = new XdrWriter(RpcHeader.FrameHeaderLength);
            WriteFrame(w, new RpcHeader(program, RpcPrograms.Version, procedure, type, 0, status));
        }
        catch (LibvirtException)
        {
            // the connection is closing; Close reports it
        }
    }

    // ---------------- reader ----------------

    /// <summary>
    /// The background reader. On a socket it only reads while no caller does (callers read their own replies,
    /// which saves a thread hop per call, as libvirt's client does); on other streams it reads everything.
    /// </summary>
    private void ReadLoop()
    {
        Interlocked.Increment(ref s_liveReaders);
        try
        {
            while (!_closed)
            {
                if (_socket is not null)
                {
                    if (!_noLeader.Wait(250) || (!_in.HasBuffered && !PollReadable(250_000)))
                    {
                        continue;
                    }
                }

                lock (_readLock)
                {
                    if (_closed || (_socket is not null && !_in.HasBuffered && !PollReadable(0)))
                    {
                        continue;   // a caller took the data meanwhile
                    }

                    if (!ReadOne())
                    {
                        break;
                    }
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            ReadFailed(e);
        }
        finally
        {
            Interlocked.Decrement(ref s_liveReaders);
        }
    }

    /// <summary>A caller waiting for <paramref name="pending"/> reads frames itself while nobody else does.</summary>
    private void LeadUntilDone(PendingCall pending, CancellationToken ct)
    {
        if (_socket is null || pending.Task.IsCompleted || !Monitor.TryEnter(_readLock))
        {
            return;
        }

        Interlocked.Increment(ref _leaders);
        _noLeader.Reset();
        try
        {
            while (!pending.Task.IsCompleted && !_closed && !ct.IsCancellationRequested)
            {
                if (!_in.HasBuffered && !PollReadable(200_000))
                {
                    continue;
                }

                if (!ReadOne())
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            ReadFailed(e);
        }
        finally
        {
            if (Interlocked.Decrement(ref _leaders) == 0)
            {
                _noLeader.Set();
            }

            Monitor.Exit(_readLock);
        }
    }

    /// <summary>Reads and dispatches one frame (under the read lock); false when the peer closed the stream.</summary>
    private bool ReadOne()
    {
        if (!_in.TryReadFrame(out RpcHeader header, out byte[] payload, out int length))
        {
            Close(ConnectionCloseReason.Eof, RpcErrors.EndOfFile());
            return false;
        }

        Volatile.Write(ref _lastReceive, Environment.TickCount64);
        Volatile.Write(ref _unansweredPings, 0);
        Dispatch(header, payload, length);
        return true;
    }

    private void ReadFailed(Exception e)
    {
        if (e is LibvirtException le)
        {
            Close(_in.HitEndOfFile ? ConnectionCloseReason.Eof : ConnectionCloseReason.Error, le);
        }
        else
        {
            // I/O failure, the stream disposed under us, or a bug: never crash the process from here
            Close(ConnectionCloseReason.Error, _closed ? null : RpcErrors.Io(e));
        }
    }

    private bool PollReadable(int microseconds)
    {
        try
        {
            return _socket!.Poll(microseconds, SelectMode.SelectRead);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;   // let the read report it
        }
    }

    private void Dispatch(RpcHeader h, byte[] payload, int length)
    {
        if (h.Version != RpcPrograms.Version || h.Program is not (RpcPrograms.Remote or RpcPrograms.Qemu or RpcPrograms.KeepAlive))
        {
            Return(payload);
            throw RpcErrors.Protocol($"unexpected program in packet ({h})");
        }

        switch (h.Type)
        {
            case RpcMessageType.Reply when h.Program != RpcPrograms.KeepAlive:
                DispatchReply(h, payload, length);
                break;

            case RpcMessageType.Message when h.Program == RpcPrograms.KeepAlive:
                Return(payload);
                if (h.Procedure == RpcPrograms.KeepAlivePing)
                {
                    Interlocked.Increment(ref _pingsAnswered);
                    // answered off this thread: a writer blocked on a full socket must not stall the reader
                    ThreadPool.UnsafeQueueUserWorkItem(
                        _ => SendControl(RpcPrograms.KeepAlive, RpcPrograms.KeepAlivePong, RpcMessageType.Message, RpcStatus.Ok), null);
                }

                break;

            case RpcMessageType.Message:
                try
                {
                    Action<int, XdrReader>? handler = h.Program == RpcPrograms.Qemu ? QemuMessageReceived : MessageReceived;
                    handler?.Invoke(h.Procedure, new XdrReader(payload, 0, length));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // an event we cannot decode is dropped; it must not take the connection down
                }
                finally
                {
                    Return(payload);
                }

                break;

            case RpcMessageType.Stream or RpcMessageType.StreamHole when h.Program != RpcPrograms.KeepAlive:
                RpcStream? st;
                lock (_stateLock)
                {
                    _streams.TryGetValue(h.Serial, out st);
                }

                if (st is null)
                {
                    Return(payload);   // a stream we already finished or aborted: late data is dropped, like libvirt does
                }
                else
                {
                    st.Deliver(h.Type, h.Status, payload, length);
                }

                break;

            default:
                Return(payload);
                throw RpcErrors.Protocol($"unexpected packet ({h})");
        }
    }

    private void DispatchReply(RpcHeader h, byte[] payload, int length)
    {
        PendingCall? pending;
        lock (_stateLock)
        {
            if (!_pending.Remove(h.Serial, out pending))
            {
                if (_abandoned.Remove(h.Serial))
                {
                    Return(payload);   // the caller gave up (cancelled) before the reply came
                    return;
                }
            }
        }

        if (pending is null)
        {
            Return(payload);
            throw RpcErrors.Protocol($"no call waiting for reply with serial {h.Serial} ({h})");
        }

        if (pending.Program != h.Program || pending.Procedure != h.Procedure || h.Status is not (RpcStatus.Ok or RpcStatus.Error))
        {
            Return(payload);
            LibvirtException e = RpcErrors.Protocol($"reply to serial {h.Serial} does not match its call (program 0x{pending.Program:x} procedure {pending.Procedure}; got {h})");
            pending.Fail(Failure(e));
            throw e;
        }

        if (!pending.Complete(new RpcFrame(h.Status, payload, length)))
        {
            Return(payload);
        }
    }

    private static void Return(byte[] payload)
    {
        if (payload.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    // ---------------- keepalive ----------------

    private void OnKeepAliveTick(object? state)
    {
        if (_closed)
        {
            return;
        }

        long now = Environment.TickCount64;
        if (_readerBlocked)
        {
            Volatile.Write(ref _lastReceive, now);   // waiting for our own consumer, the peer is sending
            return;
        }

        if (now - Volatile.Read(ref _lastReceive) < _keepAliveIntervalMs - 100)
        {
            return;
        }

        if (Volatile.Read(ref _unansweredPings) >= _keepAliveCount)
        {
            Close(ConnectionCloseReason.KeepAlive, RpcErrors.KeepAliveTimeout(_keepAliveIntervalMs / 1000, _keepAliveCount));
            return;
        }

        Interlocked.Increment(ref _unansweredPings);
        if (Monitor.TryEnter(_writeLock))
        {
            // a writer stuck on a full socket holds the lock: then this ping is skipped but still counted
            try
            {
                SendControl(RpcPrograms.KeepAlive, RpcPrograms.KeepAlivePing, RpcMessageType.Message, RpcStatus.Ok);
            }
            finally
            {
                Monitor.Exit(_writeLock);
            }
        }
    }

    // ---------------- closing ----------------

    private void Close(ConnectionCloseReason reason, LibvirtException? error)
    {
        List<PendingCall> pending;
        List<RpcStream> streams;
        bool raise;
        lock (_stateLock)
        {
            if (_closed)
            {
                return;
            }

            _closeError = error;
            _closed = true;
            raise = !_disposed;
            pending = [.. _pending.Values];
            _pending.Clear();
            _abandoned.Clear();
            streams = [.. _streams.Values];
            _streams.Clear();
        }

        _keepAliveTimer?.Dispose();
        try
        {
            if (_stream is NetworkStream ns)
            {
                ns.Socket.Shutdown(SocketShutdown.Both);   // wakes a reader blocked in recv
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // already shut
        }

        try
        {
            _stream.Dispose();   // unblocks the reader and any writer
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // already broken
        }

        foreach (PendingCall p in pending)
        {
            p.Fail(Failure(error));
        }

        foreach (RpcStream s in streams)
        {
            s.Fail(Failure(error));
        }

        if (raise)
        {
            try
            {
                Closed?.Invoke(reason);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // a handler's failure is not ours to report
            }
        }
    }

    /// <summary>A fresh connection-failure exception per caller (IsConnectionFailure is true for every one).</summary>
    private static LibvirtException Failure(LibvirtException? cause)
        => cause is { IsConnectionFailure: true }
            ? new LibvirtException(cause.Code, cause.ErrorDomain, cause.Message, cause)
            : RpcErrors.SocketClosed(cause);

    /// <summary>A call waiting for its reply.</summary>
    internal sealed class PendingCall(uint program, int procedure)
    {
        private readonly TaskCompletionSource<RpcFrame> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public uint Program { get; } = program;

        public int Procedure { get; } = procedure;

        public Task<RpcFrame> Task => _tcs.Task;

        public bool Complete(RpcFrame frame) => _tcs.TrySetResult(frame);

        public void Fail(Exception e) => _tcs.TrySetException(e);
    }

    /// <summary>Reads length-prefixed frames through a small buffer (one syscall serves many small replies).</summary>
    private sealed class FrameReader(Stream stream)
    {
        private readonly Stream _stream = stream;
        private readonly byte[] _buf = new byte[64 * 1024];
        private int _pos;
        private int _end;

        /// <summary>True when bytes already read from the stream wait to be decoded.</summary>
        public bool HasBuffered => _pos < _end;

        /// <summary>True once the peer closed its side (cleanly or in the middle of a frame).</summary>
        public bool HitEndOfFile { get; private set; }

        /// <summary>False on a clean end of stream between frames; throws on a truncated or invalid frame.</summary>
        public bool TryReadFrame(out RpcHeader header, out byte[] payload, out int length)
        {
            header = default;
            payload = [];
            length = 0;
            if (_pos == _end && !Fill())
            {
                return false;
            }

            Span<byte> word = stackalloc byte[4];
            ReadExactly(word);
            uint len = BinaryPrimitives.ReadUInt32BigEndian(word);
            if (len < RpcHeader.FrameHeaderLength || len > RpcHeader.MaxFrameLength)
            {
                throw RpcErrors.Protocol($"packet length {len} is outside {RpcHeader.FrameHeaderLength}..{RpcHeader.MaxFrameLength}");
            }

            Span<byte> h = stackalloc byte[RpcHeader.FrameHeaderLength - 4];
            ReadExactly(h);
            header = RpcHeader.Read(h);
            length = (int)len - RpcHeader.FrameHeaderLength;
            if (length > 0)
            {
                payload = ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    ReadExactly(payload.AsSpan(0, length));
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(payload);
                    payload = [];
                    throw;
                }
            }

            return true;
        }

        private void ReadExactly(Span<byte> dest)
        {
            while (dest.Length > 0)
            {
                if (_pos == _end)
                {
                    if (dest.Length >= _buf.Length)
                    {
                        int direct = _stream.Read(dest);
                        if (direct <= 0)
                        {
                            HitEndOfFile = true;
                            throw RpcErrors.EndOfFile();
                        }

                        dest = dest[direct..];
                        continue;
                    }

                    if (!Fill())
                    {
                        throw RpcErrors.EndOfFile();
                    }
                }

                int n = Math.Min(dest.Length, _end - _pos);
                _buf.AsSpan(_pos, n).CopyTo(dest);
                _pos += n;
                dest = dest[n..];
            }
        }

        private bool Fill()
        {
            _pos = 0;
            _end = 0;
            int n = _stream.Read(_buf, 0, _buf.Length);
            if (n <= 0)
            {
                HitEndOfFile = true;
                return false;
            }

            _end = n;
            return true;
        }
    }
}

/// <summary>A received reply or stream packet payload (pooled: <see cref="Return"/> it once decoded).</summary>
internal readonly record struct RpcFrame(RpcStatus Status, byte[] Buffer, int Length)
{
    public void Return()
    {
        if (Buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(Buffer);
        }
    }
}

/// <summary>A call started with <see cref="RpcClient.Begin{T}"/>: <see cref="Wait"/> returns its decoded result.</summary>
internal sealed class RpcPendingCall<T>
{
    private readonly RpcClient _client;
    private readonly uint _serial;
    private readonly RpcClient.PendingCall _pending;
    private readonly Func<XdrReader, T> _ret;

    internal RpcPendingCall(RpcClient client, uint serial, RpcClient.PendingCall pending, Func<XdrReader, T> ret)
    {
        _client = client;
        _serial = serial;
        _pending = pending;
        _ret = ret;
    }

    public T Wait(CancellationToken ct = default)
    {
        RpcFrame reply = _client.Wait(_serial, _pending, null, ct);
        try
        {
            if (reply.Status != RpcStatus.Ok)
            {
                throw RpcErrors.DecodeOrDescribe(reply.Buffer, reply.Length, $"procedure {_pending.Procedure}");
            }

            return _ret(new XdrReader(reply.Buffer, 0, reply.Length));
        }
        finally
        {
            reply.Return();
        }
    }
}

/// <summary>
/// One RPC stream (same serial as the call that opened it). Incoming data waits in a bounded queue: when
/// the consumer falls behind, the reader thread waits for it (the socket then pushes back on the daemon).
/// </summary>
internal sealed class RpcStream : IDisposable
{
    private const int MaxQueuedBytes = 8 * 1024 * 1024;
    private static readonly TimeSpan s_abortWait = TimeSpan.FromSeconds(10);

    private readonly RpcClient _client;
    private readonly uint _program;
    private readonly int _procedure;
    private readonly object _lock = new();
    private readonly Queue<Item> _queue = new();
    private int _queuedBytes;
    private LibvirtException? _failure;
    private bool _serverDone;
    private bool _done;
    private bool _eof;
    private byte[] _current = [];
    private int _currentPos;
    private int _currentEnd;

    internal RpcStream(RpcClient client, uint program, int procedure)
    {
        _client = client;
        _program = program;
        _procedure = procedure;
    }

    internal uint Serial { get; set; }

    /// <summary>Sends data to the daemon (STREAM/CONTINUE packets of at most <see cref="RpcClient.StreamChunkSize"/> bytes).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        ThrowIfDone();
        ThrowIfServerEnded();
        while (data.Length > 0)
        {
            int n = Math.Min(data.Length, RpcClient.StreamChunkSize);
            _client.SendStreamPacket(_program, _procedure, Serial, RpcStatus.Continue, data[..n]);
            data = data[n..];
        }
    }

    /// <summary>Reads data from the daemon; 0 at the end of the stream.</summary>
    public int Read(Span<byte> buffer) => Read(buffer, CancellationToken.None);

    /// <summary>Reads data from the daemon; 0 at the end of the stream.</summary>
    public int Read(Span<byte> buffer, CancellationToken ct)
    {
        ThrowIfDone();
        while (_currentPos == _currentEnd)
        {
            ReleaseCurrent();
            if (_eof)
            {
                return 0;
            }

            Item item = Take(ct);
            switch (item.Kind)
            {
                case ItemKind.Data:
                    _current = item.Buffer;
                    _currentPos = 0;
                    _currentEnd = item.Length;
                    break;
                case ItemKind.Eof:
                    _eof = true;
                    return 0;
                case ItemKind.Error:
                    throw item.Error!;
                default:
                    throw RpcErrors.Protocol($"the daemon ended stream {Serial} before its data");
            }
        }

        if (buffer.Length == 0)
        {
            return 0;
        }

        int n = Math.Min(buffer.Length, _currentEnd - _currentPos);
        _current.AsSpan(_currentPos, n).CopyTo(buffer);
        _currentPos += n;
        return n;
    }

    /// <summary>Ends the stream normally (STREAM/OK both ways); throws the daemon's error if it reports one.</summary>
    public void Finish()
    {
        ThrowIfDone();
        try
        {
            ReleaseCurrent();
            if (!_serverDone)
            {
                _client.SendStreamPacket(_program, _procedure, Serial, RpcStatus.Ok, []);
            }

            while (true)
            {
                Item item = Take(CancellationToken.None);
                if (item.Kind == ItemKind.Ok)
                {
                    return;
                }

                if (item.Kind == ItemKind.Error)
                {
                    throw item.Error!;
                }

                item.Release();   // data the caller did not read
            }
        }
        finally
        {
            End();
        }
    }

    /// <summary>Aborts the stream (STREAM/ERROR); waits a little for the daemon's acknowledgement.</summary>
    public void Abort()
    {
        if (_done)
        {
            return;
        }

        try
        {
            ReleaseCurrent();
            if (_serverDone || _failure is not null)
            {
                return;
            }

            _client.SendStreamPacket(_program, _procedure, Serial, RpcStatus.Error, []);
            using var cts = new CancellationTokenSource(s_abortWait);
            while (true)
            {
                Item item = Take(cts.Token);
                if (item.Kind is ItemKind.Ok or ItemKind.Error)
                {
                    return;   // the daemon's "stream aborted at client request" is expected
                }

                item.Release();
            }
        }
        catch (OperationCanceledException)
        {
            // no acknowledgement in time: the stream is dropped on our side anyway
        }
        finally
        {
            End();
        }
    }

    public void Dispose() => Abort();

    /// <summary>Reader thread: one STREAM packet for this stream.</summary>
    internal void Deliver(RpcMessageType type, RpcStatus status, byte[] payload, int length)
    {
        Item item;
        if (type == RpcMessageType.StreamHole)
        {
            ReturnBuffer(payload);
            item = Item.Failed(RpcErrors.Protocol("the daemon sent a sparse-stream hole, which KvmPS did not ask for"));
        }
        else if (status == RpcStatus.Continue)
        {
            item = length == 0 ? new Item(ItemKind.Eof, [], 0, null) : new Item(ItemKind.Data, payload, length, null);
        }
        else if (status == RpcStatus.Ok)
        {
            ReturnBuffer(payload);
            item = new Item(ItemKind.Ok, [], 0, null);
        }
        else
        {
            item = Item.Failed(RpcErrors.DecodeOrDescribe(payload, length, "stream"));
            ReturnBuffer(payload);
        }

        lock (_lock)
        {
            while (item.Kind == ItemKind.Data && _queuedBytes >= MaxQueuedBytes && !_done && _failure is null)
            {
                _client.ReaderBlocked = true;
                Monitor.Wait(_lock, 1000);
            }

            _client.ReaderBlocked = false;
            if (_done || _failure is not null)
            {
                item.Release();
                return;
            }

            if (item.Kind is ItemKind.Ok or ItemKind.Error)
            {
                _serverDone = true;
            }

            _queue.Enqueue(item);
            _queuedBytes += item.Length;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>The connection died.</summary>
    internal void Fail(LibvirtException e)
    {
        lock (_lock)
        {
            _failure ??= e;
            Monitor.PulseAll(_lock);
        }
    }

    private Item Take(CancellationToken ct)
    {
        lock (_lock)
        {
            while (_queue.Count == 0)
            {
                if (_failure is not null)
                {
                    throw new LibvirtException(_failure.Code, _failure.ErrorDomain, _failure.Message, _failure);
                }

                ct.ThrowIfCancellationRequested();
                Monitor.Wait(_lock, 200);
            }

            Item item = _queue.Dequeue();
            _queuedBytes -= item.Length;
            Monitor.PulseAll(_lock);
            return item;
        }
    }

    private void ThrowIfServerEnded()
    {
        lock (_lock)
        {
            if (_failure is not null)
            {
                throw new LibvirtException(_failure.Code, _failure.ErrorDomain, _failure.Message, _failure);
            }

            if (!_serverDone)
            {
                return;
            }

            foreach (Item item in _queue)
            {
                if (item.Kind == ItemKind.Error)
                {
                    throw item.Error!;
                }
            }

            throw new LibvirtException(LibvirtErrorCode.Rpc, LibvirtErrorDomain.Streams, "The daemon closed the stream before all data was sent.");
        }
    }

    private void ThrowIfDone()
    {
        if (_done)
        {
            throw new InvalidOperationException("The stream was already finished or aborted.");
        }
    }

    private void End()
    {
        _client.RemoveStream(Serial);
        lock (_lock)
        {
            _done = true;
            while (_queue.Count > 0)
            {
                _queue.Dequeue().Release();
            }

            _queuedBytes = 0;
            Monitor.PulseAll(_lock);
        }
    }

    private void ReleaseCurrent()
    {
        ReturnBuffer(_current);
        _current = [];
        _currentPos = 0;
        _currentEnd = 0;
    }

    private static void ReturnBuffer(byte[] b)
    {
        if (b.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    private enum ItemKind
    {
        Data,
        Eof,
        Ok,
        Error,
    }

    private readonly record struct Item(ItemKind Kind, byte[] Buffer, int Length, LibvirtException? Error)
    {
        public static Item Failed(LibvirtException e) => new(ItemKind.Error, [], 0, e);

        public void Release() => ReturnBuffer(Buffer);
    }
}
