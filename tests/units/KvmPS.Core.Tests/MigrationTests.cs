using System.Diagnostics;
using System.Text.Json;
using System.Xml.Linq;
using KvmPS.Core.Backend;
using KvmPS.Core.Services;

namespace KvmPS.Core.Tests;

/// <summary>The pure parts of moving and copying VMs: repointing a definition, progress from job statistics.</summary>
public sealed class MigrationPlanTests
{
    private const string Domain = """
        <domain type='qemu'><name>web1</name><devices>
          <disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='p1' volume='web1.img'/><backingStore/><target dev='vda' bus='virtio'/></disk>
          <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
          <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/a/data.qcow2'/><target dev='vdb' bus='virtio'/></disk>
        </devices></domain>
        """;

    [Fact]
    public void Repoint_ChangesOnlyTheCopiedDisks_ToPlainFilesOfTheirFormat()
    {
        var copies = new[]
        {
            new KvmMigrationDisk("vda", "/p1/web1.img", "raw", 1, 1) { DestinationPool = "q", DestinationVolume = "web1.img", DestinationPath = "/q/web1.img" },
        };
        XElement d = XElement.Parse(MigrationService.Repoint(Domain, copies));
        XElement[] disks = d.Element("devices")!.Elements("disk").ToArray();
        Assert.Equal("file", (string?)disks[0].Attribute("type"));
        Assert.Equal("/q/web1.img", (string?)disks[0].Element("source")!.Attribute("file"));
        Assert.Null(disks[0].Element("source")!.Attribute("pool"));
        Assert.Null(disks[0].Element("backingStore"));
        Assert.Equal("raw", (string?)disks[0].Element("driver")!.Attribute("type"));
        Assert.Equal("/iso/x.iso", (string?)disks[1].Element("source")!.Attribute("file"));
        Assert.Equal("/a/data.qcow2", (string?)disks[2].Element("source")!.Attribute("file"));
    }

    [Fact]
    public void Progress_ComesFromTheJobStatistics_AndNeverClaimsDoneBeforeTheEnd()
    {
        TypedParameter[] stats =
        [
            new("data_total", TypedParameterType.ULLong, 1000UL), new("data_processed", TypedParameterType.ULLong, 1000UL),
            new("data_remaining", TypedParameterType.ULLong, 0UL), new("disk_processed", TypedParameterType.ULLong, 600UL),
        ];
        KvmMigrationProgress p = MigrationService.ToProgress("web1", TimeSpan.FromSeconds(2), stats);
        Assert.Equal(1000UL, p.DataTotalBytes);
        Assert.Equal(600UL, p.DiskProcessedBytes);
        Assert.Equal(99, p.Percent);
        Assert.Equal(-1, MigrationService.ToProgress("web1", TimeSpan.Zero, []).Percent);
    }

    [Fact]
    public void Plan_FailsOnTheFirstFailedCheck_WithItsErrorId()
    {
        var plan = new KvmMigrationPlan
        {
            Checks = [new("State", true, "running"), new("Networks", false, "'lan' does not exist", "NetworkMissing"), new("Memory", false, "x", "InsufficientMemory")],
        };
        Assert.False(plan.Passed);
        Assert.Equal("NetworkMissing", plan.FirstFailure!.ErrorId);
    }
}

/// <summary>An export folder is untrusted input: every way out of it, and every lie in its manifest, is refused.</summary>
public sealed class ExportFolderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmps-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void Write(object manifest) => File.WriteAllText(Path.Combine(_dir, VmExportService.ManifestName), JsonSerializer.Serialize(manifest));

    private static object Manifest(string file, string format, long size) => new
    {
        version = 1, name = "web1", uuid = Guid.NewGuid(), definition = "domain.xml",
        disks = new[] { new { target = "vda", file, format, sizeBytes = size } },
    };

    private void Image(string name, params string[] qemuImgArgs)
    {
        var psi = new ProcessStartInfo("qemu-img") { UseShellExecute = false };
        foreach (string a in new[] { "create", "-q" }.Concat(qemuImgArgs).Append(Path.Combine(_dir, name)).Append("1M"))
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    private KvmOperationException Refused() => Assert.Throws<KvmOperationException>(() => VmExportService.ReadManifest(_dir));

    [Fact]
    public void AGoodFolder_IsRead_WithTheQcow2SizeFromItsHeader()
    {
        File.WriteAllText(Path.Combine(_dir, "domain.xml"), "<domain/>");
        Image("vda.qcow2", "-f", "qcow2");
        Write(Manifest("vda.qcow2", "qcow2", new FileInfo(Path.Combine(_dir, "vda.qcow2")).Length));
        VmExportService.Manifest m = VmExportService.ReadManifest(_dir);
        Assert.Equal(1024UL * 1024, m.Disks[0].CapacityBytes);
    }

    [Theory]
    [InlineData("../outside.raw")]
    [InlineData("/etc/hostname")]
    [InlineData("sub/vda.raw")]
    [InlineData("..")]
    [InlineData("")]
    public void AFileNameThatLeavesTheFolder_IsRefused(string name)
    {
        File.WriteAllText(Path.Combine(_dir, "domain.xml"), "<domain/>");
        Write(Manifest(name, "raw", 5));
        Assert.Equal("ExportInvalid", Refused().ErrorId);
    }

    [Fact]
    public void ALinkToAHostFile_IsRefused()
    {
        File.WriteAllText(Path.Combine(_dir, "domain.xml"), "<domain/>");
        File.CreateSymbolicLink(Path.Combine(_dir, "vda.raw"), "/etc/hostname");
        Write(Manifest("vda.raw", "raw", new FileInfo("/etc/hostname").Length));
        Assert.Equal("ExportInvalid", Refused().ErrorId);
    }

    [Fact]
    public void AQcow2WithABackingFile_IsRefused_AndAWrongSizeOrFormat()
    {
        File.WriteAllText(Path.Combine(_dir, "domain.xml"), "<domain/>");
        Image("vda.qcow2", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname");
        long size = new FileInfo(Path.Combine(_dir, "vda.qcow2")).Length;
        Write(Manifest("vda.qcow2", "qcow2", size));
        Assert.Equal("ImageBackingRefused", Refused().ErrorId);
        Write(Manifest("vda.qcow2", "qcow2", size + 1));
        Assert.Equal("ExportInvalid", Refused().ErrorId);
        Write(Manifest("vda.qcow2", "vmdk", size));
        Assert.Equal("ExportInvalid", Refused().ErrorId);
    }

    [Fact]
    public void AHugeOrGarbageManifest_IsRefused()
    {
        File.WriteAllText(Path.Combine(_dir, VmExportService.ManifestName), new string('x', 2 * 1024 * 1024));
        Assert.Equal("ExportInvalid", Refused().ErrorId);
        File.WriteAllText(Path.Combine(_dir, VmExportService.ManifestName), "{ not json");
        Assert.Equal("ExportInvalid", Refused().ErrorId);
    }
}
