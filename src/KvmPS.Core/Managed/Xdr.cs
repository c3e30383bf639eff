using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Size limits of libvirt's RPC protocol (virnetprotocol / remote_protocol constants).</summary>
internal static class XdrLimits
{
    /// <summary>REMOTE_STRING_MAX: the longest string any remote procedure carries.</summary>
    public const int StringMax = 4 * 1024 * 1024;

    /// <summary>VIR_NET_MESSAGE_MAX: the largest payload of one packet.</summary>
    public const int MessageMax = 32 * 1024 * 1024;

    /// <summary>REMOTE_DOMAIN_LIST_MAX.</summary>
    public const int DomainListMax = 16384;

    /// <summary>
    /// REMOTE_CONNECT_GET_ALL_DOMAIN_STATS_MAX: typed parameters per stats record. It was 4096 in early daemons and
    /// was raised later (libvirt 9.0 serves one VM with 4,500 block fields); this bound follows the newer protocol,
    /// and a daemon that still refuses more makes the listing fall back for that VM only (VmService).
    /// </summary>
    public const int DomainStatsParamsMax = 262144;

    /// <summary>REMOTE_DOMAIN_SNAPSHOT_LIST_MAX.</summary>
    public const int SnapshotListMax = 16384;

    /// <summary>An upper bound for any typed-parameter list (the largest per-procedure maximum).</summary>
    public const int TypedParamsMax = 4096;

    /// <summary>VIR_UUID_BUFLEN.</summary>
    public const int UuidLength = 16;
}

/// <summary>
/// Encodes XDR (RFC 4506) the way libvirt's RPC protocol uses it: big-endian 4-byte units, strings and
/// opaques padded to 4, optional values as a 0/1 discriminant. Grows a pooled buffer; <see cref="Dispose"/> returns it.
/// </summary>
internal sealed class XdrWriter : IDisposable
{
    private static readonly UTF8Encoding s_utf8 = new(false, true);
    private byte[] _buffer;
    private int _length;

