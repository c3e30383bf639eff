using System.Collections.Concurrent;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>
/// The backend that speaks libvirt's RPC protocol itself (no libvirt library needed): unix socket and TCP
/// here, TLS and SSH registered as more transports. Always available.
/// </summary>
public sealed partial class ManagedBackend : ILibvirtBackend
{
    // Transports are made on first use: registering one (the SSH transport, at Import-Module) must not load
    // the socket and TLS assemblies, which Import-Module time would pay for.
    private static readonly ConcurrentDictionary<string, Lazy<IRpcTransport>> s_transports = new(StringComparer.OrdinalIgnoreCase);

    static ManagedBackend()
    {
        RegisterTransport("unix", () => new UnixTransport());
        RegisterTransport("tcp", () => new TcpTransport());
        RegisterBuiltInTransports();
    }

    private ManagedBackend()
    {
    }

    public static ManagedBackend Instance { get; } = new();

    public string Name => "Managed";

    public bool IsAvailable(out string? reason)
    {
        reason = null;
        return true;
    }

    public ILibvirtConnection Open(string? uri, LibvirtOpenOptions options) => ManagedConnection.Open(uri, options);

    /// <summary>Adds or replaces the transport for <paramref name="name"/> (the SSH transport lives in another assembly).</summary>
    public static void RegisterTransport(string name, IRpcTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        RegisterTransport(name, () => transport);
    }

    /// <summary>Adds or replaces the transport for <paramref name="name"/>, created when a URI first needs it.</summary>
    public static void RegisterTransport(string name, Func<IRpcTransport> factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        s_transports[name] = new Lazy<IRpcTransport>(factory, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The names of the registered transports.</summary>
    public static IReadOnlyCollection<string> TransportNames => s_transports.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>The transport for a URI's transport name (libssh and libssh2 fall back to ssh).</summary>
    internal static IRpcTransport GetTransport(LibvirtUri uri)
    {
        string name = uri.EffectiveTransport;
        if (s_transports.TryGetValue(name, out Lazy<IRpcTransport>? t)
            || (name is "libssh" or "libssh2" && s_transports.TryGetValue("ssh", out t)))
        {
            return t.Value;
        }

        throw new LibvirtException(LibvirtErrorCode.NoConnect, LibvirtErrorDomain.Remote,
            $"The managed backend has no '{name}' transport for '{uri.Original}' (available: {string.Join(", ", TransportNames)}).")
        {
            Hint = name == "ext" ? "The ext transport runs an external command; use -Backend Native for it." : "Use another transport, or -Backend Native.",
        };
    }

    /// <summary>The default URI when none is given: LIBVIRT_DEFAULT_URI, else qemu:///system as root, else qemu:///session.</summary>
    internal static string DefaultUri()
    {
        string? env = Environment.GetEnvironmentVariable("LIBVIRT_DEFAULT_URI");
        if (!string.IsNullOrWhiteSpace(env))
        {
            return env.Trim();
        }

        return !OperatingSystem.IsWindows() && Environment.UserName == "root" ? "qemu:///system" : "qemu:///session";
    }

    /// <summary>Transports in this assembly that are written elsewhere (TLS) register themselves here.</summary>
    static partial void RegisterBuiltInTransports();
}
