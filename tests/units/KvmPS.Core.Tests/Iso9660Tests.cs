using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using KvmPS.Core.Iso;

namespace KvmPS.Core.Tests;

public sealed class Iso9660Tests
{
    private const int Block = 2048;

    private static readonly byte[] s_metaData = Encoding.UTF8.GetBytes("instance-id: iid-local01\nlocal-hostname: seed\n");
    private static readonly byte[] s_userData = Encoding.UTF8.GetBytes("#cloud-config\nruncmd:\n  - [echo, hello]\n");
    private static readonly byte[] s_networkConfig = Encoding.UTF8.GetBytes("version: 2\nethernets: {}\n");

    private static (string Name, byte[] Content)[] SeedFiles() =>
    [
        ("user-data", s_userData),
        ("meta-data", s_metaData),
        ("network-config", s_networkConfig),
    ];

    [Fact]
    public void Seed_VolumeDescriptors_AreWellFormed()
    {
        byte[] iso = Iso9660Writer.Build("cidata", SeedFiles());

        Assert.Equal(0, iso.Length % Block);
        Assert.All(iso[..(16 * Block)], b => Assert.Equal(0, b));

        int pvd = 16 * Block;
        Assert.Equal(1, iso[pvd]);
        Assert.Equal("CD001", IsoReader.Ascii(iso, pvd + 1, 5));
        Assert.Equal(1, iso[pvd + 6]);
        Assert.Equal("CIDATA" + new string(' ', 26), IsoReader.Ascii(iso, pvd + 40, 32));
        Assert.Equal((uint)(iso.Length / Block), IsoReader.Both32(iso, pvd + 80));
        Assert.Equal(1, IsoReader.Both16(iso, pvd + 120));
        Assert.Equal(1, IsoReader.Both16(iso, pvd + 124));
        Assert.Equal(Block, IsoReader.Both16(iso, pvd + 128));
        Assert.Equal(1, iso[pvd + 881]);
        IsoRecord root = IsoReader.Record(iso, pvd + 156);
        Assert.Equal(34, root.Length);
        Assert.Equal(2, root.Flags & 2);
        Assert.Equal([0], root.Identifier);

        int svd = 17 * Block;
        Assert.Equal(2, iso[svd]);
        Assert.Equal("CD001", IsoReader.Ascii(iso, svd + 1, 5));
        Assert.Equal(1, iso[svd + 6]);
        Assert.Equal("%/E", IsoReader.Ascii(iso, svd + 88, 3));
        Assert.Equal("cidata" + new string(' ', 10), IsoReader.Ucs2(iso, svd + 40, 32));
        Assert.Equal((uint)(iso.Length / Block), IsoReader.Both32(iso, svd + 80));
        Assert.Equal(Block, IsoReader.Both16(iso, svd + 128));
        IsoRecord jolietRoot = IsoReader.Record(iso, svd + 156);
        Assert.NotEqual(root.Extent, jolietRoot.Extent);

        int terminator = 18 * Block;
        Assert.Equal(255, iso[terminator]);
        Assert.Equal("CD001", IsoReader.Ascii(iso, terminator + 1, 5));
        Assert.Equal(1, iso[terminator + 6]);
    }

