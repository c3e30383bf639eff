using System.Buffers.Binary;

namespace KvmPS.Core.Managed;

/// <summary>RPC program numbers (virnetprotocol): which table a procedure number belongs to.</summary>
internal static class RpcPrograms
{
    /// <summary>REMOTE_PROGRAM: the libvirt API.</summary>
    public const uint Remote = 0x20008086;

    /// <summary>QEMU_PROGRAM: libvirt-qemu (monitor and agent commands, monitor events).</summary>
    public const uint Qemu = 0x20008087;

    /// <summary>KEEPALIVE_PROGRAM ("keep"): PING/PONG.</summary>
    public const uint KeepAlive = 0x6b656570;

    /// <summary>Every program above is at protocol version 1.</summary>
    public const uint Version = 1;

    public const int KeepAlivePing = 1;
    public const int KeepAlivePong = 2;
}

/// <summary>virNetMessageType.</summary>
internal enum RpcMessageType
{
    Call = 0,
    Reply = 1,
    Message = 2,
    Stream = 3,
    CallWithFds = 4,
    ReplyWithFds = 5,
    StreamHole = 6,
}

/// <summary>virNetMessageStatus.</summary>
internal enum RpcStatus
{
    Ok = 0,
    Error = 1,
    Continue = 2,
}

/// <summary>The 24-byte packet header that follows the 4-byte length word.</summary>
internal readonly record struct RpcHeader(uint Program, uint Version, int Procedure, RpcMessageType Type, uint Serial, RpcStatus Status)
{
    /// <summary>Length word + header.</summary>
    public const int FrameHeaderLength = 28;

    /// <summary>The largest frame accepted: the length word and header plus VIR_NET_MESSAGE_MAX of payload.</summary>
    public const int MaxFrameLength = XdrLimits.MessageMax + FrameHeaderLength;

    public void Write(Span<byte> frame, int frameLength)
    {
        BinaryPrimitives.WriteInt32BigEndian(frame, frameLength);
        BinaryPrimitives.WriteUInt32BigEndian(frame[4..], Program);
        BinaryPrimitives.WriteUInt32BigEndian(frame[8..], Version);
        BinaryPrimitives.WriteInt32BigEndian(frame[12..], Procedure);
        BinaryPrimitives.WriteInt32BigEndian(frame[16..], (int)Type);
        BinaryPrimitives.WriteUInt32BigEndian(frame[20..], Serial);
        BinaryPrimitives.WriteInt32BigEndian(frame[24..], (int)Status);
    }

    /// <summary>Reads the 24 bytes after the length word.</summary>
    public static RpcHeader Read(ReadOnlySpan<byte> h) => new(
        BinaryPrimitives.ReadUInt32BigEndian(h),
        BinaryPrimitives.ReadUInt32BigEndian(h[4..]),
        BinaryPrimitives.ReadInt32BigEndian(h[8..]),
        (RpcMessageType)BinaryPrimitives.ReadInt32BigEndian(h[12..]),
        BinaryPrimitives.ReadUInt32BigEndian(h[16..]),
        (RpcStatus)BinaryPrimitives.ReadInt32BigEndian(h[20..]));

    public override string ToString() => $"prog=0x{Program:x} vers={Version} proc={Procedure} type={Type} serial={Serial} status={Status}";
}

/// <summary>Errors the managed client raises itself, shaped like the native client's.</summary>
internal static class RpcErrors
{
    /// <summary>remote_error → LibvirtException, exactly as the daemon reported it.</summary>
    public static LibvirtException Decode(XdrReader r)
    {
        int code = r.ReadInt32();
        int domain = r.ReadInt32();
        string? message = r.ReadOptionalString();
        int level = r.ReadInt32();
        // dom, str1..3, int1, int2, net: not surfaced (native KvmPS does not read them either)
        r.SkipOptional(x => x.ReadDomain());
        _ = r.ReadOptionalString();
        _ = r.ReadOptionalString();
        _ = r.ReadOptionalString();
        _ = r.ReadInt32();
        _ = r.ReadInt32();
        r.SkipOptional(x =>
        {
            _ = x.ReadString();
            _ = x.ReadUuid();
        });
        return new LibvirtException((LibvirtErrorCode)code, (LibvirtErrorDomain)domain, message ?? "An error occurred, but the cause is unknown") { Level = level };
    }

    /// <summary>A remote_error payload, or a generic one when it cannot be decoded.</summary>
    public static LibvirtException DecodeOrDescribe(byte[] payload, int length, string context)
    {
        try
        {
            return Decode(new XdrReader(payload, 0, length));
        }
        catch (LibvirtException e)
        {
            return new LibvirtException(LibvirtErrorCode.Rpc, LibvirtErrorDomain.Rpc, $"{context}: the daemon sent an error that could not be decoded ({e.Message})");
        }
    }

    /// <summary>What a call on a connection that is already closed reports (native: "client socket is closed").</summary>
    public static LibvirtException SocketClosed(Exception? cause)
        => new(LibvirtErrorCode.InternalError, LibvirtErrorDomain.Rpc,
            cause is null ? "client socket is closed" : $"client socket is closed: {cause.Message}", cause);

    /// <summary>The peer closed the stream (native: "End of file while reading data: Input/output error").</summary>
    public static LibvirtException EndOfFile()
        => new(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc, "End of file while reading data: Input/output error");

    /// <summary>The peer stopped answering keepalive pings.</summary>
    public static LibvirtException KeepAliveTimeout(int interval, uint count)
        => new(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc,
            $"connection closed due to keepalive timeout (no answer to {count} pings sent every {interval} s)");

    /// <summary>The peer broke the protocol: the connection is unusable.</summary>
    public static LibvirtException Protocol(string what)
        => new(LibvirtErrorCode.Rpc, LibvirtErrorDomain.Rpc, $"RPC protocol error: {what}");

    /// <summary>An I/O failure on the transport.</summary>
    public static LibvirtException Io(Exception e)
        => new(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc, $"Cannot talk to the libvirt daemon: {e.Message}", e);
}
