using System.Collections;
using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;
using KvmPS.Yaml;

namespace KvmPS.Commands;

/// <summary>Creates a VM with exactly the resources asked for, from parameters or a spec (YAML file or hashtable).</summary>
[Cmdlet(VerbsCommon.New, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = ParamSet)]
[OutputType(typeof(KvmVm))]
public sealed class NewKvmVmCommand : KvmCmdlet
{
    protected override bool CreatesOnOneHost => true;

    protected override object? CreationTarget => _spec?.Name ?? (object?)Name ?? Spec;

    private const string ParamSet = "Parameters";
    private const string SpecSet = "Spec";
    private VmSpec? _spec;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = ParamSet)]
    [Parameter(ParameterSetName = SpecSet)]
    [Alias("VMName")]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateRange(1, 4096)]
    public int? CpuCount { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateRange(1, 4096)]
    public int? MaxCpuCount { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ByteSizeTransformation]
    [Alias("MemoryStartupBytes")]
    public ulong? MemoryBytes { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ByteSizeTransformation]
    public ulong? MaxMemoryBytes { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ByteSizeTransformation]
    [Alias("NewVHDSizeBytes")]
    public ulong? DiskSizeBytes { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string? DiskPath { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string? BaseImage { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateSet("qcow2", "raw")]
    public string? Format { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string? StoragePool { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    [Alias("SwitchName")]
    public string[]? Network { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    public SwitchParameter NoNetwork { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    public KvmFirmware Firmware { get; set; } = KvmFirmware.Bios;

    [Parameter(ParameterSetName = ParamSet)]
    public KvmAcceleratorChoice Accelerator { get; set; } = KvmAcceleratorChoice.Auto;

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string? MachineType { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateSet("host-passthrough", "host-model", "maximum", "custom")]
    public string? CpuMode { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string? Kernel { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string? Initrd { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    public string? KernelArguments { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    public string? Description { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    public string? Title { get; set; }

    /// <summary>Attach a cloud-init NoCloud seed built from the parameters below.</summary>
    [Parameter(ParameterSetName = ParamSet)]
    public SwitchParameter CloudInit { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNull]
    public object? UserData { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string[]? SshPublicKey { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string? HostName { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNullOrEmpty]
    public string? User { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNull]
    public System.Security.SecureString? Password { get; set; }

    [Parameter(ParameterSetName = ParamSet)]
    [ValidateNotNull]
    public object? NetworkConfig { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = SpecSet)]
    [ValidateNotNull]
    public object? Spec { get; set; }

    [Parameter]
    public SwitchParameter Start { get; set; }

    /// <summary>Creates the VM on the one host of -Connection (or the default connections) with the most room for it (Find-KvmHost's ranking).</summary>
    [Parameter]
    public SwitchParameter Placement { get; set; }

    // The ShouldProcess text's note on why this host was picked (-Placement).
    private string? _placedBecause;

    protected override void ProcessRecord()
    {
        try
        {
            _spec = ParameterSetName == SpecSet ? ReadSpec() : FromParameters();
            if (Name is not null)
            {
                _spec.Name = Name;
            }

            if (Start)
            {
                _spec.Start = true;
            }

            VmSpecValidator.Validate(_spec);
        }
        catch (VmSpecException e)
        {
            WriteError(ErrorRecords.FromSpec(e, Spec is string path ? path : (object?)Name ?? Spec));
            return;
        }

        if (Placement)
        {
            Place();
            return;
        }

        base.ProcessRecord();
    }

    /// <summary>-Placement: ranks the hosts for the spec (Core's PlacementService) and creates on the best one only.</summary>
    private void Place()
    {
        VmSpec spec = _spec!;
        IReadOnlyList<KvmConnection> connections = Connection is { Length: > 0 } given ? given : ModuleState.Implicit();
        var request = new KvmPlacementRequest
        {
            CpuCount = spec.CpuCount ?? 1,
            MemoryBytes = spec.MemoryBytes ?? 1UL << 30,
            DiskSizeBytes = (ulong)spec.Disks.Where(d => d.SizeBytes is not null && d.Path is null && d.BaseImage is null).Sum(d => (decimal)d.SizeBytes!.Value),
            StoragePool = spec.Disks.Select(d => d.Pool).FirstOrDefault(p => p is not null) ?? spec.StoragePool ?? VmProvisioner.DefaultPool,
            Networks = spec.Networks,
        };
        IReadOnlyList<KvmHostPlacement> ranked = RankHosts(connections, request, 16);
        if (ranked.FirstOrDefault(p => p.Fits) is not { Connection: { } best } chosen)
        {
            if (ranked.Count > 0)
            {
                WriteError(ErrorRecords.NoHostFits(FindKvmHostCommand.Describe(request), ranked));
            }

            return;
        }

        _placedBecause = $"placed on the best of {ranked.Count} host(s): score {chosen.Score:0.####}, vCPU:CPU {chosen.CpuRatioAfter:0.##} and {ByteSize.Format((ulong)chosen.FreeMemoryAfterBytes)} uncommitted memory after";
        WriteVerbose($"Placement: '{chosen.Uri}' ({_placedBecause})");
        try
        {
            ProcessConnection(best);
        }
        catch (LibvirtException e)
        {
            WriteError(ErrorRecords.FromLibvirt(e, best.Uri));
        }
    }

    protected override void ProcessConnection(KvmConnection connection)
    {
        VmSpec spec = _spec!;
        string disks = spec.Disks.Count == 0 ? "no disk" : string.Join(", ", spec.Disks.Select(d =>
            d.BaseImage is not null ? $"overlay on {d.BaseImage}" : d.SizeBytes is { } s ? $"new {ByteSize.Format(s)} disk" : d.Path ?? "empty drive"));
        string what = $"Create VM ({spec.CpuCount ?? 1} vCPU, {ByteSize.Format(spec.MemoryBytes ?? 1UL << 30)}, {disks}{(spec.CloudInit is { } ci ? ", " + ci.Summary : string.Empty)}{(spec.Start ? ", start it" : string.Empty)}{(_placedBecause is null ? string.Empty : "; " + _placedBecause)})";
        if (!ShouldProcess($"{spec.Name} on {connection.HostName ?? connection.Uri}", what))
        {
            return;
        }

        try
        {
            WriteObject(VmProvisioner.Create(connection, spec, this, CancelToken));
        }
        catch (KvmOperationException e)
        {
            WriteError(ErrorRecords.FromOperation(e, e.Target ?? spec.Name));
        }
        catch (VmSpecException e)
        {
            WriteError(ErrorRecords.FromSpec(e, spec.Name));
        }
    }

    private VmSpec FromParameters()
    {
        var spec = new VmSpec
        {
            Name = Name ?? string.Empty,
            CpuCount = CpuCount,
            MaxCpuCount = MaxCpuCount,
            MemoryBytes = MemoryBytes,
            MaxMemoryBytes = MaxMemoryBytes,
            NoNetwork = NoNetwork,
            Firmware = Firmware,
            Accelerator = Accelerator,
            MachineType = MachineType,
            CpuMode = CpuMode,
            Kernel = Kernel,
            Initrd = Initrd,
            KernelArguments = KernelArguments,
            Description = Description,
            Title = Title,
            StoragePool = StoragePool,
        };
        if (Network is not null)
        {
            spec.Networks.AddRange(Network);
        }

        if (Format is not null && DiskSizeBytes is null && DiskPath is null && BaseImage is null)
        {
            throw new VmSpecException("format", "-Format describes the disk of -DiskPath, -BaseImage or -DiskSizeBytes; none was given.");
        }

        if (DiskSizeBytes is not null || DiskPath is not null || BaseImage is not null)
        {
            spec.Disks.Add(new VmDiskSpec
            {
                SizeBytes = DiskSizeBytes,
                Path = DiskPath,
                BaseImage = BaseImage,
                Pool = StoragePool,
                // -Format names the format of the image given: the base image's, an existing -DiskPath's, or a new disk's
                Format = BaseImage is null ? Format : null,
                BaseImageFormat = BaseImage is null ? null : Format,
            });
        }

        bool cloudParams = UserData is not null || SshPublicKey is not null || HostName is not null || User is not null || Password is not null || NetworkConfig is not null;
        if (cloudParams && !CloudInit)
        {
            throw new VmSpecException("cloudInit", "-UserData, -SshPublicKey, -HostName, -User, -Password and -NetworkConfig need -CloudInit.");
        }

        if (CloudInit)
        {
            spec.CloudInit = CloudInitYaml.Compose(spec.Name, new CloudInitYaml.Options
            {
                UserData = UserData,
                SshPublicKey = SshPublicKey,
                HostName = HostName,
                User = User,
                Password = Password is null ? null : new System.Net.NetworkCredential(string.Empty, Password).Password,
                NetworkConfig = NetworkConfig,
            }, p => SessionState.Path.GetUnresolvedProviderPathFromPSPath(p));
        }

        return spec;
    }

    private VmSpec ReadSpec()
    {
        object value = Spec is PSObject p ? p.BaseObject : Spec!;
        switch (value)
        {
            case IDictionary table:
                return VmSpecYaml.FromDictionary(table, validate: false);
            case string path:
                string full = SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
                if (!File.Exists(full))
                {
                    throw new VmSpecException("spec", $"the spec file '{full}' does not exist.");
                }

                WriteVerbose($"Reading VM spec {full}");
                return VmSpecYaml.FromYaml(File.ReadAllText(full), validate: false);
            case FileInfo file:
                return VmSpecYaml.FromYaml(File.ReadAllText(file.FullName), validate: false);
            default:
                throw new VmSpecException("spec", $"-Spec takes a YAML file path or a hashtable, not {value.GetType().Name}.");
        }
    }
}
