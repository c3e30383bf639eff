namespace KvmPS.Core.Services;

/// <summary>Where Core narrates what it does; cmdlets map it to Verbose, Warning and Progress.</summary>
public interface IKvmLog
{
    void Verbose(string message);

    void Warning(string message);

    /// <summary>Progress of a long wait: percent 0-100, or -1 when unknown; completed ends the bar.</summary>
    void Progress(string activity, string status, int percent, bool completed = false);
}

/// <summary>A log that discards everything.</summary>
public sealed class NullKvmLog : IKvmLog
{
    public static NullKvmLog Instance { get; } = new();

    public void Verbose(string message)
    {
    }

    public void Warning(string message)
    {
    }

    public void Progress(string activity, string status, int percent, bool completed = false)
    {
    }
}

/// <summary>What kind of failure a <see cref="KvmOperationException"/> is (mapped to PowerShell's ErrorCategory).</summary>
public enum KvmErrorKind
{
    Unspecified = 0,
    NotFound,
    AlreadyExists,
    InvalidArgument,
    InvalidOperation,
    Unavailable,
    NotSupported,
    Timeout,
    WriteError,
    InvalidData,
    InUse,
}

/// <summary>A KvmPS operation that failed for a reason the user can act on, with a stable error id.</summary>
public sealed class KvmOperationException : Exception
{
    public KvmOperationException(string errorId, string message, object? target = null, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Target = target;
    }

    /// <summary>Stable id: VmStateInvalid, StopTimeout, VmExists, InvalidName, KvmUnavailable, ...</summary>
    public string ErrorId { get; }

    public object? Target { get; }

    /// <summary>The step that failed during a multi-step operation (create volume, define, start).</summary>
    public string? Step { get; init; }

    public string? Hint { get; init; }

    /// <summary>The kind of failure; when Unspecified, the ErrorId decides the category.</summary>
    public KvmErrorKind Kind { get; init; }
}
