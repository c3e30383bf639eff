using System.Buffers.Binary;
using System.Text;

namespace KvmPS.Core.Images;

/// <summary>
/// What a qcow2 header says about the files an image pulls in: its backing file (and format), and an external data file.
/// Parsed in-process from the image's first bytes, so it works on an upload's local file and needs no qemu-img.
/// </summary>
public sealed class Qcow2Header
{
    /// <summary>The first bytes that hold the header, its extensions and the backing file name in every image qemu writes.</summary>
    public const int ReadLength = 64 * 1024;

    private const uint Magic = 0x514649FB;                 // "QFI\xfb"
    private const uint ExtensionEnd = 0;
    private const uint ExtensionBackingFormat = 0xE2792ACA;
    private const uint ExtensionDataFile = 0x44415441;     // "DATA"
    private const ulong IncompatibleDataFile = 1UL << 2;

    public int Version { get; private init; }
    public ulong VirtualSize { get; private init; }
    /// <summary>The backing file the header names, as written (null: none).</summary>
    public string? BackingFile { get; private init; }
    /// <summary>The backing file's format from the header extension (null: not declared, qemu would probe it).</summary>
    public string? BackingFormat { get; private init; }
    /// <summary>The external data file the header names (null: none).</summary>
    public string? DataFile { get; private init; }
    /// <summary>The incompatible-feature bit for an external data file (set even when the name is left to the user).</summary>
    public bool HasExternalDataFile { get; private init; }

    /// <summary>True when the first bytes carry the qcow2 magic.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> data) => data.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(data) == Magic;

    /// <summary>Reads the header from the start of <paramref name="path"/>; null when the file is not qcow2.</summary>
    public static Qcow2Header? Read(string path)
    {
        using FileStream fs = new(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return Read(fs);
    }

    /// <summary>Reads the header from the stream's current position (up to <see cref="ReadLength"/> bytes); null when not qcow2.</summary>
    public static Qcow2Header? Read(Stream stream)
    {
        byte[] buffer = new byte[ReadLength];
        int n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return Parse(buffer.AsSpan(0, n));
    }

    /// <summary>
    /// Parses a qcow2 header from the image's first bytes; null when they do not start with the qcow2 magic.
    /// Throws <see cref="InvalidDataException"/> for a header that is qcow2 but cannot be read safely (offsets outside the bytes).
    /// </summary>
    public static Qcow2Header? Parse(ReadOnlySpan<byte> data)
    {
        if (!HasMagic(data))
        {
            return null;
        }

        if (data.Length < 72)
        {
            throw new InvalidDataException("The qcow2 header is truncated.");
        }

        int version = (int)BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        if (version is not (2 or 3))
        {
            throw new InvalidDataException($"qcow2 version {version} is not known.");
        }

        ulong backingOffset = BinaryPrimitives.ReadUInt64BigEndian(data[8..]);
        uint backingSize = BinaryPrimitives.ReadUInt32BigEndian(data[16..]);
        ulong size = BinaryPrimitives.ReadUInt64BigEndian(data[24..]);
        ulong incompatible = 0;
        int headerLength = 72;
        if (version == 3)
        {
            if (data.Length < 104)
            {
                throw new InvalidDataException("The qcow2 v3 header is truncated.");
            }

            incompatible = BinaryPrimitives.ReadUInt64BigEndian(data[72..]);
            headerLength = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(data[100..]), int.MaxValue);
            if (headerLength < 104)
            {
                throw new InvalidDataException($"The qcow2 header length {headerLength} is too short.");
            }
        }

        string? backing = null;
        if (backingOffset != 0 || backingSize != 0)
        {
            if (backingSize > 1023 || backingOffset > (ulong)data.Length || backingOffset + backingSize > (ulong)data.Length)
            {
                throw new InvalidDataException($"The qcow2 header names a backing file at offset {backingOffset} ({backingSize} bytes), outside its first {data.Length} bytes.");
            }

            backing = Encoding.UTF8.GetString(data.Slice((int)backingOffset, (int)backingSize));
        }

        string? backingFormat = null, dataFile = null;
        int pos = headerLength;
        int end = backing is not null ? (int)Math.Min(backingOffset, (ulong)data.Length) : data.Length;
        while (true)
        {
            if (pos + 8 > end)
            {
                // no end marker within the bytes before the backing file name: qemu would stop reading here too
                break;
            }

            uint type = BinaryPrimitives.ReadUInt32BigEndian(data[pos..]);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[(pos + 4)..]);
            if (type == ExtensionEnd)
            {
                break;
            }

            if ((ulong)pos + 8 + length > (ulong)end)
            {
                throw new InvalidDataException($"A qcow2 header extension (0x{type:x8}) runs past the header.");
            }

            ReadOnlySpan<byte> body = data.Slice(pos + 8, (int)length);
            if (type == ExtensionBackingFormat)
            {
                backingFormat = Encoding.ASCII.GetString(body).TrimEnd('\0');
            }
            else if (type == ExtensionDataFile)
            {
                dataFile = Encoding.UTF8.GetString(body).TrimEnd('\0');
            }

            pos += 8 + (int)((length + 7) & ~7u);
        }

        return new Qcow2Header
        {
            Version = version,
            VirtualSize = size,
            BackingFile = backing,
            BackingFormat = backingFormat,
            DataFile = string.IsNullOrEmpty(dataFile) ? null : dataFile,
            HasExternalDataFile = (incompatible & IncompatibleDataFile) != 0 || !string.IsNullOrEmpty(dataFile),
        };
    }
}
