using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace KvmPS.Core.Iso;

/// <summary>
/// Writes a small ISO 9660 image with a single flat root directory, in process and without external
/// tools: what a cloud-init NoCloud seed CD needs (label <c>cidata</c>; <c>meta-data</c>,
/// <c>user-data</c>, optional <c>network-config</c>).
/// </summary>
/// <remarks>
/// The primary tree holds ISO 9660 level 1 names (8.3, upper case, <c>;1</c>) carrying Rock Ridge
/// (RRIP 1.10, "RRIP_1991A": SP/ER in the root '.' record, RR, NM, PX, TF); a Joliet supplementary
/// volume descriptor (UCS-2 level 3, escape sequence <c>%/E</c>) holds a second tree with the same
/// names in UCS-2, without version suffix as mkisofs writes them. Linux's isofs driver prefers Rock Ridge, then Joliet; Windows and most archivers read
/// Joliet; every reader therefore sees the exact names. Layout: system area (blocks 0-15, zeros),
/// primary volume descriptor at 16, Joliet descriptor at 17, terminator at 18, L and M path tables
/// for both trees at 19-22, the Rock Ridge continuation area, the two root directories, then the file
/// data, each file starting on a 2048-byte block. The output depends only on the arguments.
/// </remarks>
public static class Iso9660Writer
{
    private const int BlockSize = 2048;
    private const int SystemAreaBlocks = 16;
    private const int MaxLabelLength = 32;
    private const int MaxJolietLabelLength = 16;
    private const int MaxNameLength = 64;
    private const int MaxRecordLength = 255;
    private const int PathTableSize = 10;

    private const uint PvdBlock = 16;
    private const uint SvdBlock = 17;
    private const uint TerminatorBlock = 18;
    private const uint PathTableLBlock = 19;
    private const uint PathTableMBlock = 20;
    private const uint JolietPathTableLBlock = 21;
    private const uint JolietPathTableMBlock = 22;
    private const uint ContinuationBlock = 23;

    private const byte DirectoryFlag = 0x02;
    private const int CeEntryLength = 28;

    // POSIX modes for Rock Ridge PX: S_IFREG | 0444 and S_IFDIR | 0555 (read-only medium).
    private const uint FileMode = 0x8000 | 0x124;
    private const uint DirectoryMode = 0x4000 | 0x16D;

    // RR flags (RRIP 1.09/1.10): PX = 0x01, NM = 0x08, TF = 0x80.
    private const byte RrDirectoryFlags = 0x81;
    private const byte RrFileFlags = 0x89;

    private const string RripId = "RRIP_1991A";
    private const string RripDescriptor =
        "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
    private const string RripSource =
        "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY " +
        "VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

    private const string ApplicationId = "KVMPS";

    private static readonly DateTimeOffset s_defaultTimestamp = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Builds the image in memory.</summary>
    /// <param name="volumeLabel">Up to 32 letters, digits or underscores, e.g. <c>cidata</c>. The primary
    /// descriptor holds it upper-cased; the Joliet descriptor holds it as given (first 16 characters).</param>
    /// <param name="files">The root directory's files: names of 1 to 64 characters, unique ignoring case,
    /// without '/', '\', '*', ':', ';', '?', control characters or unpaired surrogates, and not '.' or '..'.</param>
    /// <param name="timestamp">Recorded on the volume and every file; a fixed date (2000-01-01 UTC) when
    /// null so that the same input always yields the same bytes.</param>
    /// <exception cref="ArgumentException">A label, name, content or timestamp that cannot be written.</exception>
    public static byte[] Build(
        string volumeLabel,
        IReadOnlyList<(string Name, byte[] Content)> files,
        DateTimeOffset? timestamp = null)
    {
        Image image = Image.Create(volumeLabel, files, timestamp);
        if (image.TotalBytes > Array.MaxLength)
        {
            throw new ArgumentException(
                "The image would be too large to build in memory; use Write with a stream.", nameof(files));
        }
        var buffer = new byte[image.TotalBytes];
        using (var stream = new MemoryStream(buffer, writable: true))
        {
            image.WriteTo(stream);
        }
        return buffer;
    }

