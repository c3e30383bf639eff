using System.Management.Automation;
using KvmPS.Core;

namespace KvmPS;

/// <summary>The one mapping from libvirt failures to ErrorRecords: stable ErrorIds, the user's input as target.</summary>
internal static class ErrorRecords
{
    public static ErrorRecord FromLibvirt(LibvirtException e, object? target, string? idOverride = null)
    {
        (string id, ErrorCategory category) = e.Code switch
        {
            LibvirtErrorCode.LibraryNotLoaded => ("LibvirtNotInstalled", ErrorCategory.ResourceUnavailable),
            LibvirtErrorCode.ConnectionLost => ("ConnectionLost", ErrorCategory.ConnectionError),
            LibvirtErrorCode.OperationTimeout => ("OperationTimeout", ErrorCategory.OperationTimeout),
            LibvirtErrorCode.NoDomain => ("VmNotFound", ErrorCategory.ObjectNotFound),
            LibvirtErrorCode.AuthFailed or LibvirtErrorCode.AuthCancelled or LibvirtErrorCode.AuthUnavailable => ("LibvirtAuthFailed", ErrorCategory.AuthenticationError),
            LibvirtErrorCode.AccessDenied or LibvirtErrorCode.OperationDenied => ("LibvirtAccessDenied", ErrorCategory.PermissionDenied),
            LibvirtErrorCode.NoSupport or LibvirtErrorCode.ArgumentUnsupported or LibvirtErrorCode.OperationUnsupported => ("LibvirtNotSupported", ErrorCategory.NotImplemented),
            LibvirtErrorCode.OperationInvalid => ("LibvirtOperationInvalid", ErrorCategory.InvalidOperation),
            LibvirtErrorCode.InvalidArg => ("LibvirtInvalidArgument", ErrorCategory.InvalidArgument),
            LibvirtErrorCode.XmlError or LibvirtErrorCode.XmlDetail or LibvirtErrorCode.XmlInvalidSchema => ("LibvirtInvalidXml", ErrorCategory.InvalidData),
            _ when e.IsConnectionFailure => ("ConnectionLost", ErrorCategory.ConnectionError),
            _ => ("LibvirtError", ErrorCategory.NotSpecified),
        };
        return new ErrorRecord(e, idOverride ?? e.ErrorId ?? id, category, target)
        {
            ErrorDetails = new ErrorDetails(e.Message) { RecommendedAction = e.Hint ?? string.Empty },
        };
    }

    /// <summary>A connection that could not be opened: KvmConnectionFailed (or LibvirtNotInstalled / LibvirtAuthFailed).</summary>
    public static ErrorRecord ConnectionFailed(LibvirtException e, object target)
    {
        string? id = e.Code switch
        {
            LibvirtErrorCode.LibraryNotLoaded or LibvirtErrorCode.ConnectionLost => null,
            LibvirtErrorCode.AuthFailed or LibvirtErrorCode.AuthCancelled or LibvirtErrorCode.AuthUnavailable => null,
            _ => "KvmConnectionFailed",
        };
        if (id is null)
        {
            return FromLibvirt(e, target);
        }

        return new ErrorRecord(e, id, ErrorCategory.ConnectionError, target)
        {
            ErrorDetails = new ErrorDetails($"Cannot connect to '{target}': {e.Message}")
            {
                RecommendedAction = e.Hint ?? "Check the URI (for example qemu:///system, qemu+ssh://user@host/system, test:///default) and that libvirtd runs on the host.",
            },
        };
    }

    /// <summary>A creating cmdlet without -Connection while several hosts are connected: AmbiguousConnection.</summary>
    public static ErrorRecord AmbiguousConnection(string command, object? target, IEnumerable<string> hosts)
    {
        string list = string.Join(", ", hosts.Select(h => $"'{h}'"));
        string message = $"{command} creates on one host, but {list} are all default connections (Connect-KvmHost). Nothing was created.";
        return new ErrorRecord(new ArgumentException(message, "Connection"), "AmbiguousConnection", ErrorCategory.InvalidArgument, target)
        {
            ErrorDetails = new ErrorDetails(message) { RecommendedAction = $"Pass -Connection to name the host to create on (one of {list})." },
        };
    }

    /// <summary>Placement (Find-KvmHost, New-KvmVm -Placement) found no host that can take the VM: each host's reasons.</summary>
    public static ErrorRecord NoHostFits(object target, IEnumerable<Core.KvmHostPlacement> hosts)
    {
        List<Core.KvmHostPlacement> all = hosts.ToList();
        string why = string.Join(" ", all.Take(10).Select(h => $"'{h.Uri}': {string.Join("; ", h.ExcludedBecause)}."))
            + (all.Count > 10 ? $" (and {all.Count - 10} more hosts)" : string.Empty);
        string message = $"No host can take a VM of {target}. {why}";
        return new ErrorRecord(new InvalidOperationException(message), "NoHostFits", ErrorCategory.ResourceUnavailable, target)
        {
            ErrorDetails = new ErrorDetails(message)
            {
                RecommendedAction = "Free room on a host, connect another host, or ask for less (Find-KvmHost -IncludeExcluded shows every host's figures).",
            },
        };
    }