    [Fact]
    public void Seed_PrimaryTree_HasLevel1NamesAndRockRidge()
    {
        byte[] iso = Iso9660Writer.Build("cidata", SeedFiles());
        List<IsoRecord> entries = IsoReader.Directory(iso, IsoReader.PrimaryRoot(iso));

        IsoRecord dot = entries[0];
        IsoRecord dotDot = entries[1];
        Assert.Equal([0], dot.Identifier);
        Assert.Equal([1], dotDot.Identifier);
        Assert.Equal(IsoReader.PrimaryRoot(iso).Extent, dot.Extent);
        Assert.Equal(dot.Extent, dotDot.Extent);

        // SUSP: SP first in the root '.', then ER (through CE) announcing Rock Ridge.
        Assert.Equal("SP", Encoding.ASCII.GetString(dot.SystemUse, 0, 2));
        Assert.Equal([0xBE, 0xEF], dot.SystemUse[4..6]);
        List<SuspEntry> rootSusp = IsoReader.Susp(iso, dot.SystemUse);
        SuspEntry er = Assert.Single(rootSusp, e => e.Signature == "ER");
        Assert.Equal("RRIP_1991A", Encoding.ASCII.GetString(er.Data, 4, er.Data[0]));
        Assert.Equal(0x416Du, IsoReader.PosixMode(rootSusp)); // S_IFDIR | 0555

        IsoRecord[] files = entries.Skip(2).ToArray();
        Assert.Equal(
            ["META_DAT.;1", "NETWORK_.;1", "USER_DAT.;1"],
            files.Select(f => Encoding.ASCII.GetString(f.Identifier)));
        Assert.Equal(
            ["meta-data", "network-config", "user-data"],
            files.Select(f => IsoReader.RockName(iso, f)));
        foreach (IsoRecord f in files)
        {
            Assert.Equal(0, f.Flags);
            Assert.Equal(0x8124u, IsoReader.PosixMode(IsoReader.Susp(iso, f.SystemUse))); // S_IFREG | 0444
            Assert.Contains(IsoReader.Susp(iso, f.SystemUse), e => e.Signature == "TF");
        }
    }

    [Fact]
    public void Seed_JolietTree_HasExactNames()
    {
        byte[] iso = Iso9660Writer.Build("cidata", SeedFiles());
        List<IsoRecord> entries = IsoReader.Directory(iso, IsoReader.JolietRoot(iso));

        Assert.Equal([0], entries[0].Identifier);
        Assert.Equal([1], entries[1].Identifier);
        Assert.Equal(
            ["meta-data", "network-config", "user-data"],
            entries.Skip(2).Select(e => Encoding.BigEndianUnicode.GetString(e.Identifier)));
    }

    [Fact]
    public void Seed_FileContents_AreByteIdenticalInBothTrees()
    {
        (string Name, byte[] Content)[] input = SeedFiles();
        byte[] iso = Iso9660Writer.Build("cidata", input);

        Dictionary<string, byte[]> rock = IsoReader.Directory(iso, IsoReader.PrimaryRoot(iso)).Skip(2)
            .ToDictionary(r => IsoReader.RockName(iso, r)!, r => IsoReader.Content(iso, r));
        Dictionary<string, byte[]> joliet = IsoReader.Directory(iso, IsoReader.JolietRoot(iso)).Skip(2)
            .ToDictionary(r => Encoding.BigEndianUnicode.GetString(r.Identifier), r => IsoReader.Content(iso, r));
        foreach ((string name, byte[] content) in input)
        {
            Assert.Equal(content, rock[name]);
            Assert.Equal(content, joliet[name]);
        }
    }

    [Fact]
    public void PathTables_AreConsistentWithTheRoots()
    {
        byte[] iso = Iso9660Writer.Build("cidata", SeedFiles());
        foreach (int vd in new[] { 16 * Block, 17 * Block })
        {
            uint size = IsoReader.Both32(iso, vd + 132);
            uint l = BinaryPrimitives.ReadUInt32LittleEndian(iso.AsSpan(vd + 140));
            uint m = BinaryPrimitives.ReadUInt32BigEndian(iso.AsSpan(vd + 148));
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(iso.AsSpan(vd + 144)));
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(iso.AsSpan(vd + 152)));
            IsoRecord root = IsoReader.Record(iso, vd + 156);
            Assert.Equal(10u, size);
            Assert.NotEqual(l, m);