    /// <summary>A writer whose first <paramref name="reserve"/> bytes are left for a header.</summary>
    public XdrWriter(int reserve = 0, int capacity = 256)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(capacity, reserve + 64));
        _length = reserve;
    }

    /// <summary>Bytes written so far (including the reserved header).</summary>
    public int Length => _length;

    /// <summary>The encoded bytes (including the reserved header).</summary>
    public Span<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    internal byte[] Buffer => _buffer;

    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32BigEndian(Grow(4), value);

    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32BigEndian(Grow(4), value);

    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64BigEndian(Grow(8), value);

    public void WriteUInt64(ulong value) => BinaryPrimitives.WriteUInt64BigEndian(Grow(8), value);

    public void WriteDouble(double value) => BinaryPrimitives.WriteDoubleBigEndian(Grow(8), value);

    public void WriteBool(bool value) => WriteInt32(value ? 1 : 0);

    /// <summary>remote_nonnull_string: length, UTF-8 bytes, padding.</summary>
    public void WriteString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        int n = s_utf8.GetByteCount(value);
        if (n > XdrLimits.StringMax)
        {
            throw new LibvirtException(LibvirtErrorCode.Rpc, LibvirtErrorDomain.Rpc,
                $"The string is {n} bytes long; libvirt's protocol allows at most {XdrLimits.StringMax}.");
        }

        WriteUInt32((uint)n);
        Span<byte> dest = Grow(Padded(n));
        int written = s_utf8.GetBytes(value, dest);
        dest[written..].Clear();
    }

    /// <summary>remote_string: a present flag, then the string.</summary>
    public void WriteOptionalString(string? value)
    {
        WriteBool(value is not null);
        if (value is not null)
        {
            WriteString(value);
        }
    }

    /// <summary>opaque[n]: the bytes and their padding, no length.</summary>
    public void WriteOpaqueFixed(ReadOnlySpan<byte> value)
    {
        Span<byte> dest = Grow(Padded(value.Length));
        value.CopyTo(dest);
        dest[value.Length..].Clear();
    }

    /// <summary>Raw bytes with no length and no padding (STREAM packet data).</summary>
    public void WriteRaw(ReadOnlySpan<byte> value) => value.CopyTo(Grow(value.Length));

    /// <summary>opaque&lt;&gt;: length, bytes, padding.</summary>
    public void WriteOpaque(ReadOnlySpan<byte> value)
    {
        WriteUInt32((uint)value.Length);
        WriteOpaqueFixed(value);
    }

    /// <summary>remote_uuid: 16 raw bytes in RFC 4122 (big-endian) order.</summary>
    public void WriteUuid(Guid uuid)
    {
        if (!uuid.TryWriteBytes(Grow(XdrLimits.UuidLength), bigEndian: true, out _))
        {
            throw new InvalidOperationException("A UUID needs 16 bytes.");
        }
    }

    /// <summary>remote_nonnull_domain: name, UUID, id.</summary>
    public void WriteDomain(DomainRef domain)
    {
        WriteString(domain.Name ?? string.Empty);
        WriteUuid(domain.Uuid);
        WriteInt32(domain.Id);
    }

    /// <summary>remote_domain: an optional remote_nonnull_domain.</summary>
    public void WriteOptionalDomain(DomainRef? domain)
    {
        WriteBool(domain.HasValue);
        if (domain is { } d)
        {
            WriteDomain(d);
        }
    }

    /// <summary>remote_typed_param&lt;&gt;: count, then field name + discriminated value for each.</summary>
    public void WriteTypedParameters(IReadOnlyList<TypedParameter> parameters)
    {
        WriteUInt32((uint)parameters.Count);
        foreach (TypedParameter p in parameters)
        {
            WriteString(p.Name);
            WriteInt32((int)p.Type);
            switch (p.Type)
            {
                case TypedParameterType.Int:
                    WriteInt32(Convert.ToInt32(p.Value, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case TypedParameterType.UInt:
                    WriteUInt32(Convert.ToUInt32(p.Value, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case TypedParameterType.LLong:
                    WriteInt64(Convert.ToInt64(p.Value, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case TypedParameterType.ULLong:
                    WriteUInt64(Convert.ToUInt64(p.Value, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case TypedParameterType.Double:
                    WriteDouble(Convert.ToDouble(p.Value, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case TypedParameterType.Boolean:
                    WriteBool(Convert.ToBoolean(p.Value, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case TypedParameterType.String:
                    WriteString(Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty);
                    break;
                default:
                    throw new LibvirtException(LibvirtErrorCode.InvalidArg, LibvirtErrorDomain.Rpc, $"Typed parameter '{p.Name}' has an unknown type {(int)p.Type}.");
            }
        }
    }

    /// <summary>A variable-length array: count, then each item.</summary>
    public void WriteArray<T>(IReadOnlyList<T> items, Action<XdrWriter, T> write)
    {
        WriteUInt32((uint)items.Count);
        foreach (T item in items)
        {
            write(this, item);
        }
    }

    public void Dispose()
    {
        byte[] b = _buffer;
        _buffer = [];
        _length = 0;
        if (b.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    internal static int Padded(int n) => (n + 3) & ~3;

    private Span<byte> Grow(int n)
    {
        int needed = _length + n;
        if (needed > _buffer.Length)
        {
            if (needed > XdrLimits.MessageMax + RpcHeader.FrameHeaderLength)
            {
                throw new LibvirtException(LibvirtErrorCode.Rpc, LibvirtErrorDomain.Rpc,
                    $"The message would be larger than libvirt's {XdrLimits.MessageMax}-byte limit.");
            }

            byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        Span<byte> s = _buffer.AsSpan(_length, n);
        _length = needed;
        return s;
    }
}

/// <summary>
/// Decodes XDR from a received payload. Every length is checked against what is left and against
/// libvirt's maxima before anything is allocated; malformed data throws a <see cref="LibvirtException"/>
/// with code <see cref="LibvirtErrorCode.Rpc"/>. Valid only while the payload it reads is (do not keep it).
/// </summary>
internal sealed class XdrReader
{
    private static readonly UTF8Encoding s_utf8 = new(false, false);
    private readonly byte[] _buffer;
    private readonly int _end;
    private int _pos;

    public XdrReader(byte[] buffer, int offset, int count)
    {
        if ((uint)offset > (uint)buffer.Length || (uint)count > (uint)(buffer.Length - offset))
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _buffer = buffer;
        _pos = offset;
        _end = offset + count;
    }

    public XdrReader(byte[] buffer)
        : this(buffer, 0, buffer.Length)
    {
    }

    /// <summary>Bytes not read yet.</summary>
    public int Remaining => _end - _pos;

    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    public ulong ReadUInt64() => BinaryPrimitives.ReadUInt64BigEndian(Take(8));

    public double ReadDouble() => BinaryPrimitives.ReadDoubleBigEndian(Take(8));

    public bool ReadBool() => ReadInt32() != 0;

    /// <summary>remote_nonnull_string (at most <paramref name="max"/> bytes).</summary>
    public string ReadString(int max = XdrLimits.StringMax)
    {
        int n = ReadLength(max, "string");
        ReadOnlySpan<byte> bytes = Take(XdrWriter.Padded(n));
        return s_utf8.GetString(bytes[..n]);
    }

    /// <summary>remote_string: null when absent.</summary>
    public string? ReadOptionalString(int max = XdrLimits.StringMax) => ReadPresent() ? ReadString(max) : null;

    /// <summary>opaque[n].</summary>
    public byte[] ReadOpaqueFixed(int length)
    {
        if (length < 0 || XdrWriter.Padded(length) > Remaining)
        {
            throw Malformed($"a fixed opaque of {length} bytes does not fit in the {Remaining} bytes left");
        }

        return Take(XdrWriter.Padded(length))[..length].ToArray();
    }

    /// <summary>opaque&lt;max&gt;.</summary>
    public byte[] ReadOpaque(int max)
    {
        int n = ReadLength(max, "opaque");
        return Take(XdrWriter.Padded(n))[..n].ToArray();
    }

    /// <summary>remote_uuid.</summary>
    public Guid ReadUuid() => new(Take(XdrLimits.UuidLength), bigEndian: true);

    /// <summary>remote_nonnull_domain.</summary>
    public DomainRef ReadDomain() => new(ReadString(), ReadUuid(), ReadInt32());

    /// <summary>remote_domain: null when absent.</summary>
    public DomainRef? ReadOptionalDomain() => ReadPresent() ? ReadDomain() : null;

    /// <summary>remote_typed_param&lt;max&gt;.</summary>
    public TypedParameter[] ReadTypedParameters(int max = XdrLimits.TypedParamsMax)
    {
        int n = ReadCount(max, 12, "typed parameter list");
        var result = new TypedParameter[n];
        for (int i = 0; i < n; i++)
        {
            string name = ReadFieldName();
            var type = (TypedParameterType)ReadInt32();
            object value = type switch
            {
                TypedParameterType.Int => ReadInt32(),
                TypedParameterType.UInt => ReadUInt32(),
                TypedParameterType.LLong => ReadInt64(),
                TypedParameterType.ULLong => ReadUInt64(),
                TypedParameterType.Double => ReadDouble(),
                TypedParameterType.Boolean => ReadInt32() != 0,
                TypedParameterType.String => ReadString(),
                _ => throw Malformed($"typed parameter '{name}' has unknown type {(int)type}"),
            };
            result[i] = new TypedParameter(name, type, value);
        }

        return result;
    }

    /// <summary>A variable-length array of at most <paramref name="max"/> items.</summary>
    public IReadOnlyList<T> ReadArray<T>(Func<XdrReader, T> read, int max)
    {
        int n = ReadCount(max, 4, "array");
        var result = new T[n];
        for (int i = 0; i < n; i++)
        {
            result[i] = read(this);
        }

        return result;
    }

    /// <summary>Skips an optional value (discriminant + <paramref name="skip"/>).</summary>
    public void SkipOptional(Action<XdrReader> skip)
    {
        if (ReadPresent())
        {
            skip(this);
        }
    }

    /// <summary>The discriminant of an optional value (XDR pointer): only 0 and 1 are valid.</summary>
    public bool ReadPresent()
    {
        uint flag = ReadUInt32();
        return flag switch
        {
            0 => false,
            1 => true,
            _ => throw Malformed($"an optional value has discriminant {flag}"),
        };
    }

    internal static LibvirtException Malformed(string what)
        => new(LibvirtErrorCode.Rpc, LibvirtErrorDomain.Rpc, $"Malformed data from the libvirt daemon: {what}.");

    private int ReadLength(int max, string what)
    {
        uint n = ReadUInt32();
        if (n > (uint)max)
        {
            throw Malformed($"{what} length {n} exceeds the maximum {max}");
        }

        if (XdrWriter.Padded((int)n) > Remaining)
        {
            throw Malformed($"{what} length {n} exceeds the {Remaining} bytes left");
        }

        return (int)n;
    }

    private int ReadCount(int max, int minItemSize, string what)
    {
        uint n = ReadUInt32();
        if (n > (uint)max)
        {
            throw Malformed($"{what} has {n} items; at most {max} are allowed");
        }

        if ((long)n * minItemSize > Remaining)
        {
            throw Malformed($"{what} claims {n} items but only {Remaining} bytes are left");
        }

        return (int)n;
    }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n > _end - _pos)
        {
            throw Malformed($"the message ended early (needed {n} bytes, {_end - _pos} left)");
        }

        ReadOnlySpan<byte> s = _buffer.AsSpan(_pos, n);
        _pos += n;
        return s;
    }

    private string ReadFieldName()
    {
        int n = ReadLength(XdrLimits.StringMax, "field name");
        ReadOnlySpan<byte> bytes = Take(XdrWriter.Padded(n))[..n];
        return FieldNames.Get(bytes);
    }

    /// <summary>Interned statistics field names: listing thousands of VMs must not allocate a name per field.</summary>
    private static class FieldNames
    {
        private static readonly string[] s_known =
        [
            "state.state", "state.reason", "cpu.time", "cpu.user", "cpu.system", "balloon.current", "balloon.maximum",
            "balloon.rss", "balloon.last-update", "vcpu.current", "vcpu.maximum", "block.count", "net.count",
        ];
        private static readonly byte[][] s_bytes = s_known.Select(Encoding.UTF8.GetBytes).ToArray();

        public static string Get(ReadOnlySpan<byte> name)
        {
            for (int i = 0; i < s_bytes.Length; i++)
            {
                if (name.SequenceEqual(s_bytes[i]))
                {
                    return s_known[i];
                }
            }

            return s_utf8.GetString(name);
        }
    }
}
