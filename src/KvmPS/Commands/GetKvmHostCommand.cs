using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets a host's size, current CPU and memory usage, and VM allocation.</summary>
[Cmdlet(VerbsCommon.Get, "KvmHost")]
[OutputType(typeof(KvmHostInfo))]
public sealed class GetKvmHostCommand : KvmCmdlet
{
    /// <summary>Seconds between the two samples of the host's CPU times; 0 skips the CPU usage.</summary>
    [Parameter]
    [ValidateRange(0.0, 60.0)]
    public double SampleIntervalSec { get; set; } = HostService.DefaultCpuSampleInterval.TotalSeconds;

    protected override void ProcessConnection(KvmConnection connection)
        => WriteObject(HostService.GetHost(connection, TimeSpan.FromSeconds(SampleIntervalSec), CancelToken));
}
