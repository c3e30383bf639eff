using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Tells whether a host can run KVM guests, and with what.</summary>
[Cmdlet(VerbsCommon.Get, "KvmHostCapability")]
[OutputType(typeof(KvmHostCapability))]
public sealed class GetKvmHostCapabilityCommand : KvmCmdlet
{
    protected override void ProcessConnection(KvmConnection connection)
    {
        KvmHostCapability cap = HostService.GetCapability(connection);
        foreach (KvmHostCheck check in cap.Checks)
        {
            WriteVerbose($"{check.Name}: {check.Result} - {check.Detail}");
        }

        WriteObject(cap);
    }
}