            PathTableEntry little = Assert.Single(IsoReader.PathTable(iso, l, size, bigEndian: false));
            PathTableEntry big = Assert.Single(IsoReader.PathTable(iso, m, size, bigEndian: true));
            Assert.Equal(little, big);
            Assert.Equal(root.Extent, little.Extent);
            Assert.Equal(1, little.Parent);
            Assert.Equal([0], little.Identifier);
            Assert.All(iso.AsSpan((int)l * Block + (int)size, Block - (int)size).ToArray(), b => Assert.Equal(0, b));
        }
    }

    [Fact]
    public void Build_IsDeterministic_AndWriteMatchesBuild()
    {
        byte[] first = Iso9660Writer.Build("cidata", SeedFiles());
        byte[] second = Iso9660Writer.Build("cidata", SeedFiles());
        using var stream = new MemoryStream();
        stream.Write([1, 2, 3]);
        Iso9660Writer.Write(stream, "cidata", SeedFiles());

        Assert.Equal(first, second);
        Assert.Equal(first, stream.ToArray()[3..]);
        // The default timestamp: 2000-01-01 00:00:00 UTC.
        Assert.Equal("2000010100000000", IsoReader.Ascii(first, 16 * Block + 813, 16));
    }

    [Fact]
    public void Timestamp_IsRecordedInDescriptorsAndRecords()
    {
        var when = new DateTimeOffset(2024, 5, 6, 7, 8, 9, 120, TimeSpan.FromHours(2));
        byte[] iso = Iso9660Writer.Build("cidata", SeedFiles(), when);

        foreach (int vd in new[] { 16 * Block, 17 * Block })
        {
            Assert.Equal("2024050607080912", IsoReader.Ascii(iso, vd + 813, 16)); // creation
            Assert.Equal(8, iso[vd + 813 + 16]);                                   // +2 h in 15-minute steps
            Assert.Equal("2024050607080912", IsoReader.Ascii(iso, vd + 830, 16)); // modification
            Assert.Equal("0000000000000000", IsoReader.Ascii(iso, vd + 847, 16)); // expiration: none
            Assert.Equal(0, iso[vd + 847 + 16]);
        }
        byte[] expected = [124, 5, 6, 7, 8, 9, 8];
        foreach (IsoRecord r in IsoReader.Directory(iso, IsoReader.PrimaryRoot(iso))
                     .Concat(IsoReader.Directory(iso, IsoReader.JolietRoot(iso))))
        {
            Assert.Equal(expected, r.Date);
        }

        // An offset ECMA-119 cannot express is written as UTC.
        byte[] odd = Iso9660Writer.Build("cidata", SeedFiles(), new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.FromMinutes(10)));
        Assert.Equal("2024050606580900", IsoReader.Ascii(odd, 16 * Block + 813, 16));
        Assert.Equal(0, odd[16 * Block + 813 + 16]);
    }

    [Fact]
    public void ManyAndLargeFiles_AreBlockAlignedAndIntact()
    {
        var random = new Random(42);
        var big = new byte[3 * 1024 * 1024 + 17];
        random.NextBytes(big);
        var input = new List<(string Name, byte[] Content)> { ("big.bin", big), ("empty", []) };
        for (int i = 0; i < 40; i++)
        {
            input.Add(($"file-number-{i:D2}.yaml", Encoding.UTF8.GetBytes($"n: {i}\n")));
        }
        input.Add(("exact", new byte[Block]));

        byte[] iso = Iso9660Writer.Build("cidata", input);

        Assert.Equal((uint)(iso.Length / Block), IsoReader.Both32(iso, 16 * Block + 80));
        IsoRecord primaryRoot = IsoReader.PrimaryRoot(iso);
        IsoRecord jolietRoot = IsoReader.JolietRoot(iso);
        Assert.True(primaryRoot.Size > Block, "the primary root should span several blocks");
        Assert.Equal(0u, primaryRoot.Size % Block);
        Assert.Equal(0u, jolietRoot.Size % Block);

        List<IsoRecord> rock = IsoReader.Directory(iso, primaryRoot).Skip(2).ToList();
        List<IsoRecord> joliet = IsoReader.Directory(iso, jolietRoot).Skip(2).ToList();
        Assert.Equal(input.Count, rock.Count);
        Assert.Equal(input.Count, joliet.Count);
        Assert.Equal(rock.Count, rock.Select(r => Encoding.ASCII.GetString(r.Identifier)).Distinct().Count());
        Assert.All(rock, r => Assert.Matches("^[A-Z0-9_]{1,8}\\.[A-Z0-9_]{0,3};1$", Encoding.ASCII.GetString(r.Identifier)));

        // Sorted as ECMA-119 9.3 asks (for these names plain ordinal order agrees).
        List<string> jolietNames = joliet.Select(r => Encoding.BigEndianUnicode.GetString(r.Identifier)).ToList();
        Assert.Equal(jolietNames.Order(StringComparer.Ordinal), jolietNames);

        var byName = rock.ToDictionary(r => IsoReader.RockName(iso, r)!);
        foreach ((string name, byte[] content) in input)
        {
            Assert.Equal(content, IsoReader.Content(iso, byName[name]));
            IsoRecord j = joliet.Single(r => Encoding.BigEndianUnicode.GetString(r.Identifier) == name);
            Assert.Equal(byName[name].Extent, j.Extent);
        }

        // Data extents do not overlap each other or the metadata, and stay inside the volume.
        uint metadataEnd = Math.Max(primaryRoot.Extent + primaryRoot.Size / Block, jolietRoot.Extent + jolietRoot.Size / Block);
        var extents = rock.Where(r => r.Size > 0).OrderBy(r => r.Extent).ToList();
        uint next = metadataEnd;
        foreach (IsoRecord r in extents)
        {
            Assert.True(r.Extent >= next, $"extent {r.Extent} overlaps");
            next = r.Extent + (r.Size + Block - 1) / Block;
        }
        Assert.Equal((uint)(iso.Length / Block), next);
    }

    [Fact]
    public void CollidingNames_AreMangledUniquely()
    {
        (string Name, byte[] Content)[] input =
        [
            ("meta-data", [1]),
            ("meta-data2", [2]),
            ("META_DAT", [3]),
            ("meta.data.txt", [4]),
            (".hidden", [5]),
            ("ünïcode name", [6]),
        ];
        byte[] iso = Iso9660Writer.Build("cidata", input);
        List<IsoRecord> rock = IsoReader.Directory(iso, IsoReader.PrimaryRoot(iso)).Skip(2).ToList();

        var ids = rock.ToDictionary(r => IsoReader.RockName(iso, r)!, r => Encoding.ASCII.GetString(r.Identifier));
        Assert.Equal("META_DAT.;1", ids["meta-data"]);
        Assert.Equal("META_DA1.;1", ids["meta-data2"]);
        Assert.Equal("META_DA2.;1", ids["META_DAT"]);
        Assert.Equal("META_DAT.TXT;1", ids["meta.data.txt"]);
        Assert.Equal("_HIDDEN.;1", ids[".hidden"]);
        Assert.Equal("_N_CODE_.;1", ids["ünïcode name"]);
        foreach ((string name, byte[] content) in input)
        {
            Assert.Equal(content, IsoReader.Content(iso, rock.Single(r => IsoReader.RockName(iso, r) == name)));
        }
    }

    [Fact]
    public void LongUnicodeName_MovesNameIntoTheContinuationArea()
    {
        string name = new('€', 64); // 192 bytes of UTF-8: too long for the record itself
        byte[] iso = Iso9660Writer.Build("cidata", [(name, [42]), ("meta-data", s_metaData)]);

        List<IsoRecord> rock = IsoReader.Directory(iso, IsoReader.PrimaryRoot(iso)).Skip(2).ToList();
        Assert.All(rock, r => Assert.True(r.Length <= 255));
        IsoRecord longOne = rock.Single(r => IsoReader.RockName(iso, r) == name);
        Assert.Contains(IsoReader.Susp(iso, longOne.SystemUse, followContinuation: false), e => e.Signature == "CE");
        Assert.Equal([42], IsoReader.Content(iso, longOne));
        Assert.Contains(
            IsoReader.Directory(iso, IsoReader.JolietRoot(iso)),
            r => r.Identifier.Length > 1 && Encoding.BigEndianUnicode.GetString(r.Identifier) == name);
    }

    [Fact]
    public void EmptyFileList_GivesAnEmptyRoot()
    {
        byte[] iso = Iso9660Writer.Build("CIDATA", []);
        Assert.Equal(2, IsoReader.Directory(iso, IsoReader.PrimaryRoot(iso)).Count);
        Assert.Equal(2, IsoReader.Directory(iso, IsoReader.JolietRoot(iso)).Count);
        Assert.Equal((uint)(iso.Length / Block), IsoReader.Both32(iso, 16 * Block + 80));
    }

    [Fact]
    public void LongLabel_IsTruncatedForJolietOnly()
    {
        string label = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_01234"; // 32 characters
        byte[] iso = Iso9660Writer.Build(label, SeedFiles());
        Assert.Equal(label, IsoReader.Ascii(iso, 16 * Block + 40, 32));
        Assert.Equal(label[..16], IsoReader.Ucs2(iso, 17 * Block + 40, 32));
    }

    [Theory]
    [InlineData("")]
    [InlineData("ci-data")]
    [InlineData("ci data")]
    [InlineData("cïdata")]
    [InlineData("ABCDEFGHIJKLMNOPQRSTUVWXYZ_012345")]
    public void BadLabel_Throws(string label)
    {
        ArgumentException e = Assert.ThrowsAny<ArgumentException>(() => Iso9660Writer.Build(label, SeedFiles()));
        Assert.Equal("volumeLabel", e.ParamName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("dir/meta-data")]
    [InlineData("back\\slash")]
    [InlineData("semi;colon")]
    [InlineData("tab\there")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("a-name-that-is-much-too-long-for-joliet-which-allows-64-characters")]
    public void BadName_Throws(string name)
    {
        ArgumentException e = Assert.ThrowsAny<ArgumentException>(
            () => Iso9660Writer.Build("cidata", [(name, [1])]));
        Assert.Equal("files", e.ParamName);
    }

    [Fact]
    public void OtherBadInput_Throws()
    {
        Assert.Equal("files", Assert.Throws<ArgumentException>(
            () => Iso9660Writer.Build("cidata", [("meta-data", [1]), ("Meta-Data", [2])])).ParamName);
        Assert.Equal("files", Assert.Throws<ArgumentException>(
            () => Iso9660Writer.Build("cidata", [("meta-data", null!)])).ParamName);
        Assert.Equal("files", Assert.Throws<ArgumentException>(
            () => Iso9660Writer.Build("cidata", [("\uD800x", [1])])).ParamName);
        Assert.Throws<ArgumentNullException>(() => Iso9660Writer.Build("cidata", null!));
        Assert.Throws<ArgumentNullException>(() => Iso9660Writer.Build(null!, SeedFiles()));
        Assert.Throws<ArgumentNullException>(() => Iso9660Writer.Write(null!, "cidata", SeedFiles()));
        Assert.Throws<ArgumentException>(() => Iso9660Writer.Write(new MemoryStream([], writable: false), "cidata", SeedFiles()));
        Assert.Throws<ArgumentOutOfRangeException>(
            () => Iso9660Writer.Build("cidata", SeedFiles(), new DateTimeOffset(1899, 12, 31, 0, 0, 0, TimeSpan.Zero)));

        // The limits themselves are accepted.
        byte[] iso = Iso9660Writer.Build("cidata", [(new string('x', 64), [1])]);
        Assert.Equal(new string('x', 64), IsoReader.RockName(iso, IsoReader.Directory(iso, IsoReader.PrimaryRoot(iso))[2]));
    }

    // ---- Cross-checks with whatever ISO tools this machine has; skipped when absent. ----

    [SkippableFact]
    public void Isoinfo_ReadsRockRidgeJolietAndContents()
    {
        string isoinfo = Tool.Find("isoinfo") ?? string.Empty;
        Skip.If(isoinfo.Length == 0, "isoinfo (genisoimage) is not installed");
        using var dir = new TempDir();
        string path = dir.Write("seed.iso", Iso9660Writer.Build("cidata", SeedFiles()));

        string info = Tool.Text(isoinfo, "-d", "-i", path);
        Assert.Contains("Volume id: CIDATA", info);
        Assert.Contains("Logical block size is: 2048", info);
        Assert.Contains($"Volume size is: {new FileInfo(path).Length / Block}", info);
        Assert.Contains("Joliet with UCS level 3 found", info);
        Assert.Contains("Rock Ridge signatures version 1 found", info);

        string rockList = Tool.Text(isoinfo, "-R", "-l", "-i", path);
        string jolietList = Tool.Text(isoinfo, "-J", "-l", "-i", path);
        foreach ((string name, byte[] content) in SeedFiles())
        {
            Assert.Matches($@"-r--r--r--.*\s{name}\s*$", rockList.Split('\n').Single(l => l.Contains(name)));
            Assert.Contains($"]  {name} ", jolietList);
            Assert.Equal(content, Tool.Run(isoinfo, "-J", "-x", "/" + name, "-i", path));
            Assert.Equal(content, Tool.Run(isoinfo, "-R", "-x", "/" + name, "-i", path));
        }
        Assert.Contains("META_DAT.;1", Tool.Text(isoinfo, "-l", "-i", path));
    }

    [SkippableFact]
    public void Xorriso_ExtractsTheRockRidgeNames()
    {
        string xorriso = Tool.Find("xorriso") ?? string.Empty;
        Skip.If(xorriso.Length == 0, "xorriso is not installed");
        using var dir = new TempDir();
        string path = dir.Write("seed.iso", Iso9660Writer.Build("cidata", SeedFiles()));
        var args = new List<string> { "-abort_on", "FAILURE", "-osirrox", "on", "-indev", path };
        foreach ((string name, _) in SeedFiles())
        {
            args.AddRange(["-extract", "/" + name, Path.Combine(dir.Path, "out-" + name)]);
        }

        Tool.Run(xorriso, [.. args]);

        foreach ((string name, byte[] content) in SeedFiles())
        {
            Assert.Equal(content, File.ReadAllBytes(Path.Combine(dir.Path, "out-" + name)));
        }
    }

    [SkippableFact]
    public void SevenZip_ExtractsTheJolietNames()
    {
        string sevenZip = Tool.Find("7z") ?? Tool.Find("7zz") ?? Tool.Find("7za") ?? string.Empty;
        Skip.If(sevenZip.Length == 0, "7-Zip is not installed");
        using var dir = new TempDir();
        string path = dir.Write("seed.iso", Iso9660Writer.Build("cidata", SeedFiles()));
        string output = Path.Combine(dir.Path, "out");

        Tool.Run(sevenZip, "x", "-y", "-o" + output, path);

        foreach ((string name, byte[] content) in SeedFiles())
        {
            Assert.Equal(content, File.ReadAllBytes(Path.Combine(output, name)));
        }
    }

    private static class Tool
    {
        public static string? Find(string name)
        {
            foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator))
            {
                if (dir.Length > 0 && File.Exists(Path.Combine(dir, name)))
                {
                    return Path.Combine(dir, name);
                }
            }
            return null;
        }

        public static string Text(string exe, params string[] args) => Encoding.UTF8.GetString(Run(exe, args));

        public static byte[] Run(string exe, params string[] args)
        {
            var psi = new ProcessStartInfo(exe)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }
            psi.Environment["LC_ALL"] = "C";
            using Process p = Process.Start(psi)!;
            Task<string> stderr = p.StandardError.ReadToEndAsync();
            using var stdout = new MemoryStream();
            p.StandardOutput.BaseStream.CopyTo(stdout);
            if (!p.WaitForExit(60_000))
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail($"{exe} did not finish in 60 s");
            }
            Assert.True(p.ExitCode == 0, $"{exe} {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}");
            return stdout.ToArray();
        }
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("kvmps-iso-").FullName;

        public string Write(string name, byte[] content)
        {
            string file = System.IO.Path.Combine(Path, name);
            File.WriteAllBytes(file, content);
            return file;
        }

        public void Dispose()
        {
            // Extracted files and directories may be read-only (Rock Ridge modes 0444/0555).
            foreach (string entry in Directory.EnumerateFileSystemEntries(Path, "*", SearchOption.AllDirectories))
            {
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(entry, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
            }
            Directory.Delete(Path, recursive: true);
        }
    }

    private sealed record IsoRecord(int Length, uint Extent, uint Size, byte Flags, byte[] Identifier, byte[] SystemUse, byte[] Date);

    private sealed record SuspEntry(string Signature, byte Version, byte[] Data);

    private sealed record PathTableEntry(uint Extent, ushort Parent, byte[] Identifier)
    {
        public bool Equals(PathTableEntry? other) =>
            other is not null && Extent == other.Extent && Parent == other.Parent && Identifier.AsSpan().SequenceEqual(other.Identifier);

        public override int GetHashCode() => HashCode.Combine(Extent, Parent, Identifier.Length);
    }

    /// <summary>A small ISO 9660 reader for the tests: checks both-endian fields as it goes.</summary>
    private static class IsoReader
    {
        private const int Block = 2048;

        public static string Ascii(byte[] iso, int at, int length) => Encoding.ASCII.GetString(iso, at, length);

        public static string Ucs2(byte[] iso, int at, int length) => Encoding.BigEndianUnicode.GetString(iso, at, length);

        public static uint Both32(byte[] iso, int at)
        {
            uint little = BinaryPrimitives.ReadUInt32LittleEndian(iso.AsSpan(at));
            Assert.Equal(little, BinaryPrimitives.ReadUInt32BigEndian(iso.AsSpan(at + 4)));
            return little;
        }

        public static ushort Both16(byte[] iso, int at)
        {
            ushort little = BinaryPrimitives.ReadUInt16LittleEndian(iso.AsSpan(at));
            Assert.Equal(little, BinaryPrimitives.ReadUInt16BigEndian(iso.AsSpan(at + 2)));
            return little;
        }

        public static IsoRecord PrimaryRoot(byte[] iso) => Record(iso, 16 * Block + 156);

        public static IsoRecord JolietRoot(byte[] iso) => Record(iso, 17 * Block + 156);

        public static IsoRecord Record(byte[] iso, int at)
        {
            int length = iso[at];
            Assert.True(length >= 34, $"record at {at} is {length} bytes");
            Assert.Equal(0, length % 2);
            Assert.Equal(0, iso[at + 1]);
            Assert.Equal(1, Both16(iso, at + 28));
            int idLength = iso[at + 32];
            int suStart = 33 + idLength + (idLength % 2 == 0 ? 1 : 0);
            Assert.True(suStart <= length);
            return new IsoRecord(
                length,
                Both32(iso, at + 2),
                Both32(iso, at + 10),
                iso[at + 25],
                iso[(at + 33)..(at + 33 + idLength)],
                iso[(at + suStart)..(at + length)],
                iso[(at + 18)..(at + 25)]);
        }

        /// <summary>All records of a directory; asserts none crosses a block boundary.</summary>
        public static List<IsoRecord> Directory(byte[] iso, IsoRecord dir)
        {
            Assert.Equal(0u, dir.Size % Block);
            var records = new List<IsoRecord>();
            for (uint block = 0; block < dir.Size / Block; block++)
            {
                int start = (int)(dir.Extent + block) * Block;
                int at = start;
                while (at < start + Block && iso[at] != 0)
                {
                    IsoRecord r = Record(iso, at);
                    Assert.True(at + r.Length <= start + Block, "a directory record crosses a block boundary");
                    records.Add(r);
                    at += r.Length;
                }
                Assert.All(iso[at..(start + Block)], b => Assert.Equal(0, b));
            }
            return records;
        }

        public static byte[] Content(byte[] iso, IsoRecord file) =>
            iso.AsSpan((int)file.Extent * Block, (int)file.Size).ToArray();

        /// <summary>SUSP entries of a System Use field, following CE continuation areas.</summary>
        public static List<SuspEntry> Susp(byte[] iso, byte[] systemUse, bool followContinuation = true)
        {
            var entries = new List<SuspEntry>();
            byte[]? area = systemUse;
            for (int hops = 0; area is not null && hops < 8; hops++)
            {
                byte[]? next = null;
                int at = 0;
                while (at + 4 <= area.Length)
                {
                    string signature = Encoding.ASCII.GetString(area, at, 2);
                    int length = area[at + 2];
                    Assert.True(length >= 4 && at + length <= area.Length, $"bad SUSP entry {signature}");
                    var entry = new SuspEntry(signature, area[at + 3], area[(at + 4)..(at + length)]);
                    Assert.Equal(1, entry.Version);
                    entries.Add(entry);
                    if (signature == "CE" && followContinuation)
                    {
                        uint block = Both32(entry.Data, 0);
                        uint offset = Both32(entry.Data, 8);
                        uint size = Both32(entry.Data, 16);
                        Assert.True(offset + size <= Block, "a continuation area crosses a block");
                        next = iso[(int)(block * Block + offset)..(int)(block * Block + offset + size)];
                    }
                    if (signature == "ST")
                    {
                        break;
                    }
                    at += length;
                }
                area = next;
            }
            return entries;
        }

        public static string? RockName(byte[] iso, IsoRecord record)
        {
            List<SuspEntry> nm = Susp(iso, record.SystemUse).Where(e => e.Signature == "NM").ToList();
            return nm.Count == 0 ? null : Encoding.UTF8.GetString(nm.SelectMany(e => e.Data.Skip(1)).ToArray());
        }

        public static uint PosixMode(List<SuspEntry> entries)
        {
            SuspEntry px = Assert.Single(entries, e => e.Signature == "PX");
            Assert.True(px.Data.Length >= 32);
            Assert.Equal(0u, Both32(px.Data, 16)); // uid
            Assert.Equal(0u, Both32(px.Data, 24)); // gid
            return Both32(px.Data, 0);
        }

        public static List<PathTableEntry> PathTable(byte[] iso, uint location, uint size, bool bigEndian)
        {
            var entries = new List<PathTableEntry>();
            int at = (int)location * Block;
            int end = at + (int)size;
            while (at < end)
            {
                int idLength = iso[at];
                Assert.Equal(0, iso[at + 1]);
                ReadOnlySpan<byte> s = iso.AsSpan(at + 2);
                uint extent = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
                ushort parent = bigEndian
                    ? BinaryPrimitives.ReadUInt16BigEndian(s[4..])
                    : BinaryPrimitives.ReadUInt16LittleEndian(s[4..]);
                entries.Add(new PathTableEntry(extent, parent, iso[(at + 8)..(at + 8 + idLength)]));
                at += 8 + idLength + (idLength % 2);
            }
            Assert.Equal(end, at);
            return entries;
        }
    }
}
