using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Backend;

namespace KvmPS.Commands;

/// <summary>Gets where a VM's display (VNC/SPICE) and serial console can be reached.</summary>
[Cmdlet(VerbsCommon.Get, "KvmVmConsole", DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmVmConsole))]
public sealed class GetKvmVmConsoleCommand : KvmVmCmdlet
{
    protected override void ProcessVm(KvmVm vm)
        => WriteObject(KvmVmConsole.FromXml(vm.Connection.Invoke(c => c.GetDomainXml(vm.Ref, DomainXmlFlags.None)), vm.Connection));
}
