using KvmPS.Core.Services;

namespace KvmPS.Core;

/// <summary>What the guest agent says about the guest: OS, host name, time zone, users, file systems.</summary>
public sealed class KvmGuestInfo
{
    public string VMName { get; init; } = string.Empty;
    public string? OsName { get; init; }
    public string? OsVersion { get; init; }
    public string? OsId { get; init; }
    public string? KernelRelease { get; init; }
    public string? KernelVersion { get; init; }
    public string? Machine { get; init; }
    public string? HostName { get; init; }
    public string? TimeZone { get; init; }
    /// <summary>The guest's offset from UTC.</summary>
    public TimeSpan? UtcOffset { get; init; }
    public IReadOnlyList<KvmGuestUser> Users { get; init; } = [];
    public IReadOnlyList<KvmGuestFileSystem> FileSystems { get; init; } = [];
    public KvmConnection Connection { get; init; } = null!;
}

/// <summary>A user logged in to the guest.</summary>
public sealed record KvmGuestUser(string Name, string? Domain, DateTime? LoginTime);

/// <summary>A mounted guest file system.</summary>
public sealed record KvmGuestFileSystem(string MountPoint, string? Name, string? Type, ulong? TotalBytes, ulong? UsedBytes)
{
    public override string ToString() => $"{MountPoint} ({Type})";
}

/// <summary>The result of a command run in the guest through the agent.</summary>
public sealed class KvmGuestCommandResult
{
    public string VMName { get; init; } = string.Empty;
    public string Command { get; init; } = string.Empty;
    public int ExitCode { get; init; }
    public string StdOut { get; init; } = string.Empty;
    public string StdErr { get; init; } = string.Empty;
    public bool TimedOut { get; init; }
}
