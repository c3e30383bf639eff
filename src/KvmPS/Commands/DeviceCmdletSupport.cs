using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Finds the VM a piped device object (KvmVmDisk, KvmVmNetworkAdapter) belongs to.</summary>
internal static class DeviceCmdletSupport
{
    /// <summary>The device's VM on the device's own connection, by UUID (else name). Throws VmNotFound.</summary>
    public static KvmVm Owner(KvmConnection? connection, Guid? uuid, string? name, object input)
    {
        if (connection is null || (uuid is null && string.IsNullOrEmpty(name)))
        {
            throw new KvmOperationException("VmNotFound", $"'{input}' does not say which VM it belongs to (no VMName/Connection).", input)
            {
                Kind = KvmErrorKind.InvalidArgument,
                Hint = "Pipe objects from Get-KvmVmDisk, Get-KvmVmNetworkAdapter or Get-KvmVm, or use -VMName.",
            };
        }

        connection.Open();
        KvmVm? vm = uuid is { } u ? VmService.GetByUuid(connection, u) : VmService.GetByName(connection, name!);
        return vm ?? throw new KvmOperationException("VmNotFound", $"VM '{name}' no longer exists on {connection.Uri}.", name) { Kind = KvmErrorKind.NotFound };
    }
}
