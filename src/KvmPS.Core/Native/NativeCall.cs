using System.Runtime.InteropServices;

namespace KvmPS.Core.Native;

/// <summary>
/// Reads libvirt's thread-local error on the thread of the failing call, right after it, and turns
/// it into a <see cref="LibvirtException"/>. Never put an await between a call and these checks.
/// </summary>
internal static class NativeCall
{
    public static LibvirtException LastError(string function)
        => TryLastError(function)
           ?? new LibvirtException(LibvirtErrorCode.InternalError, LibvirtErrorDomain.None, $"{function} failed without an error from libvirt.") { Function = function };

    /// <summary>The pending libvirt error of this thread, or null when the last call succeeded.</summary>
    public static LibvirtException? TryLastError(string function)
    {
        IntPtr saved = NativeMethods.virSaveLastError();
        if (saved == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            VirError e = Marshal.PtrToStructure<VirError>(saved);
            if (e.Code == 0)
            {
                return null;
            }

            string message = Marshal.PtrToStringUTF8(e.Message) ?? $"{function} failed.";
            return new LibvirtException((LibvirtErrorCode)e.Code, (LibvirtErrorDomain)e.Domain, message)
            {
                Level = e.Level,
                Function = function,
            };
        }
        finally
        {
            NativeMethods.virFreeError(saved);
        }
    }

    public static int Check(int rc, string function) => rc < 0 ? throw LastError(function) : rc;

    public static IntPtr Check(IntPtr p, string function) => p == IntPtr.Zero ? throw LastError(function) : p;

    public static string CheckString(IntPtr p, string function)
        => LibvirtLibrary.TakeString(p) ?? throw LastError(function);
}
