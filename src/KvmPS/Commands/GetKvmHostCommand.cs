using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets a host's size, free memory and VM allocation.</summary>
[Cmdlet(VerbsCommon.Get, "KvmHost")]
[OutputType(typeof(KvmHostInfo))]
public sealed class GetKvmHostCommand : KvmCmdlet
{
    protected override void ProcessConnection(KvmConnection connection)
        => WriteObject(HostService.GetHost(connection, CancelToken));
}
