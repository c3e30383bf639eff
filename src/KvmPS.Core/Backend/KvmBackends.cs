using KvmPS.Core.Managed;
using KvmPS.Core.Native;

namespace KvmPS.Core.Backend;

/// <summary>Which implementation talks to libvirt.</summary>
public enum KvmBackendKind
{
    /// <summary>Native when the libvirt client library loads, else Managed.</summary>
    Auto = 0,

    /// <summary>The libvirt client library (libvirt.so.0, libvirt-0.dll, libvirt.0.dylib) through P/Invoke.</summary>
    Native = 1,

    /// <summary>KvmPS's own RPC client (unix socket, tcp, tls, ssh): no native libvirt needed.</summary>
    Managed = 2,
}

/// <summary>Chooses a backend: explicitly, or Auto (environment variable KVMPS_BACKEND overrides the default).</summary>
public static class KvmBackends
{
    /// <summary>The kind used when none is given: KVMPS_BACKEND (Auto, Native, Managed) or Auto.</summary>
    public static KvmBackendKind DefaultKind
        => Enum.TryParse(Environment.GetEnvironmentVariable("KVMPS_BACKEND"), ignoreCase: true, out KvmBackendKind k) ? k : KvmBackendKind.Auto;

    /// <summary>The backend for <paramref name="kind"/>; Auto is Native when libvirt loads, else Managed.</summary>
    public static ILibvirtBackend Get(KvmBackendKind kind) => kind switch
    {
        KvmBackendKind.Native => NativeBackend.Instance,
        KvmBackendKind.Managed => ManagedBackend.Instance,
        _ => NativeBackend.Instance.IsAvailable(out _) ? NativeBackend.Instance : ManagedBackend.Instance,
    };
}