    /// <summary>VmNotFound for a name, id or UUID the user gave (<paramref name="what"/>: "named 'x'", "with id 5").</summary>
    public static ErrorRecord VmNotFound(object input, string what, string uri)
        => new(new ItemNotFoundException($"No VM {what} on {uri}."), "VmNotFound", ErrorCategory.ObjectNotFound, input)
        {
            ErrorDetails = new ErrorDetails($"No VM {what} on {uri}.") { RecommendedAction = "Run Get-KvmVm to list the VMs on that host." },
        };

    /// <summary>A KvmPS operation failure: its own stable ErrorId, the category that fits it.</summary>
    public static ErrorRecord FromOperation(KvmPS.Core.Services.KvmOperationException e, object? target)
    {
        ErrorCategory category = e.Kind switch
        {
            KvmPS.Core.Services.KvmErrorKind.NotFound => ErrorCategory.ObjectNotFound,
            KvmPS.Core.Services.KvmErrorKind.AlreadyExists => ErrorCategory.ResourceExists,
            KvmPS.Core.Services.KvmErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
            KvmPS.Core.Services.KvmErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
            KvmPS.Core.Services.KvmErrorKind.Unavailable => ErrorCategory.ResourceUnavailable,
            KvmPS.Core.Services.KvmErrorKind.NotSupported => ErrorCategory.NotImplemented,
            KvmPS.Core.Services.KvmErrorKind.Timeout => ErrorCategory.OperationTimeout,
            KvmPS.Core.Services.KvmErrorKind.WriteError => ErrorCategory.WriteError,
            KvmPS.Core.Services.KvmErrorKind.InvalidData => ErrorCategory.InvalidData,
            KvmPS.Core.Services.KvmErrorKind.InUse => ErrorCategory.ResourceBusy,
            _ => ByErrorId(e.ErrorId),
        };
        return new ErrorRecord(e, e.ErrorId, category, target)
        {
            ErrorDetails = new ErrorDetails(e.Message) { RecommendedAction = e.Hint ?? string.Empty },
        };
    }

    private static ErrorCategory ByErrorId(string errorId)
    {
        return errorId switch
        {
            "VmStateInvalid" or "BackupCheckpointConflict" => ErrorCategory.InvalidOperation,
            "SnapshotExists" or "DestinationNotEmpty" => ErrorCategory.ResourceExists,
            "DestinationUnwritable" => ErrorCategory.WriteError,
            "SnapshotNotFound" or "NoFullBackup" or "CheckpointMissing" or "BackupNotFound" or "QemuImgNotFound" => ErrorCategory.ObjectNotFound,
            "SnapshotUnsupported" or "SnapshotRenameUnsupported" or "BackupRemoteUnsupported" or "BackupCheckpointUnsupported" => ErrorCategory.NotImplemented,
            "GuestAgentUnavailable" => ErrorCategory.ResourceUnavailable,
            "QemuImgFailed" or "BackupFailed" => ErrorCategory.WriteError,
            "BackupSetInvalid" or "BackupIncomplete" => ErrorCategory.InvalidData,
            "ConflictingParameters" or "BackupSetMismatch" => ErrorCategory.InvalidArgument,
            "StopTimeout" or "WaitTimeout" => ErrorCategory.OperationTimeout,
            "VmExists" or "DiskExists" => ErrorCategory.ResourceExists,
            "VmNotFound" or "StoragePoolNotFound" or "NetworkNotFound" or "BaseImageNotFound" or "DiskNotFound" => ErrorCategory.ObjectNotFound,
            "InvalidName" or "InvalidMemory" or "CpuCountTooHigh" or "MemoryTooHigh" => ErrorCategory.InvalidArgument,
            "InsufficientHostResources" or "KvmUnavailable" or "AcceleratorUnavailable" or "StoragePoolInactive" => ErrorCategory.ResourceUnavailable,
            _ => ErrorCategory.NotSpecified,
        };
    }

    /// <summary>An invalid VM spec (parameters, hashtable or YAML): InvalidName for names, else InvalidVmSpec.</summary>
    public static ErrorRecord FromSpec(KvmPS.Core.VmSpecException e, object? target)
        => new(e, e.Key == "name" ? "InvalidName" : "InvalidVmSpec", ErrorCategory.InvalidArgument, target)
        {
            ErrorDetails = new ErrorDetails(e.Message),
        };

    public static ErrorRecord InvalidWildcard(string pattern, Exception e)
        => new(e, "InvalidWildcard", ErrorCategory.InvalidArgument, pattern)
        {
            ErrorDetails = new ErrorDetails($"'{pattern}' is not a valid wildcard pattern: {e.Message}"),
        };

}
