using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmPS.Core.Native;

/// <summary>
/// Loads libvirt for this process and initialises it exactly once: logging through native setenv,
/// virInitialize, a silent error handler, the default event loop on one background thread.
/// </summary>
internal static unsafe partial class LibvirtLibrary
{
    /// <summary>Environment variable naming a folder (or a full file path) to load libvirt from.</summary>
    public const string PathOverrideVariable = "KVMPS_LIBVIRT_PATH";

    private static readonly object s_initLock = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> s_exports = new(StringComparer.Ordinal);
    private static IntPtr s_handle;
    private static IntPtr s_glib;
    private static string? s_loadError;
    private static bool s_resolverSet;
    private static volatile bool s_initialised;
    private static Thread? s_eventThread;
    private static delegate* unmanaged[Cdecl]<IntPtr, void> s_gFree;
    private static delegate* unmanaged[Cdecl]<nuint, IntPtr> s_gMalloc;

    /// <summary>The libvirt client library version, e.g. 9.0.0; null until loaded.</summary>
    public static Version? ClientVersion { get; private set; }

    /// <summary>Loads and initialises libvirt; throws <see cref="LibvirtException"/> when it cannot be loaded.</summary>
    public static void EnsureInitialized()
    {
        if (s_initialised)
        {
            return;
        }

        lock (s_initLock)
        {
            if (s_initialised)
            {
                return;
            }

            if (!TryLoad(out string? error))
            {
                throw new LibvirtException(LibvirtErrorCode.LibraryNotLoaded, LibvirtErrorDomain.None, error!)
                {
                    Hint = OperatingSystem.IsWindows()
                        ? $"Install libvirt (MSYS2 mingw-w64-ucrt-x86_64-libvirt) and set ${PathOverrideVariable} to its bin folder."
                        : OperatingSystem.IsMacOS()
                            ? "Install libvirt with Homebrew (brew install libvirt)."
                            : "Install the libvirt client library (Debian/Ubuntu: apt-get install libvirt0; Fedora: dnf install libvirt-libs).",
                };
            }

            // libvirt reads its logging settings from the native environment at init; .NET's
            // Environment.SetEnvironmentVariable does not reach it on Unix, libc setenv does.
            if (!OperatingSystem.IsWindows() && Environment.GetEnvironmentVariable("LIBVIRT_DEBUG") is null
                && Environment.GetEnvironmentVariable("LIBVIRT_LOG_OUTPUTS") is null)
            {
                _ = setenv("LIBVIRT_DEBUG", "error", 1);
                _ = setenv("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null", 1);
            }

            if (NativeMethods.virInitialize() < 0)
            {
                throw new LibvirtException(LibvirtErrorCode.InternalError, LibvirtErrorDomain.None, "virInitialize failed.");
            }

            NativeMethods.virSetErrorFunc(IntPtr.Zero, &SilentErrorHandler);
            if (NativeMethods.virGetVersion(out CULong v, IntPtr.Zero, IntPtr.Zero) == 0)
            {
                ClientVersion = VersionFromLibvirt((ulong)v.Value);
            }

            if (NativeMethods.virEventRegisterDefaultImpl() < 0)
            {
                throw NativeCall.LastError("virEventRegisterDefaultImpl");
            }

            s_eventThread = new Thread(RunEventLoop) { IsBackground = true, Name = "KvmPS libvirt event loop" };
            s_eventThread.Start();
            s_initialised = true;
        }
    }

    /// <summary>True when the libvirt library can be loaded in this process.</summary>
    public static bool TryLoad(out string? error)
    {
        lock (s_initLock)
        {
            if (s_handle != IntPtr.Zero)
            {
                error = null;
                return true;
            }

            if (s_loadError is not null)
            {
                error = s_loadError;
                return false;
            }

            string? overridePath = Environment.GetEnvironmentVariable(PathOverrideVariable);
            foreach (string candidate in Candidates(overridePath))
            {
                if (NativeLibrary.TryLoad(candidate, typeof(LibvirtLibrary).Assembly, DllImportSearchPath.SafeDirectories | DllImportSearchPath.AssemblyDirectory, out IntPtr h))
                {
                    s_handle = h;
                    break;
                }
            }

            if (s_handle == IntPtr.Zero)
            {
                s_loadError = $"The libvirt client library could not be loaded (tried {string.Join(", ", Candidates(overridePath))}).";
                error = s_loadError;
                return false;
            }

            foreach (string glib in GlibCandidates(overridePath))
            {
                if (NativeLibrary.TryLoad(glib, out s_glib) && NativeLibrary.TryGetExport(s_glib, "g_free", out IntPtr gfree))
                {
                    s_gFree = (delegate* unmanaged[Cdecl]<IntPtr, void>)gfree;
                    if (NativeLibrary.TryGetExport(s_glib, "g_malloc", out IntPtr gmalloc))
                    {
                        s_gMalloc = (delegate* unmanaged[Cdecl]<nuint, IntPtr>)gmalloc;
                    }

                    break;
                }
            }

            if (!s_resolverSet)
            {
                NativeLibrary.SetDllImportResolver(typeof(LibvirtLibrary).Assembly, Resolve);
                s_resolverSet = true;
            }

            error = null;
            return true;
        }
    }

    /// <summary>True when the loaded libvirt exports <paramref name="symbol"/>.</summary>
    public static bool HasExport(string symbol)
        => s_handle != IntPtr.Zero && s_exports.GetOrAdd(symbol, static s => NativeLibrary.TryGetExport(s_handle, s, out _));