    /// <summary>Writes the image to <paramref name="output"/>, from its current position.</summary>
    /// <param name="output">A writable stream; it is not closed.</param>
    /// <param name="volumeLabel">As for <see cref="Build"/>.</param>
    /// <param name="files">As for <see cref="Build"/>.</param>
    /// <param name="timestamp">As for <see cref="Build"/>.</param>
    /// <exception cref="ArgumentException">A label, name, content or timestamp that cannot be written,
    /// or a stream that cannot be written to.</exception>
    public static void Write(
        Stream output,
        string volumeLabel,
        IReadOnlyList<(string Name, byte[] Content)> files,
        DateTimeOffset? timestamp = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite)
        {
            throw new ArgumentException("The stream is not writable.", nameof(output));
        }
        Image image = Image.Create(volumeLabel, files, timestamp);
        image.WriteTo(output);
    }

    /// <summary>One file of the root directory, in both trees.</summary>
    private sealed class Entry(string name, byte[] content)
    {
        public string Name { get; } = name;
        public byte[] Content { get; } = content;
        /// <summary>The level 1 identifier, e.g. META_DAT.;1, in ASCII.</summary>
        public byte[] PrimaryId { get; set; } = [];
        /// <summary>The Joliet identifier (the name, without version) in UCS-2 big-endian.</summary>
        public byte[] JolietId { get; set; } = [];
        public uint Extent { get; set; }
        /// <summary>SUSP entries in the directory record itself (a CE entry follows when Continued is set).</summary>
        public byte[] RockInline { get; set; } = [];
        /// <summary>SUSP entries moved to the continuation area because the record would exceed 255 bytes.</summary>
        public Chunk? Continued { get; set; }
    }

    /// <summary>A piece of the Rock Ridge continuation area; never crosses a block.</summary>
    private sealed class Chunk(byte[] data)
    {
        public byte[] Data { get; } = data;
        public int BlockIndex { get; set; }
        public int Offset { get; set; }
    }

    /// <summary>The validated input and its layout.</summary>
    private sealed class Image
    {
        private readonly string _primaryLabel;
        private readonly string _jolietLabel;
        private readonly DateTimeOffset _timestamp;
        private readonly byte[] _recordingDate;
        private readonly List<Entry> _dataOrder;
        private readonly List<Entry> _primaryOrder;
        private readonly List<Entry> _jolietOrder;
        private readonly Chunk _rootContinuation;
        private readonly List<Chunk> _chunks;
        private readonly int _continuationBlocks;
        private readonly uint _rootBlock;
        private readonly int _rootSize;
        private readonly uint _jolietRootBlock;
        private readonly int _jolietRootSize;
        private readonly uint _firstDataBlock;
        private readonly uint _totalBlocks;

        private Image(string label, List<Entry> entries, DateTimeOffset timestamp)
        {
            _primaryLabel = label.ToUpperInvariant();
            _jolietLabel = label.Length > MaxJolietLabelLength ? label[..MaxJolietLabelLength] : label;
            _timestamp = timestamp;
            _recordingDate = RecordingDate(timestamp);
            _dataOrder = entries;

            AssignPrimaryIds(entries);
            foreach (Entry e in entries)
            {
                // No ";1" version, like mkisofs/genisoimage (cloud-localds): Joliet names stay within
                // 64 UCS-2 characters, and readers that look names up literally (isoinfo -J -x) find them.
                e.JolietId = Encoding.BigEndianUnicode.GetBytes(e.Name);
            }
            _primaryOrder = [.. entries];
            _primaryOrder.Sort((a, b) => CompareIdentifiers(
                Encoding.ASCII.GetString(a.PrimaryId), Encoding.ASCII.GetString(b.PrimaryId)));
            _jolietOrder = [.. entries];
            _jolietOrder.Sort((a, b) => CompareIdentifiers(a.Name, b.Name));

            // Rock Ridge: the root's ER entry (237 bytes) never fits beside SP, PX and TF, so it always
            // goes to the continuation area; a file's NM goes there only for very long UTF-8 names.
            _rootContinuation = new Chunk(ErEntry());
            _chunks = [_rootContinuation];
            foreach (Entry e in entries)
            {
                byte[] nm = NmEntry(e.Name);
                byte[] fixedPart = Concat(RrEntry(RrFileFlags), PxEntry(FileMode, 1), TfEntry(_recordingDate));
                if (RecordLength(e.PrimaryId.Length, fixedPart.Length + nm.Length) <= MaxRecordLength)
                {
                    e.RockInline = Concat(fixedPart[..5], nm, fixedPart[5..]);
                }
                else
                {
                    e.RockInline = fixedPart;
                    e.Continued = new Chunk(nm);
                    _chunks.Add(e.Continued);
                }
            }
            int block = 0;
            int offset = 0;
            foreach (Chunk c in _chunks)
            {
                if (offset + c.Data.Length > BlockSize)
                {
                    block++;
                    offset = 0;
                }
                c.BlockIndex = block;
                c.Offset = offset;
                offset += c.Data.Length;
            }
            _continuationBlocks = block + 1;

            // Record sizes do not depend on extents, so lay the directories out once with zeros to size them.
            _rootSize = PackDirectory(PrimaryRecords()).Length;
            _jolietRootSize = PackDirectory(JolietRecords()).Length;
            _rootBlock = ContinuationBlock + (uint)_continuationBlocks;
            _jolietRootBlock = _rootBlock + (uint)(_rootSize / BlockSize);
            _firstDataBlock = _jolietRootBlock + (uint)(_jolietRootSize / BlockSize);

            long next = _firstDataBlock;
            foreach (Entry e in _dataOrder)
            {
                // An empty file points at the next free block and takes none, as mkisofs does.
                e.Extent = (uint)next;
                next += BlocksFor(e.Content.Length);
                if (next > uint.MaxValue)
                {
                    throw new ArgumentException("The files are too large for an ISO 9660 volume.", "files");
                }
            }
            _totalBlocks = (uint)next;
        }

        public long TotalBytes => (long)_totalBlocks * BlockSize;

        public static Image Create(
            string volumeLabel,
            IReadOnlyList<(string Name, byte[] Content)> files,
            DateTimeOffset? timestamp)
        {
            ValidateLabel(volumeLabel);
            ArgumentNullException.ThrowIfNull(files);
            var entries = new List<Entry>(files.Count);
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach ((string name, byte[] content) in files)
            {
                ValidateName(name);
                if (content is null)
                {
                    throw new ArgumentException($"The content of '{name}' is null.", nameof(files));
                }
                if (!seen.Add(name))
                {
                    throw new ArgumentException(
                        $"The file name '{name}' appears more than once (names are compared ignoring case).",
                        nameof(files));
                }
                entries.Add(new Entry(name, content));
            }
            return new Image(volumeLabel, entries, NormalizeTimestamp(timestamp));
        }

        public void WriteTo(Stream output)
        {
            var head = new byte[checked((int)_firstDataBlock * BlockSize)];
            WriteVolumeDescriptor(Block(head, PvdBlock), joliet: false);
            WriteVolumeDescriptor(Block(head, SvdBlock), joliet: true);
            Span<byte> terminator = Block(head, TerminatorBlock);
            terminator[0] = 255;
            Encoding.ASCII.GetBytes("CD001", terminator[1..6]);
            terminator[6] = 1;

            WritePathTable(Block(head, PathTableLBlock), _rootBlock, bigEndian: false);
            WritePathTable(Block(head, PathTableMBlock), _rootBlock, bigEndian: true);
            WritePathTable(Block(head, JolietPathTableLBlock), _jolietRootBlock, bigEndian: false);
            WritePathTable(Block(head, JolietPathTableMBlock), _jolietRootBlock, bigEndian: true);

            foreach (Chunk c in _chunks)
            {
                int at = (int)(ContinuationBlock + (uint)c.BlockIndex) * BlockSize + c.Offset;
                c.Data.CopyTo(head, at);
            }
            PackDirectory(PrimaryRecords()).CopyTo(head, (int)_rootBlock * BlockSize);
            PackDirectory(JolietRecords()).CopyTo(head, (int)_jolietRootBlock * BlockSize);
            output.Write(head);

            var padding = new byte[BlockSize];
            foreach (Entry e in _dataOrder)
            {
                output.Write(e.Content);
                int tail = e.Content.Length % BlockSize;
                if (tail != 0)
                {
                    output.Write(padding, 0, BlockSize - tail);
                }
            }
        }

        private void WriteVolumeDescriptor(Span<byte> d, bool joliet)
        {
            d[0] = joliet ? (byte)2 : (byte)1;
            Encoding.ASCII.GetBytes("CD001", d[1..6]);
            d[6] = 1;
            WriteText(d.Slice(8, 32), string.Empty, joliet);
            WriteText(d.Slice(40, 32), joliet ? _jolietLabel : _primaryLabel, joliet);
            Both32(d[80..], _totalBlocks);
            if (joliet)
            {
                Encoding.ASCII.GetBytes("%/E", d.Slice(88, 3));
            }
            Both16(d[120..], 1);
            Both16(d[124..], 1);
            Both16(d[128..], BlockSize);
            Both32(d[132..], PathTableSize);
            BinaryPrimitives.WriteUInt32LittleEndian(d[140..], joliet ? JolietPathTableLBlock : PathTableLBlock);
            BinaryPrimitives.WriteUInt32BigEndian(d[148..], joliet ? JolietPathTableMBlock : PathTableMBlock);
            uint root = joliet ? _jolietRootBlock : _rootBlock;
            int rootSize = joliet ? _jolietRootSize : _rootSize;
            byte[] rootRecord = Record(root, (uint)rootSize, DirectoryFlag, [0], []);
            rootRecord.CopyTo(d[156..]);
            WriteText(d.Slice(190, 128), string.Empty, joliet);
            WriteText(d.Slice(318, 128), string.Empty, joliet);
            WriteText(d.Slice(446, 128), string.Empty, joliet);
            WriteText(d.Slice(574, 128), ApplicationId, joliet);
            WriteText(d.Slice(702, 37), string.Empty, joliet);
            WriteText(d.Slice(739, 37), string.Empty, joliet);
            WriteText(d.Slice(776, 37), string.Empty, joliet);
            WriteVolumeDate(d.Slice(813, 17), _timestamp);
            WriteVolumeDate(d.Slice(830, 17), _timestamp);
            WriteVolumeDate(d.Slice(847, 17), null);
            WriteVolumeDate(d.Slice(864, 17), null);
            d[881] = 1;
        }

        private IEnumerable<byte[]> PrimaryRecords()
        {
            byte[] dirPx = PxEntry(DirectoryMode, 2);
            byte[] dirTf = TfEntry(_recordingDate);
            byte[] dot = Concat(
                SpEntry(),
                RrEntry(RrDirectoryFlags),
                dirPx,
                dirTf,
                CeEntry(_rootContinuation));
            yield return Record(_rootBlock, (uint)_rootSize, DirectoryFlag, [0], dot);
            yield return Record(_rootBlock, (uint)_rootSize, DirectoryFlag, [1],
                Concat(RrEntry(RrDirectoryFlags), dirPx, dirTf));
            foreach (Entry e in _primaryOrder)
            {
                byte[] su = e.Continued is null ? e.RockInline : Concat(e.RockInline, CeEntry(e.Continued));
                yield return Record(e.Extent, (uint)e.Content.Length, 0, e.PrimaryId, su);
            }
        }

        private IEnumerable<byte[]> JolietRecords()
        {
            yield return Record(_jolietRootBlock, (uint)_jolietRootSize, DirectoryFlag, [0], []);
            yield return Record(_jolietRootBlock, (uint)_jolietRootSize, DirectoryFlag, [1], []);
            foreach (Entry e in _jolietOrder)
            {
                yield return Record(e.Extent, (uint)e.Content.Length, 0, e.JolietId, []);
            }
        }

        /// <summary>A directory record (ECMA-119 9.1), padded to an even length.</summary>
        private byte[] Record(uint extent, uint size, byte flags, byte[] id, byte[] systemUse)
        {
            var r = new byte[RecordLength(id.Length, systemUse.Length)];
            r[0] = (byte)r.Length;
            Both32(r.AsSpan(2), extent);
            Both32(r.AsSpan(10), size);
            _recordingDate.CopyTo(r, 18);
            r[25] = flags;
            Both16(r.AsSpan(28), 1);
            r[32] = (byte)id.Length;
            id.CopyTo(r, 33);
            systemUse.CopyTo(r, 33 + id.Length + (id.Length % 2 == 0 ? 1 : 0));
            return r;
        }

        private byte[] CeEntry(Chunk chunk)
        {
            var e = SuspHeader('C', 'E', CeEntryLength);
            Both32(e.AsSpan(4), ContinuationBlock + (uint)chunk.BlockIndex);
            Both32(e.AsSpan(12), (uint)chunk.Offset);
            Both32(e.AsSpan(20), (uint)chunk.Data.Length);
            return e;
        }
    }

    private static int RecordLength(int idLength, int systemUseLength)
    {
        int length = 33 + idLength + (idLength % 2 == 0 ? 1 : 0) + systemUseLength;
        return length + (length % 2);
    }

    /// <summary>Lays records out in 2048-byte blocks; a record never crosses a block boundary.</summary>
    private static byte[] PackDirectory(IEnumerable<byte[]> records)
    {
        using var ms = new MemoryStream();
        foreach (byte[] r in records)
        {
            int used = (int)(ms.Length % BlockSize);
            if (used + r.Length > BlockSize)
            {
                ms.Write(new byte[BlockSize - used]);
            }
            ms.Write(r);
        }
        int tail = (int)(ms.Length % BlockSize);
        if (tail != 0 || ms.Length == 0)
        {
            ms.Write(new byte[BlockSize - tail]);
        }
        return ms.ToArray();
    }

    private static void WritePathTable(Span<byte> table, uint rootBlock, bool bigEndian)
    {
        table[0] = 1; // length of directory identifier
        table[1] = 0; // extended attribute record length
        if (bigEndian)
        {
            BinaryPrimitives.WriteUInt32BigEndian(table[2..], rootBlock);
            BinaryPrimitives.WriteUInt16BigEndian(table[6..], 1);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(table[2..], rootBlock);
            BinaryPrimitives.WriteUInt16LittleEndian(table[6..], 1);
        }
        table[8] = 0; // the root's identifier, then one padding byte
    }

    /// <summary>Gives every file a unique level 1 identifier: NAME.EXT;1 with d-characters, 8.3.</summary>
    private static void AssignPrimaryIds(List<Entry> entries)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (Entry e in entries)
        {
            int dot = e.Name.LastIndexOf('.');
            string stem = DCharacters(dot > 0 ? e.Name[..dot] : e.Name, 8);
            string ext = DCharacters(dot > 0 ? e.Name[(dot + 1)..] : string.Empty, 3);
            if (stem.Length == 0)
            {
                stem = "_";
            }
            string candidate = stem + "." + ext;
            for (int n = 1; !used.Add(candidate); n++)
            {
                string suffix = n.ToString(CultureInfo.InvariantCulture);
                candidate = stem[..Math.Min(stem.Length, 8 - suffix.Length)] + suffix + "." + ext;
            }
            e.PrimaryId = Encoding.ASCII.GetBytes(candidate + ";1");
        }
    }

    private static string DCharacters(string s, int max)
    {
        var sb = new StringBuilder(Math.Min(s.Length, max));
        foreach (char c in s)
        {
            if (sb.Length == max)
            {
                break;
            }
            sb.Append(char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_');
        }
        return sb.ToString();
    }

    /// <summary>ECMA-119 9.3 order: by name, then extension, the shorter padded with spaces.</summary>
    private static int CompareIdentifiers(string a, string b)
    {
        int semicolon = a.IndexOf(';');
        string x = semicolon >= 0 ? a[..semicolon] : a;
        semicolon = b.IndexOf(';');
        string y = semicolon >= 0 ? b[..semicolon] : b;
        int dx = x.LastIndexOf('.');
        int dy = y.LastIndexOf('.');
        int c = ComparePadded(dx >= 0 ? x[..dx] : x, dy >= 0 ? y[..dy] : y);
        if (c == 0)
        {
            c = ComparePadded(dx >= 0 ? x[(dx + 1)..] : string.Empty, dy >= 0 ? y[(dy + 1)..] : string.Empty);
        }
        return c != 0 ? c : string.CompareOrdinal(a, b);
    }

    private static int ComparePadded(string a, string b)
    {
        int n = Math.Max(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            char ca = i < a.Length ? a[i] : ' ';
            char cb = i < b.Length ? b[i] : ' ';
            if (ca != cb)
            {
                return ca.CompareTo(cb);
            }
        }
        return 0;
    }

    private static void ValidateLabel(string volumeLabel)
    {
        ArgumentNullException.ThrowIfNull(volumeLabel);
        if (volumeLabel.Length is 0 or > MaxLabelLength)
        {
            throw new ArgumentException(
                $"The volume label must have 1 to {MaxLabelLength} characters.", nameof(volumeLabel));
        }
        foreach (char c in volumeLabel)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                throw new ArgumentException(
                    $"The volume label '{volumeLabel}' may contain only letters A-Z, digits and '_'.",
                    nameof(volumeLabel));
            }
        }
    }

    private static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException("A file name is null or empty.", "files");
        }
        if (name.Length > MaxNameLength)
        {
            throw new ArgumentException(
                $"The file name '{name}' is longer than {MaxNameLength} characters.", "files");
        }
        if (name is "." or "..")
        {
            throw new ArgumentException($"'{name}' is not a file name.", "files");
        }
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            // '/' separates paths; the rest are forbidden in Joliet names or not representable in UCS-2.
            if (c < 0x20 || c == 0x7F || c is '/' or '\\' or '*' or ':' or ';' or '?' || char.IsSurrogate(c))
            {
                throw new ArgumentException(
                    $"The file name '{name}' contains a character that cannot be written: U+{(int)c:X4}.",
                    "files");
            }
        }
    }

    private static DateTimeOffset NormalizeTimestamp(DateTimeOffset? timestamp)
    {
        DateTimeOffset t = timestamp ?? s_defaultTimestamp;
        // ECMA-119 offsets are 15-minute steps from -48 (GMT-12) to +52 (GMT+13).
        if (t.Offset.Ticks % TimeSpan.FromMinutes(15).Ticks != 0 ||
            t.Offset < TimeSpan.FromHours(-12) || t.Offset > TimeSpan.FromHours(13))
        {
            t = t.ToUniversalTime();
        }
        if (t.Year is < 1900 or > 2155)
        {
            throw new ArgumentOutOfRangeException(
                nameof(timestamp), t, "The timestamp must fall in the years 1900 to 2155.");
        }
        return t;
    }

    private static byte[] RecordingDate(DateTimeOffset t) =>
    [
        (byte)(t.Year - 1900),
        (byte)t.Month,
        (byte)t.Day,
        (byte)t.Hour,
        (byte)t.Minute,
        (byte)t.Second,
        unchecked((byte)(sbyte)(t.Offset.Ticks / TimeSpan.FromMinutes(15).Ticks)),
    ];

    /// <summary>The 17-byte volume date (ECMA-119 8.4.26.1); "not specified" when null.</summary>
    private static void WriteVolumeDate(Span<byte> d, DateTimeOffset? t)
    {
        string digits = t is { } v
            ? v.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture) +
              (v.Millisecond / 10).ToString("D2", CultureInfo.InvariantCulture)
            : "0000000000000000";
        Encoding.ASCII.GetBytes(digits, d[..16]);
        d[16] = t is { } w ? unchecked((byte)(sbyte)(w.Offset.Ticks / TimeSpan.FromMinutes(15).Ticks)) : (byte)0;
    }

    /// <summary>Fills a text field with space padding: ASCII, or UCS-2 big-endian for Joliet.</summary>
    private static void WriteText(Span<byte> field, string text, bool joliet)
    {
        if (!joliet)
        {
            field.Fill((byte)' ');
            Encoding.ASCII.GetBytes(text, field);
            return;
        }
        field.Clear();
        for (int i = 0; i + 1 < field.Length; i += 2)
        {
            char c = i / 2 < text.Length ? text[i / 2] : ' ';
            BinaryPrimitives.WriteUInt16BigEndian(field[i..], c);
        }
    }

    private static byte[] SuspHeader(char a, char b, int length)
    {
        var e = new byte[length];
        e[0] = (byte)a;
        e[1] = (byte)b;
        e[2] = (byte)length;
        e[3] = 1;
        return e;
    }

    private static byte[] SpEntry()
    {
        byte[] e = SuspHeader('S', 'P', 7);
        e[4] = 0xBE;
        e[5] = 0xEF;
        e[6] = 0; // LEN_SKP
        return e;
    }

    private static byte[] ErEntry()
    {
        byte[] id = Encoding.ASCII.GetBytes(RripId);
        byte[] descriptor = Encoding.ASCII.GetBytes(RripDescriptor);
        byte[] source = Encoding.ASCII.GetBytes(RripSource);
        byte[] e = SuspHeader('E', 'R', 8 + id.Length + descriptor.Length + source.Length);
        e[4] = (byte)id.Length;
        e[5] = (byte)descriptor.Length;
        e[6] = (byte)source.Length;
        e[7] = 1; // extension version
        id.CopyTo(e, 8);
        descriptor.CopyTo(e, 8 + id.Length);
        source.CopyTo(e, 8 + id.Length + descriptor.Length);
        return e;
    }

    private static byte[] RrEntry(byte flags)
    {
        byte[] e = SuspHeader('R', 'R', 5);
        e[4] = flags;
        return e;
    }

    private static byte[] NmEntry(string name)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(name);
        byte[] e = SuspHeader('N', 'M', 5 + utf8.Length);
        e[4] = 0; // flags: not continued, not '.' or '..'
        utf8.CopyTo(e, 5);
        return e;
    }

    /// <summary>PX in the RRIP 1.10 form (36 bytes: mode, links, uid, gid).</summary>
    private static byte[] PxEntry(uint mode, uint links)
    {
        byte[] e = SuspHeader('P', 'X', 36);
        Both32(e.AsSpan(4), mode);
        Both32(e.AsSpan(12), links);
        Both32(e.AsSpan(20), 0);
        Both32(e.AsSpan(28), 0);
        return e;
    }

    /// <summary>TF with modification, access and attribute-change times in the 7-byte form.</summary>
    private static byte[] TfEntry(byte[] recordingDate)
    {
        byte[] e = SuspHeader('T', 'F', 5 + 3 * 7);
        e[4] = 0x0E;
        for (int i = 0; i < 3; i++)
        {
            recordingDate.CopyTo(e, 5 + i * 7);
        }
        return e;
    }

    private static byte[] Concat(params byte[][] parts)
    {
        var result = new byte[parts.Sum(p => p.Length)];
        int at = 0;
        foreach (byte[] p in parts)
        {
            p.CopyTo(result, at);
            at += p.Length;
        }
        return result;
    }

    private static long BlocksFor(long bytes) => (bytes + BlockSize - 1) / BlockSize;

    private static Span<byte> Block(byte[] image, uint block) => image.AsSpan((int)block * BlockSize, BlockSize);

    private static void Both16(Span<byte> at, ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(at, value);
        BinaryPrimitives.WriteUInt16BigEndian(at[2..], value);
    }

    private static void Both32(Span<byte> at, uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(at, value);
        BinaryPrimitives.WriteUInt32BigEndian(at[4..], value);
    }
}
