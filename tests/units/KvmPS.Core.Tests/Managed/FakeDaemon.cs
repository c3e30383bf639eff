using System.Buffers.Binary;
using KvmPS.Core.Managed;

namespace KvmPS.Core.Tests.Managed;

/// <summary>
/// A pair of in-memory streams joined back to back: what one end writes the other reads. Disposing an end
/// is an EOF for the other end's reads and makes its own blocked read return.
/// </summary>
internal sealed class DuplexPipe
{
    public DuplexPipe()
    {
        var toServer = new Channel();
        var toClient = new Channel();
        Client = new End(toClient, toServer);
        Server = new End(toServer, toClient);
    }

    public End Client { get; }

    public End Server { get; }

    internal sealed class Channel
    {
        private readonly object _lock = new();
        private readonly Queue<byte> _bytes = new();
        private bool _writerDone;
        private bool _readerDone;

        public void Write(ReadOnlySpan<byte> data)
        {
            lock (_lock)
            {
                if (_readerDone || _writerDone)
                {
                    throw new IOException("The pipe is closed.");
                }

                foreach (byte b in data)
                {
                    _bytes.Enqueue(b);
                }

                Monitor.PulseAll(_lock);
            }
        }

        public int Read(Span<byte> dest)
        {
            lock (_lock)
            {
                while (_bytes.Count == 0 && !_writerDone && !_readerDone)
                {
                    Monitor.Wait(_lock);
                }

                if (_readerDone)
                {
                    throw new ObjectDisposedException("pipe");
                }

                int n = 0;
                while (n < dest.Length && _bytes.Count > 0)
                {
                    dest[n++] = _bytes.Dequeue();
                }

                return n;
            }
        }

        public void CompleteWriting()
        {
            lock (_lock)
            {
                _writerDone = true;
                Monitor.PulseAll(_lock);
            }
        }

        public void CloseReading()
        {
            lock (_lock)
            {
                _readerDone = true;
                Monitor.PulseAll(_lock);
            }
        }
    }

    internal sealed class End(Channel input, Channel output) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer) => input.Read(buffer);

        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer) => output.Write(buffer);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        /// <summary>Closes only the sending side: the peer reads EOF, we may still read.</summary>
        public void CloseOutput() => output.CompleteWriting();

        protected override void Dispose(bool disposing)
        {
            output.CompleteWriting();
            input.CloseReading();
            base.Dispose(disposing);
        }
    }
}

/// <summary>The daemon side of a <see cref="DuplexPipe"/>: reads the client's packets and sends hand-made ones.</summary>
internal sealed class FakeDaemon : IDisposable
{
    private readonly Stream _end;

    public FakeDaemon(Stream end) => _end = end;

