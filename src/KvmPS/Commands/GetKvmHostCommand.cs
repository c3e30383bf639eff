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

    /// <summary>How many hosts are asked at once (the output stays in the order the hosts were given).</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 16;

    protected override int ConnectionThrottleLimit => ThrottleLimit;

    protected override void ProcessConnection(KvmConnection connection)
        => WriteObject(HostService.GetHost(connection, TimeSpan.FromSeconds(SampleIntervalSec), CancelToken));
}
