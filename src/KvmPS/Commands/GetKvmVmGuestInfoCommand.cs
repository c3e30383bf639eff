using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Gets what the guest agent reports: OS, kernel, host name, time zone, users, file systems.</summary>
[Cmdlet(VerbsCommon.Get, "KvmVmGuestInfo", DefaultParameterSetName = VMSet)]
[OutputType(typeof(KvmGuestInfo))]
public sealed class GetKvmVmGuestInfoCommand : KvmVmCmdlet
{
    protected override void ProcessVm(KvmVm vm) => WriteObject(GuestService.GetInfo(vm));
}