    /// <summary>A client stream and the daemon stream joined to it: an in-memory pipe, or a real unix socket pair.</summary>
    public static (Stream Client, Stream Server) Connect(bool socket)
    {
        if (!socket)
        {
            var pipe = new DuplexPipe();
            return (pipe.Client, pipe.Server);
        }

        string path = Path.Combine(Path.GetTempPath(), $"kvmps-fake-{Guid.NewGuid():N}.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        client.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        System.Net.Sockets.Socket server = listener.Accept();
        File.Delete(path);
        return (new System.Net.Sockets.NetworkStream(client, ownsSocket: true), new System.Net.Sockets.NetworkStream(server, ownsSocket: true));
    }

    public readonly record struct Packet(uint Program, uint Version, int Procedure, int Type, uint Serial, int Status, byte[] Payload);

    /// <summary>The next packet from the client (null at EOF).</summary>
    public Packet? Read()
    {
        byte[] word = new byte[4];
        if (!ReadExactly(word))
        {
            return null;
        }

        int len = BinaryPrimitives.ReadInt32BigEndian(word);
        byte[] rest = new byte[len - 4];
        if (!ReadExactly(rest))
        {
            return null;
        }

        return new Packet(
            BinaryPrimitives.ReadUInt32BigEndian(rest),
            BinaryPrimitives.ReadUInt32BigEndian(rest.AsSpan(4)),
            BinaryPrimitives.ReadInt32BigEndian(rest.AsSpan(8)),
            BinaryPrimitives.ReadInt32BigEndian(rest.AsSpan(12)),
            BinaryPrimitives.ReadUInt32BigEndian(rest.AsSpan(16)),
            BinaryPrimitives.ReadInt32BigEndian(rest.AsSpan(20)),
            rest[24..]);
    }

    /// <summary>Reads packets until one matches (keepalive pings etc. are skipped).</summary>
    public Packet ReadUntil(Func<Packet, bool> match)
    {
        while (true)
        {
            Packet p = Read() ?? throw new IOException("client closed");
            if (match(p))
            {
                return p;
            }
        }
    }

    public static byte[] Frame(uint program, int procedure, int type, uint serial, int status, ReadOnlySpan<byte> payload, int? lengthOverride = null)
    {
        byte[] f = new byte[28 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(f, lengthOverride ?? f.Length);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(4), program);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(8), 1);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(12), procedure);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(16), type);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(20), serial);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(24), status);
        payload.CopyTo(f.AsSpan(28));
        return f;
    }

    public static byte[] Xdr(Action<XdrWriter> write)
    {
        using var w = new XdrWriter();
        write(w);
        return w.WrittenSpan.ToArray();
    }

    public void Send(byte[] bytes) => _end.Write(bytes);

    public void Reply(Packet call, Action<XdrWriter>? ret = null)
        => Send(Frame(call.Program, call.Procedure, 1, call.Serial, 0, ret is null ? [] : Xdr(ret)));

    public void ReplyError(Packet call, int code, int domain, string message)
        => Send(Frame(call.Program, call.Procedure, 1, call.Serial, 1, ErrorPayload(code, domain, message)));

    public static byte[] ErrorPayload(int code, int domain, string message) => Xdr(w =>
    {
        w.WriteInt32(code);
        w.WriteInt32(domain);
        w.WriteOptionalString(message);
        w.WriteInt32(2);
        w.WriteOptionalDomain(null);
        w.WriteOptionalString(null);
        w.WriteOptionalString(null);
        w.WriteOptionalString(null);
        w.WriteInt32(0);
        w.WriteInt32(0);
        w.WriteBool(false);
    });

    /// <summary>The daemon hangs up.</summary>
    public void Hangup()
    {
        if (_end is System.Net.Sockets.NetworkStream ns)
        {
            try
            {
                ns.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Both);
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                // already hung up
            }
        }

        _end.Dispose();
    }

    public void Dispose() => Hangup();

    private bool ReadExactly(byte[] buf)
    {
        int off = 0;
        while (off < buf.Length)
        {
            int n;
            try
            {
                n = _end.Read(buf, off, buf.Length - off);
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException)
            {
                return false;
            }

            if (n == 0)
            {
                return false;
            }

            off += n;
        }

        return true;
    }
}

/// <summary>Bounded waits outside test methods (the analyzers rightly dislike blocking in tests; these never block unbounded).</summary>
internal static class Sync
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    /// <summary>True when the task finished (in any state) within the deadline.</summary>
    public static bool Done(Task t) => ((IAsyncResult)t).AsyncWaitHandle.WaitOne(s_timeout);

    /// <summary>The task's result, or its own exception; TimeoutException when it hangs.</summary>
    public static T Get<T>(Task<T> t) => Done(t) ? t.GetAwaiter().GetResult() : throw new TimeoutException("the task hangs");

    /// <summary>Rethrows the task's own exception; TimeoutException when it hangs.</summary>
    public static void Await(Task t)
    {
        if (!Done(t))
        {
            throw new TimeoutException("the task hangs");
        }

        t.GetAwaiter().GetResult();
    }
}
