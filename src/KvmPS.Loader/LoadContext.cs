using System.Reflection;
using System.Runtime.Loader;

namespace KvmPS.Loader;

/// <summary>
/// The AssemblyLoadContext that holds the KvmPS cmdlet assembly and its dependencies (YamlDotNet),
/// so the module loads beside any other version of those assemblies in the session.
/// KvmPS.Core stays shared in the Default context so scripts can name its types.
/// </summary>
public sealed class LoadContext : AssemblyLoadContext
{
    private static readonly string[] s_shared = ["KvmPS.Core"];
    private static readonly object s_sync = new();
    private static LoadContext? s_instance;
    private readonly AssemblyDependencyResolver _resolver;
    private readonly Assembly _moduleAssembly;
    private readonly AssemblyName _loaderName = typeof(LoadContext).Assembly.GetName();

    private LoadContext(string moduleAssemblyPath) : base("KvmPS", isCollectible: false)
    {
        _resolver = new AssemblyDependencyResolver(moduleAssemblyPath);
        _moduleAssembly = LoadFromAssemblyPath(moduleAssemblyPath);
    }

    /// <summary>Loads the module assembly into the KvmPS context once per process and returns it.</summary>
    public static Assembly Initialize(string moduleAssemblyPath)
    {
        lock (s_sync)
        {
            return (s_instance ??= new LoadContext(moduleAssemblyPath))._moduleAssembly;
        }
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        if (AssemblyName.ReferenceMatchesDefinition(_loaderName, assemblyName))
        {
            return typeof(LoadContext).Assembly;
        }

        if (Array.IndexOf(s_shared, assemblyName.Name) >= 0)
        {
            return null;
        }

        string? path = _resolver.ResolveAssemblyToPath(assemblyName);
        return path is null ? null : LoadFromAssemblyPath(path);
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        string? path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }
}
