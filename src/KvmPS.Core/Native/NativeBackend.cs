using KvmPS.Core.Backend;

namespace KvmPS.Core.Native;

/// <summary>The backend that calls the libvirt client library through P/Invoke.</summary>
public sealed class NativeBackend : ILibvirtBackend
{
    public static NativeBackend Instance { get; } = new();

    private NativeBackend()
    {
    }

    public string Name => "Native";

    public bool IsAvailable(out string? reason) => LibvirtLibrary.TryLoad(out reason);

    /// <summary>The libvirt client library version, once loaded.</summary>
    public static Version? ClientVersion
    {
        get
        {
            LibvirtLibrary.EnsureInitialized();
            return LibvirtLibrary.ClientVersion;
        }
    }

    public ILibvirtConnection Open(string? uri, LibvirtOpenOptions options)
    {
        LibvirtLibrary.EnsureInitialized();
        return NativeConnection.Open(uri, options);
    }
}
