using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;
using KvmPS.Transforms;

namespace KvmPS.Commands;

/// <summary>Changes a VM's vCPUs, memory, autostart, title and description; live where possible, always persistent.</summary>
[Cmdlet(VerbsCommon.Set, "KvmVm", SupportsShouldProcess = true, DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVm))]
public sealed class SetKvmVmCommand : KvmVmCmdlet
{
    [Parameter]
    [ValidateRange(1, 4096)]
    public int? CpuCount { get; set; }

    [Parameter]
    [ValidateRange(1, 4096)]
    public int? MaxCpuCount { get; set; }

    [Parameter]
    [ByteSizeTransformation]
    public ulong? MemoryBytes { get; set; }

    [Parameter]
    [ByteSizeTransformation]
    public ulong? MaxMemoryBytes { get; set; }

    [Parameter]
    public bool? Autostart { get; set; }

    [Parameter]
    [AllowEmptyString]
    public string? Description { get; set; }

    [Parameter]
    [AllowEmptyString]
    public string? Title { get; set; }

    [Parameter]
    public SwitchParameter Passthru { get; set; }

    protected override void ProcessVm(KvmVm vm)
    {
        var change = new VmChange
        {
            CpuCount = CpuCount,
            MaxCpuCount = MaxCpuCount,
            MemoryBytes = MemoryBytes,
            MaxMemoryBytes = MaxMemoryBytes,
            Autostart = Autostart,
            Description = Description,
            Title = Title,
        };
        var what = new List<string>();
        if (CpuCount is not null) what.Add($"CpuCount={CpuCount}");
        if (MaxCpuCount is not null) what.Add($"MaxCpuCount={MaxCpuCount}");
        if (MemoryBytes is not null) what.Add($"Memory={ByteSize.Format(MemoryBytes.Value)}");
        if (MaxMemoryBytes is not null) what.Add($"MaxMemory={ByteSize.Format(MaxMemoryBytes.Value)}");
        if (Autostart is not null) what.Add($"Autostart={Autostart}");
        if (Title is not null) what.Add("Title");
        if (Description is not null) what.Add("Description");
        if (what.Count > 0 && !ShouldProcess(Describe(vm), $"Set {string.Join(", ", what)}"))
        {
            return;
        }

        if (what.Count > 0)
        {
            VmChanges.Set(vm, change, this);
        }

        if (Passthru)
        {
            WriteVm(vm);
        }
    }
}
