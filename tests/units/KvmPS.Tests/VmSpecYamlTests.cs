using System.Collections;
using System.Collections.Specialized;
using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Xml;
using KvmPS.Yaml;

namespace KvmPS.Tests;

public sealed class VmSpecYamlTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    private static VmSpecException Fails(string yaml) => Assert.Throws<VmSpecException>(() => VmSpecYaml.FromYaml(yaml));

    private static VmSpecException FailsTable(IDictionary table) => Assert.Throws<VmSpecException>(() => VmSpecYaml.FromDictionary(table));

    // ------------------------------------------------------------------ FromYaml: valid

    [Fact]
    public void FromYaml_FullSpec_ReadsEveryKey()
    {
        const string yaml = """
            # a web server
            name: web1
            cpu: 2
            maxCpu: 4
            memory: 2GiB
            maxMemory: 4096MiB
            firmware: UEFI
            accelerator: kvm
            machine: q35
            cpuMode: host-passthrough
            kernel: /boot/vmlinuz
            initrd: /boot/initrd.img
            kernelArgs: console=ttyS0 root=/dev/vda1
            title: Web server
            description: |
              Serves the site.
              Second line.
            storagePool: fast
            disks:
              - size: 20GiB
                format: qcow2
                bus: virtio
              - baseImage: /var/lib/libvirt/images/debian.qcow2
                pool: images
                size: 30GB
              - path: /isos/debian.iso
                device: cdrom
                readOnly: true
                bus: sata
                format: raw
            networks: [default, lan]
            start: true
            """;
        VmSpec s = VmSpecYaml.FromYaml(yaml);

        Assert.Equal("web1", s.Name);
        Assert.Equal(2, s.CpuCount);
        Assert.Equal(4, s.MaxCpuCount);
        Assert.Equal(2 * GiB, s.MemoryBytes);
        Assert.Equal(4 * GiB, s.MaxMemoryBytes);
        Assert.Equal(KvmFirmware.Uefi, s.Firmware);
        Assert.Equal(KvmAcceleratorChoice.Kvm, s.Accelerator);
        Assert.Equal("q35", s.MachineType);
        Assert.Equal("host-passthrough", s.CpuMode);
        Assert.Equal("/boot/vmlinuz", s.Kernel);
        Assert.Equal("/boot/initrd.img", s.Initrd);
        Assert.Equal("console=ttyS0 root=/dev/vda1", s.KernelArguments);
        Assert.Equal("Web server", s.Title);
        Assert.Equal("Serves the site.\nSecond line.\n", s.Description);
        Assert.Equal("fast", s.StoragePool);
        Assert.True(s.Start);
        Assert.False(s.NoNetwork);
        Assert.Equal(["default", "lan"], s.Networks);

        Assert.Equal(3, s.Disks.Count);
        Assert.Equal(20 * GiB, s.Disks[0].SizeBytes);
        Assert.Equal("qcow2", s.Disks[0].Format);
        Assert.Equal("virtio", s.Disks[0].Bus);
        Assert.Equal("disk", s.Disks[0].Device);
        Assert.Null(s.Disks[0].Path);
        Assert.False(s.Disks[0].ReadOnly);

        Assert.Equal("/var/lib/libvirt/images/debian.qcow2", s.Disks[1].BaseImage);
        Assert.Equal("images", s.Disks[1].Pool);
        Assert.Equal(30 * GiB, s.Disks[1].SizeBytes);

        Assert.Equal("/isos/debian.iso", s.Disks[2].Path);
        Assert.Equal("cdrom", s.Disks[2].Device);
        Assert.True(s.Disks[2].ReadOnly);
        Assert.Equal("sata", s.Disks[2].Bus);
        Assert.Equal("raw", s.Disks[2].Format);
        Assert.Null(s.Disks[2].SizeBytes);
    }

    [Fact]
    public void FromYaml_MinimalSpec_LeavesDefaults()
    {
        VmSpec s = VmSpecYaml.FromYaml("name: tiny\n");
        Assert.Equal("tiny", s.Name);
        Assert.Null(s.CpuCount);
        Assert.Null(s.MemoryBytes);
        Assert.Empty(s.Disks);
        Assert.Empty(s.Networks);
        Assert.Equal(KvmFirmware.Bios, s.Firmware);
        Assert.Equal(KvmAcceleratorChoice.Auto, s.Accelerator);
        Assert.False(s.Start);
    }

    [Theory]
    [InlineData("512MiB", 512UL << 20)]
    [InlineData("2GiB", 2UL << 30)]
    [InlineData("20GB", 20UL << 30)]
    [InlineData("2G", 2UL << 30)]
    [InlineData("1.5GiB", 3UL << 29)]
    [InlineData("2 GiB", 2UL << 30)]
    [InlineData("\"3GiB\"", 3UL << 30)]
    [InlineData("'64MiB'", 64UL << 20)]
    [InlineData("1073741824", 1UL << 30)]
    [InlineData("\"1073741824\"", 1UL << 30)]
    [InlineData("65536K", 64UL << 20)]
    [InlineData("1TiB", 1UL << 40)]
    public void FromYaml_Sizes_AllForms(string size, ulong expected)
    {
        VmSpec s = VmSpecYaml.FromYaml($"name: a\nmemory: {size}\nmaxMemory: {size}\ndisks:\n  - size: {size}\n");
        Assert.Equal(expected, s.MemoryBytes);
        Assert.Equal(expected, s.MaxMemoryBytes);
        Assert.Equal(expected, s.Disks[0].SizeBytes);
    }

    [Fact]
    public void FromYaml_SingleNetworkString_IsOneNetwork()
    {
        VmSpec s = VmSpecYaml.FromYaml("name: a\nnetworks: lan\n");
        Assert.Equal(["lan"], s.Networks);
    }

    [Fact]
    public void FromYaml_NoNetwork_AndBlockListOfNetworks()
    {
        Assert.True(VmSpecYaml.FromYaml("name: a\nnoNetwork: true\n").NoNetwork);
        Assert.Equal(["a", "b"], VmSpecYaml.FromYaml("name: a\nnetworks:\n  - a\n  - b\n").Networks);
    }

    [Fact]
    public void FromYaml_NullValues_MeanNotGiven()
    {
        VmSpec s = VmSpecYaml.FromYaml("name: a\ntitle:\ncpu: ~\nmemory: null\n");
        Assert.Null(s.Title);
        Assert.Null(s.CpuCount);
        Assert.Null(s.MemoryBytes);
    }

    [Fact]
    public void FromYaml_QuotedNull_IsText()
    {
        Assert.Equal("null", VmSpecYaml.FromYaml("name: a\ntitle: 'null'\n").Title);
        Assert.Equal("123", VmSpecYaml.FromYaml("name: 123\n").Name);
    }

    [Theory]
    [InlineData("bios", KvmFirmware.Bios)]
    [InlineData("uefi", KvmFirmware.Uefi)]
    [InlineData("Uefi", KvmFirmware.Uefi)]
    [InlineData("BIOS", KvmFirmware.Bios)]
    public void FromYaml_Firmware_CaseInsensitive(string value, KvmFirmware expected)
        => Assert.Equal(expected, VmSpecYaml.FromYaml($"name: a\nfirmware: {value}\n").Firmware);

    [Theory]
    [InlineData("auto", KvmAcceleratorChoice.Auto)]
    [InlineData("kvm", KvmAcceleratorChoice.Kvm)]
    [InlineData("QEMU", KvmAcceleratorChoice.Qemu)]
    public void FromYaml_Accelerator(string value, KvmAcceleratorChoice expected)
        => Assert.Equal(expected, VmSpecYaml.FromYaml($"name: a\naccelerator: {value}\n").Accelerator);

    [Fact]
    public void FromYaml_AnchorsAndAliases_AreResolved()
    {
        VmSpec s = VmSpecYaml.FromYaml("name: &n web\ntitle: *n\n");
        Assert.Equal("web", s.Title);
    }

    // ------------------------------------------------------------------ FromYaml: errors with positions

    [Fact]
    public void FromYaml_UnknownTopLevelKey_NamesKeyLineAndColumn()
    {
        VmSpecException e = Fails("name: a\ncpu: 2\nmemry: 1GiB\n");
        Assert.Equal("memry", e.Key);
        Assert.Equal(3, e.Line);
        Assert.Equal(1, e.Column);
        Assert.Contains("unknown key", e.Message);
        Assert.Contains("memory", e.Message);
        Assert.Contains("case-sensitive", e.Message);
    }

    [Fact]
    public void FromYaml_UnknownKeyInSecondDisk_NamesPathLineAndColumn()
    {
        const string yaml = """
            name: a
            disks:
              - size: 1GiB
              - path: /x.img
                sise: 2GiB
            """;
        VmSpecException e = Fails(yaml);
        Assert.Equal("disks[1].sise", e.Key);
        Assert.Equal(5, e.Line);
        Assert.Equal(5, e.Column);
        Assert.Contains("baseImage", e.Message);
        Assert.Contains("disks[1].sise (line 5, column 5)", e.Message);
    }

    [Fact]
    public void FromYaml_KeysAreCaseSensitive_WithAHint()
    {
        VmSpecException e = Fails("name: a\nmaxcpu: 4\n");
        Assert.Equal("maxcpu", e.Key);
        Assert.Equal(2, e.Line);
        Assert.Contains("did you mean 'maxCpu'", e.Message);
    }

    [Theory]
    [InlineData("name: a\ncpu: two\n", "cpu", 2, 6)]
    [InlineData("name: a\ncpu: 2.5\n", "cpu", 2, 6)]
    [InlineData("name: a\nmemory: lots\n", "memory", 2, 9)]
    [InlineData("name: a\nmemory: -1\n", "memory", 2, 9)]
    [InlineData("name: a\ndisks: 5\n", "disks", 2, 8)]
    [InlineData("name: [a]\n", "name", 1, 7)]
    [InlineData("name: {x: 1}\n", "name", 1, 7)]
    [InlineData("name: a\nstart: yes please\n", "start", 2, 8)]
    [InlineData("name: a\nfirmware: efi\n", "firmware", 2, 11)]
    [InlineData("name: a\naccelerator: hyperv\n", "accelerator", 2, 14)]
    [InlineData("name: a\nnetworks: {a: 1}\n", "networks", 2, 11)]
    [InlineData("name: a\nnetworks:\n  - ok\n  - [x]\n", "networks[1]", 4, 5)]
    [InlineData("name: a\ndisks:\n  - 5\n", "disks[0]", 3, 5)]
    [InlineData("name: a\ndisks:\n  - size: 1GiB\n    readOnly: maybe\n", "disks[0].readOnly", 4, 15)]
    [InlineData("name: a\ndisks:\n  - size: big\n", "disks[0].size", 3, 11)]
    public void FromYaml_WrongType_NamesKeyAndValuePosition(string yaml, string key, int line, int column)
    {
        VmSpecException e = Fails(yaml);
        Assert.Equal(key, e.Key);
        Assert.Equal(line, e.Line);
        Assert.Equal(column, e.Column);
    }

    [Fact]
    public void FromYaml_WrongType_MessageSaysWhatWasExpected()
    {
        Assert.Contains("whole number", Fails("name: a\ncpu: two\n").Message);
        Assert.Contains("'two'", Fails("name: a\ncpu: two\n").Message);
        Assert.Contains("size", Fails("name: a\nmemory: lots\n").Message);
    }

    [Fact]
    public void FromYaml_BadIndentation_IsYamlErrorWithLine()
    {
        VmSpecException e = Fails("name: a\n  cpu: 2\n");
        Assert.Equal("yaml", e.Key);
        Assert.Equal(2, e.Line);
        Assert.NotNull(e.Column);
        Assert.IsAssignableFrom<YamlDotNet.Core.YamlException>(e.InnerException);
    }

    [Fact]
    public void FromYaml_Tab_IsYamlErrorWithLine()
    {
        VmSpecException e = Fails("name: a\n\tcpu: 2\n");
        Assert.Equal("yaml", e.Key);
        Assert.NotNull(e.Line);
        Assert.Contains("tab", e.Message);
    }

    [Fact]
    public void FromYaml_UnclosedQuote_IsYamlErrorAtTheQuote()
    {
        VmSpecException e = Fails("name: 'abc\ncpu: 2\n");
        Assert.Equal("yaml", e.Key);
        Assert.Equal(1, e.Line);
        Assert.Equal(7, e.Column);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \n")]
    [InlineData("# only a comment\n")]
    [InlineData("---\n")]
    [InlineData("~\n")]
    public void FromYaml_EmptyDocument_Fails(string yaml)
    {
        VmSpecException e = Fails(yaml);
        Assert.Equal("yaml", e.Key);
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void FromYaml_TwoDocuments_Fails()
    {
        VmSpecException e = Fails("name: a\n---\nname: b\n");
        Assert.Equal("yaml", e.Key);
        Assert.Equal(2, e.Line);
        Assert.Contains("more than one", e.Message);
    }

    [Theory]
    [InlineData("- a\n- b\n")]
    [InlineData("just text\n")]
    public void FromYaml_TopLevelNotAMapping_Fails(string yaml)
    {
        VmSpecException e = Fails(yaml);
        Assert.Equal("yaml", e.Key);
        Assert.Equal(1, e.Line);
        Assert.Contains("mapping", e.Message);
    }

    [Fact]
    public void FromYaml_DuplicateKey_Fails()
    {
        VmSpecException e = Fails("name: a\ncpu: 1\ncpu: 2\n");
        Assert.Equal("cpu", e.Key);
        Assert.Equal(3, e.Line);
        Assert.Equal(1, e.Column);
        Assert.Contains("line 2", e.Message);
    }

    [Fact]
    public void FromYaml_DuplicateKeyInDisk_Fails()
    {
        VmSpecException e = Fails("name: a\ndisks:\n  - size: 1GiB\n    size: 2GiB\n");
        Assert.Equal("disks[0].size", e.Key);
        Assert.Equal(4, e.Line);
        Assert.Equal(5, e.Column);
    }

    [Fact]
    public void FromYaml_UnknownAlias_Fails()
    {
        VmSpecException e = Fails("name: a\ntitle: *nope\n");
        Assert.Equal("yaml", e.Key);
        Assert.Equal(2, e.Line);
    }

    [Fact]
    public void FromYaml_NonScalarKey_Fails()
    {
        VmSpecException e = Fails("name: a\n[x]: 1\n");
        Assert.Equal("yaml", e.Key);
        Assert.Equal(2, e.Line);
    }

    // ------------------------------------------------------------------ validator runs after reading

    [Theory]
    [InlineData("name: a\nmemory: 1MiB\n", "memory")]
    [InlineData("name: a\ncpu: 0\n", "cpu")]
    [InlineData("name: a\ncpu: 4\nmaxCpu: 2\n", "maxCpu")]
    [InlineData("cpu: 2\n", "name")]
    [InlineData("name: ' padded'\n", "name")]
    [InlineData("name: a\ncpuMode: turbo\n", "cpuMode")]
    [InlineData("name: a\ninitrd: /boot/initrd\n", "initrd")]
    [InlineData("name: a\ndisks:\n  - bus: virtio\n", "disks[0]")]
    [InlineData("name: a\ndisks:\n  - size: 1GiB\n    format: vmdk\n", "disks[0].format")]
    [InlineData("name: a\ndisks:\n  - size: 1000\n", "disks[0].size")]
    [InlineData("name: a\nnoNetwork: true\nnetworks: lan\n", "networks")]
    public void FromYaml_ValidatorErrors_NameTheKey(string yaml, string key)
    {
        VmSpecException e = Fails(yaml);
        Assert.Equal(key, e.Key);
        Assert.Null(e.Line);
    }

    // ------------------------------------------------------------------ FromDictionary

    [Fact]
    public void FromDictionary_PowerShellForms()
    {
        var cdrom = new Hashtable { ["Path"] = "/isos/x.iso", ["DEVICE"] = "cdrom", ["readonly"] = new SwitchParameter(true) };
        var table = new Hashtable
        {
            ["NAME"] = PSObject.AsPSObject("web1"),
            ["Cpu"] = PSObject.AsPSObject(2),
            ["maxcpu"] = 4.0,
            ["Memory"] = (long)(2 * GiB),
            ["MaxMemory"] = "4GiB",
            ["Disks"] = new object[] { PSObject.AsPSObject(new Hashtable { ["Size"] = 20L * (long)GiB, ["Format"] = "qcow2" }), cdrom },
            ["Networks"] = PSObject.AsPSObject(new[] { "default", "lan" }),
            ["Start"] = new SwitchParameter(true),
            ["Firmware"] = KvmFirmware.Uefi,
            ["Accelerator"] = "QEMU",
            ["KernelArgs"] = "quiet",
            ["Kernel"] = "/boot/vmlinuz",
            ["Title"] = PSObject.AsPSObject("T"),
        };
        VmSpec s = VmSpecYaml.FromDictionary(table);

        Assert.Equal("web1", s.Name);
        Assert.Equal(2, s.CpuCount);
        Assert.Equal(4, s.MaxCpuCount);
        Assert.Equal(2 * GiB, s.MemoryBytes);
        Assert.Equal(4 * GiB, s.MaxMemoryBytes);
        Assert.Equal(2, s.Disks.Count);
        Assert.Equal(20 * GiB, s.Disks[0].SizeBytes);
        Assert.Equal("qcow2", s.Disks[0].Format);
        Assert.Equal("/isos/x.iso", s.Disks[1].Path);
        Assert.Equal("cdrom", s.Disks[1].Device);
        Assert.True(s.Disks[1].ReadOnly);
        Assert.Equal(["default", "lan"], s.Networks);
        Assert.True(s.Start);
        Assert.Equal(KvmFirmware.Uefi, s.Firmware);
        Assert.Equal(KvmAcceleratorChoice.Qemu, s.Accelerator);
        Assert.Equal("quiet", s.KernelArguments);
        Assert.Equal("T", s.Title);
    }

    [Fact]
    public void FromDictionary_SingleDiskHashtable_SingleNetworkString_AndIntSizes()
    {
        var table = new Hashtable
        {
            ["name"] = "a",
            ["memory"] = 1024 * 1024 * 512,
            ["disks"] = new Hashtable { ["size"] = 1.5 * GiB },
            ["networks"] = PSObject.AsPSObject("lan"),
            ["cpu"] = "3",
            ["noNetwork"] = false,
        };
        VmSpec s = VmSpecYaml.FromDictionary(table);
        Assert.Equal(512 * MiB, s.MemoryBytes);
        Assert.Equal(3 * GiB / 2, Assert.Single(s.Disks).SizeBytes);
        Assert.Equal(["lan"], s.Networks);
        Assert.Equal(3, s.CpuCount);
        Assert.False(s.NoNetwork);
    }

    [Fact]
    public void FromDictionary_OrderedDictionaryAndCustomObjectDisk()
    {
        var disk = new PSObject();
        disk.Properties.Add(new PSNoteProperty("Size", "10GiB"));
        disk.Properties.Add(new PSNoteProperty("Bus", "scsi"));
        var table = new OrderedDictionary { ["Name"] = "b", ["Disks"] = new object[] { disk }, ["NoNetwork"] = new SwitchParameter(true) };
        VmSpec s = VmSpecYaml.FromDictionary(table);
        Assert.Equal(10 * GiB, Assert.Single(s.Disks).SizeBytes);
        Assert.Equal("scsi", s.Disks[0].Bus);
        Assert.True(s.NoNetwork);
    }

    [Fact]
    public void FromDictionary_NullValues_AreIgnored()
    {
        VmSpec s = VmSpecYaml.FromDictionary(new Hashtable { ["Name"] = "a", ["Title"] = null, ["Cpu"] = null });
        Assert.Null(s.Title);
        Assert.Null(s.CpuCount);
    }

    [Fact]
    public void FromDictionary_UnknownKey_NoPosition()
    {
        VmSpecException e = FailsTable(new Hashtable { ["Name"] = "a", ["Colour"] = "red" });
        Assert.Equal("Colour", e.Key);
        Assert.Null(e.Line);
        Assert.Null(e.Column);
        Assert.Contains("unknown key", e.Message);
        Assert.Contains("storagePool", e.Message);
    }

    [Fact]
    public void FromDictionary_UnknownDiskKey_NamesPath()
    {
        var table = new Hashtable { ["Name"] = "a", ["Disks"] = new object[] { new Hashtable { ["Size"] = "1GiB" }, new Hashtable { ["Sise"] = "1GiB" } } };
        VmSpecException e = FailsTable(table);
        Assert.Equal("disks[1].Sise", e.Key);
        Assert.Null(e.Line);
    }

    [Fact]
    public void FromDictionary_SameKeyInTwoCases_IsDuplicate()
    {
        var table = new Dictionary<string, object?> { ["cpu"] = 1, ["CPU"] = 2, ["name"] = "a" };
        VmSpecException e = FailsTable(table);
        Assert.Contains(e.Key, new[] { "cpu", "CPU" });
        Assert.Contains("twice", e.Message);
    }

    public static TheoryData<string, object, string> WrongTypes => new()
    {
        { "Cpu", "two", "cpu" },
        { "Cpu", 2.5, "cpu" },
        { "Cpu", 5_000_000_000L, "cpu" },
        { "Memory", "lots", "memory" },
        { "Memory", -1, "memory" },
        { "Memory", 1.5, "memory" },
        { "Disks", 5, "disks" },
        { "Disks", new object[] { "x" }, "disks[0]" },
        { "Name", new object[] { "a" }, "name" },
        { "Name", new Hashtable(), "name" },
        { "Start", "maybe", "start" },
        { "Start", 1, "start" },
        { "Firmware", "efi", "firmware" },
        { "Networks", new Hashtable(), "networks" },
        { "Networks", new object[] { new Hashtable() }, "networks[0]" },
    };

    [Theory]
    [MemberData(nameof(WrongTypes))]
    public void FromDictionary_WrongType_NamesKey(string key, object value, string expectedKey)
    {
        var table = new Hashtable { ["Name"] = "a" };
        table[key] = value;
        VmSpecException e = FailsTable(table);
        Assert.Equal(expectedKey, e.Key);
        Assert.Null(e.Line);
    }

    [Fact]
    public void FromDictionary_Validates()
    {
        VmSpecException e = FailsTable(new Hashtable { ["Name"] = "a", ["Memory"] = 1L << 20 });
        Assert.Equal("memory", e.Key);
    }

    // ------------------------------------------------------------------ ToYaml

    [Fact]
    public void ToYaml_WritesOnlySetKeys_SizesWithUnits()
    {
        var spec = new VmSpec { Name = "web", CpuCount = 2, MemoryBytes = 256 * MiB, MaxMemoryBytes = 1536 * MiB, Firmware = KvmFirmware.Uefi, Accelerator = KvmAcceleratorChoice.Qemu };
        spec.Disks.Add(new VmDiskSpec { SizeBytes = 2 * GiB });
        spec.Disks.Add(new VmDiskSpec { SizeBytes = 1_000_000_000 });
        string yaml = VmSpecYaml.ToYaml(spec);

        Assert.Contains("name: web\n", yaml);
        Assert.Contains("cpu: 2\n", yaml);
        Assert.Contains("memory: 256MiB\n", yaml);
        Assert.Contains("maxMemory: 1536MiB\n", yaml);
        Assert.Contains("firmware: uefi\n", yaml);
        Assert.Contains("accelerator: qemu\n", yaml);
        Assert.Contains("- size: 2GiB\n", yaml);
        Assert.Contains("- size: 1000000000\n", yaml);
        Assert.DoesNotContain("maxCpu", yaml);
        Assert.DoesNotContain("title", yaml);
        Assert.DoesNotContain("networks", yaml);
        Assert.DoesNotContain("noNetwork", yaml);
        Assert.DoesNotContain("start", yaml);
        Assert.DoesNotContain("device", yaml);
    }

    [Fact]
    public void ToYaml_DefaultsAreLeftOut()
    {
        string yaml = VmSpecYaml.ToYaml(new VmSpec { Name = "a" });
        Assert.Equal("name: a\n", yaml);
    }

    [Theory]
    [InlineData(0UL, "0")]
    [InlineData(1023UL, "1023")]
    [InlineData(1024UL, "1KiB")]
    [InlineData(1536UL * 1024 * 1024, "1536MiB")]
    [InlineData(2UL << 30, "2GiB")]
    [InlineData(3UL << 40, "3TiB")]
    [InlineData((1UL << 30) + 1, "1073741825")]
    public void FormatSize_ExactUnitsElseBytes(ulong bytes, string expected)
        => Assert.Equal(expected, VmSpecYaml.FormatSize(bytes));

    [Fact]
    public void RoundTrip_NastyNameAndMultiLineDescription()
    {
        var spec = new VmSpec
        {
            Name = "web'\"<x> & #1: ü",
            CpuCount = 3,
            MaxCpuCount = 8,
            MemoryBytes = 768 * MiB,
            MaxMemoryBytes = (2 * GiB) + 12345,
            Firmware = KvmFirmware.Uefi,
            Accelerator = KvmAcceleratorChoice.Kvm,
            MachineType = "pc-q35-8.2",
            CpuMode = "host-model",
            Kernel = "/boot/vmlinuz",
            Initrd = "/boot/initrd",
            KernelArguments = "console=ttyS0,115200 root=/dev/vda1 quiet # not a comment",
            Title = "null",
            Description = "First line: with a colon\n  indented line # hash\n\nlast line ü €",
            StoragePool = "true",
            Start = true,
        };
        spec.Disks.Add(new VmDiskSpec { SizeBytes = 20 * GiB, Format = "qcow2", Bus = "virtio", Pool = "fast" });
        spec.Disks.Add(new VmDiskSpec { BaseImage = "images/debian 12.qcow2", BaseImageFormat = "qcow2", SizeBytes = 30 * GiB });
        spec.Disks.Add(new VmDiskSpec { Path = "/isos/a: b.iso", Device = "cdrom", ReadOnly = true, Bus = "sata", Format = "raw" });
        spec.Networks.Add("default");
        spec.Networks.Add("- odd");
        spec.Networks.Add("123");

        string yaml = VmSpecYaml.ToYaml(spec);
        VmSpec back = VmSpecYaml.FromYaml(yaml);
        AssertEquivalent(spec, back);
    }

    [Theory]
    [InlineData("a\r\nb")]
    [InlineData("  leading spaces")]
    [InlineData("trailing newlines\n\n")]
    [InlineData("one trailing newline\n")]
    [InlineData("\n  starts with a newline")]
    [InlineData("tab\there")]
    [InlineData("€😀")]
    [InlineData("~")]
    [InlineData("")]
    [InlineData("yes")]
    [InlineData("0x1F")]
    [InlineData("1e3")]
    [InlineData(".5")]
    [InlineData("- x")]
    [InlineData("[a, b]")]
    [InlineData("{a: b}")]
    [InlineData("#x")]
    [InlineData("a: b")]
    [InlineData("'q'")]
    [InlineData("\"dq\"")]
    [InlineData("&anchor")]
    [InlineData("*alias")]
    [InlineData("!tag")]
    [InlineData("|pipe")]
    [InlineData("% percent")]
    [InlineData("@at")]
    [InlineData("line1\u2028line2")]
    [InlineData("nel\u0085x")]
    [InlineData("trailing space ")]
    [InlineData("spaces at line end  \nnext")]
    public void RoundTrip_DescriptionSurvivesExactly(string text)
    {
        var spec = new VmSpec { Name = "a", Description = text, Title = text, KernelArguments = text };
        spec.Networks.Add(text.Length == 0 ? "x" : text.Trim().Length == 0 ? "y" : text);
        VmSpec back = VmSpecYaml.FromYaml(VmSpecYaml.ToYaml(spec));
        Assert.Equal(text, back.Description);
        Assert.Equal(text, back.Title);
        Assert.Equal(text, back.KernelArguments);
        Assert.Equal(spec.Networks, back.Networks);
    }

    [Fact]
    public void RoundTrip_NoNetwork()
    {
        var spec = new VmSpec { Name = "iso", NoNetwork = true };
        spec.Disks.Add(new VmDiskSpec { Device = "cdrom" });
        string yaml = VmSpecYaml.ToYaml(spec);
        Assert.Contains("noNetwork: true", yaml);
        Assert.Contains("device: cdrom", yaml);
        AssertEquivalent(spec, VmSpecYaml.FromYaml(yaml));
    }

    // ------------------------------------------------------------------ FromDomainConfig

    private const string SampleXml = """
        <domain type='kvm'>
          <name>web1</name>
          <title>Web</title>
          <description>line one
        line two</description>
          <memory unit='KiB'>4194304</memory>
          <currentMemory unit='KiB'>2097152</currentMemory>
          <vcpu placement='static' current='2'>4</vcpu>
          <os firmware='efi'>
            <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
            <kernel>/boot/vmlinuz</kernel>
            <cmdline>console=ttyS0</cmdline>
          </os>
          <cpu mode='host-passthrough'/>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/var/lib/libvirt/images/web1.qcow2'/>
              <target dev='vda' bus='virtio'/>
            </disk>
            <disk type='file' device='cdrom'>
              <driver name='qemu' type='raw'/>
              <source file='/isos/debian.iso'/>
              <target dev='sda' bus='sata'/>
              <readonly/>
            </disk>
            <interface type='network'>
              <mac address='52:54:00:aa:bb:cc'/>
              <source network='default'/>
              <model type='virtio'/>
            </interface>
            <interface type='bridge'>
              <source bridge='br0'/>
            </interface>
          </devices>
        </domain>
        """;

    [Fact]
    public void FromDomainConfig_DescribesTheVm()
    {
        VmSpec s = VmSpecYaml.FromDomainConfig(DomainXml.Parse(SampleXml));

        Assert.Equal("web1", s.Name);
        Assert.Equal(2, s.CpuCount);
        Assert.Equal(4, s.MaxCpuCount);
        Assert.Equal(2 * GiB, s.MemoryBytes);
        Assert.Equal(4 * GiB, s.MaxMemoryBytes);
        Assert.Equal(KvmFirmware.Uefi, s.Firmware);
        Assert.Equal(KvmAcceleratorChoice.Kvm, s.Accelerator);
        Assert.Equal("pc-q35-8.2", s.MachineType);
        Assert.Equal("host-passthrough", s.CpuMode);
        Assert.Equal("/boot/vmlinuz", s.Kernel);
        Assert.Null(s.Initrd);
        Assert.Equal("console=ttyS0", s.KernelArguments);
        Assert.Equal("Web", s.Title);
        Assert.Equal("line one\nline two", s.Description);

        Assert.Equal(2, s.Disks.Count);
        VmDiskSpec disk = s.Disks[0];
        Assert.Equal("/var/lib/libvirt/images/web1.qcow2", disk.Path);
        Assert.Equal("qcow2", disk.Format);
        Assert.Equal("virtio", disk.Bus);
        Assert.Equal("disk", disk.Device);
        Assert.False(disk.ReadOnly);
        Assert.Null(disk.SizeBytes);
        VmDiskSpec cd = s.Disks[1];
        Assert.Equal("/isos/debian.iso", cd.Path);
        Assert.Equal("raw", cd.Format);
        Assert.Equal("sata", cd.Bus);
        Assert.Equal("cdrom", cd.Device);
        Assert.True(cd.ReadOnly);

        Assert.Equal(["default"], s.Networks);
        Assert.False(s.NoNetwork);
        Assert.False(s.Start);
    }

    [Fact]
    public void FromDomainConfig_ExportsValidYamlThatReadsBack()
    {
        VmSpec s = VmSpecYaml.FromDomainConfig(DomainXml.Parse(SampleXml));
        string yaml = VmSpecYaml.ToYaml(s);
        Assert.Contains("- path: /var/lib/libvirt/images/web1.qcow2\n", yaml);
        Assert.Contains("memory: 2GiB\n", yaml);
        Assert.Contains("maxMemory: 4GiB\n", yaml);
        Assert.DoesNotContain("size:", yaml);
        AssertEquivalent(s, VmSpecYaml.FromYaml(yaml));
    }

    [Fact]
    public void FromDomainConfig_NoAdapters_QemuType_NoMaximums()
    {
        const string xml = """
            <domain type='qemu'>
              <name>bare</name>
              <memory unit='MiB'>512</memory>
              <vcpu>1</vcpu>
              <os><type arch='x86_64'>hvm</type></os>
              <devices/>
            </domain>
            """;
        VmSpec s = VmSpecYaml.FromDomainConfig(DomainXml.Parse(xml));
        Assert.Equal("bare", s.Name);
        Assert.Equal(KvmAcceleratorChoice.Qemu, s.Accelerator);
        Assert.Equal(KvmFirmware.Bios, s.Firmware);
        Assert.Equal(512 * MiB, s.MemoryBytes);
        Assert.Null(s.MaxMemoryBytes);
        Assert.Equal(1, s.CpuCount);
        Assert.Null(s.MaxCpuCount);
        Assert.True(s.NoNetwork);
        Assert.Empty(s.Networks);
        Assert.Empty(s.Disks);
        Assert.Null(s.MachineType);
        Assert.Null(s.CpuMode);
    }

    [Fact]
    public void FromDomainConfig_OtherDomainType_IsAuto_OnlyBridgeAdapter_GivesNoNetworks()
    {
        const string xml = """
            <domain type='test'>
              <name>t</name>
              <memory unit='KiB'>1048576</memory>
              <vcpu>2</vcpu>
              <devices>
                <interface type='bridge'><source bridge='br0'/></interface>
              </devices>
            </domain>
            """;
        VmSpec s = VmSpecYaml.FromDomainConfig(DomainXml.Parse(xml));
        Assert.Equal(KvmAcceleratorChoice.Auto, s.Accelerator);
        Assert.Empty(s.Networks);
        Assert.False(s.NoNetwork);
    }

    private static void AssertEquivalent(VmSpec expected, VmSpec actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.CpuCount, actual.CpuCount);
        Assert.Equal(expected.MaxCpuCount, actual.MaxCpuCount);
        Assert.Equal(expected.MemoryBytes, actual.MemoryBytes);
        Assert.Equal(expected.MaxMemoryBytes, actual.MaxMemoryBytes);
        Assert.Equal(expected.NoNetwork, actual.NoNetwork);
        Assert.Equal(expected.Firmware, actual.Firmware);
        Assert.Equal(expected.Accelerator, actual.Accelerator);
        Assert.Equal(expected.MachineType, actual.MachineType);
        Assert.Equal(expected.CpuMode, actual.CpuMode);
        Assert.Equal(expected.Kernel, actual.Kernel);
        Assert.Equal(expected.Initrd, actual.Initrd);
        Assert.Equal(expected.KernelArguments, actual.KernelArguments);
        Assert.Equal(expected.Title, actual.Title);
        Assert.Equal(expected.Description, actual.Description);
        Assert.Equal(expected.StoragePool, actual.StoragePool);
        Assert.Equal(expected.Start, actual.Start);
        Assert.Equal(expected.Networks, actual.Networks);
        Assert.Equal(expected.Disks.Count, actual.Disks.Count);
        for (int i = 0; i < expected.Disks.Count; i++)
        {
            VmDiskSpec e = expected.Disks[i];
            VmDiskSpec a = actual.Disks[i];
            Assert.Equal(e.SizeBytes, a.SizeBytes);
            Assert.Equal(e.Path, a.Path);
            Assert.Equal(e.BaseImage, a.BaseImage);
            Assert.Equal(e.BaseImageFormat, a.BaseImageFormat);
            Assert.Equal(e.Pool, a.Pool);
            Assert.Equal(e.Format, a.Format);
            Assert.Equal(e.Bus, a.Bus);
            Assert.Equal(e.Device, a.Device);
            Assert.Equal(e.ReadOnly, a.ReadOnly);
        }
    }
}