    /// <summary>Throws a clear error when the loaded libvirt lacks <paramref name="symbol"/>.</summary>
    public static void RequireExport(string symbol, string sinceVersion)
    {
        if (!HasExport(symbol))
        {
            throw new LibvirtException(LibvirtErrorCode.NoSupport, LibvirtErrorDomain.None,
                $"This operation needs libvirt ≥ {sinceVersion} ({symbol}); the loaded client library is {ClientVersion?.ToString() ?? "unknown"}.")
            {
                Hint = $"Upgrade the libvirt client library to {sinceVersion} or later.",
            };
        }
    }

    /// <summary>Frees a string or array libvirt allocated, with the allocator libvirt itself uses.</summary>
    public static void Free(IntPtr p)
    {
        if (p == IntPtr.Zero)
        {
            return;
        }

        if (s_gFree != null)
        {
            s_gFree(p);
        }
        else
        {
            NativeMemory.Free((void*)p);
        }
    }

    /// <summary>Copies a string into memory libvirt may free (its own allocator); returns pointer and byte length.</summary>
    public static (IntPtr Pointer, uint Length) AllocString(string value)
    {
        int len = System.Text.Encoding.UTF8.GetByteCount(value);
        byte* p = s_gMalloc != null ? (byte*)s_gMalloc((nuint)(len + 1)) : (byte*)NativeMemory.Alloc((nuint)(len + 1));
        System.Text.Encoding.UTF8.GetBytes(value, new Span<byte>(p, len));
        p[len] = 0;
        return ((IntPtr)p, (uint)len);
    }

    /// <summary>Reads an owned UTF-8 string returned by libvirt and frees it.</summary>
    public static string? TakeString(IntPtr p)
    {
        if (p == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(p);
        }
        finally
        {
            Free(p);
        }
    }

    internal static Version VersionFromLibvirt(ulong v)
        => new((int)(v / 1_000_000), (int)(v / 1_000 % 1_000), (int)(v % 1_000));

    private static IEnumerable<string> Candidates(string? overridePath)
    {
        string[] names = OperatingSystem.IsWindows() ? ["libvirt-0.dll"]
            : OperatingSystem.IsMacOS() ? ["libvirt.0.dylib", "/opt/homebrew/lib/libvirt.0.dylib", "/usr/local/lib/libvirt.0.dylib"]
            : ["libvirt.so.0"];
        if (!string.IsNullOrEmpty(overridePath))
        {
            if (File.Exists(overridePath))
            {
                return [overridePath];
            }

            return names.Select(n => Path.Combine(overridePath, Path.GetFileName(n)));
        }

        return names;
    }

    private static IEnumerable<string> GlibCandidates(string? overridePath)
    {
        string[] names = OperatingSystem.IsWindows() ? ["libglib-2.0-0.dll"]
            : OperatingSystem.IsMacOS() ? ["libglib-2.0.0.dylib", "/opt/homebrew/lib/libglib-2.0.0.dylib", "/usr/local/lib/libglib-2.0.0.dylib"]
            : ["libglib-2.0.so.0"];
        string? dir = overridePath is null ? null : File.Exists(overridePath) ? Path.GetDirectoryName(overridePath) : overridePath;
        return string.IsNullOrEmpty(dir) ? names : names.Select(n => Path.Combine(dir, Path.GetFileName(n))).Concat(names);
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
        => libraryName switch
        {
            NativeMethods.Lib => s_handle,
            NativeQemuMethods.Lib => LoadQemuLibrary(),
            "libc" when OperatingSystem.IsLinux() => NativeLibrary.Load("libc.so.6"),
            _ => IntPtr.Zero,
        };

    private static IntPtr s_qemuHandle;

    /// <summary>libvirt-qemu (virDomainQemuAgentCommand) lives in its own library next to libvirt.</summary>
    private static IntPtr LoadQemuLibrary()
    {
        if (s_qemuHandle != IntPtr.Zero)
        {
            return s_qemuHandle;
        }

        string? overridePath = Environment.GetEnvironmentVariable(PathOverrideVariable);
        string[] names = OperatingSystem.IsWindows() ? ["libvirt-qemu-0.dll"]
            : OperatingSystem.IsMacOS() ? ["libvirt-qemu.0.dylib", "/opt/homebrew/lib/libvirt-qemu.0.dylib", "/usr/local/lib/libvirt-qemu.0.dylib"]
            : ["libvirt-qemu.so.0"];
        string? dir = overridePath is null ? null : File.Exists(overridePath) ? Path.GetDirectoryName(overridePath) : overridePath;
        foreach (string n in string.IsNullOrEmpty(dir) ? names : names.Select(x => Path.Combine(dir, Path.GetFileName(x))).Concat(names))
        {
            if (NativeLibrary.TryLoad(n, out IntPtr h))
            {
                s_qemuHandle = h;
                return h;
            }
        }

        throw new LibvirtException(LibvirtErrorCode.NoSupport, LibvirtErrorDomain.None, "The libvirt-qemu library (guest agent commands) could not be loaded.")
        {
            Hint = "Install it (Debian/Ubuntu: libvirt0 ships libvirt-qemu.so.0).",
        };
    }

    private static void RunEventLoop()
    {
        while (true)
        {
            if (NativeMethods.virEventRunDefaultImpl() < 0)
            {
                Thread.Sleep(100);   // never spin if the loop itself reports an error
            }
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void SilentErrorHandler(IntPtr userData, IntPtr error)
    {
        // Errors are read synchronously by NativeCall on the failing thread; printing them is noise.
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
