using System.Runtime.InteropServices;

namespace KvmPS.Core.Native;

/// <summary>P/Invoke into libvirt-qemu (QEMU-specific calls: the guest agent pass-through).</summary>
internal static partial class NativeQemuMethods
{
    internal const string Lib = "libvirt-qemu";

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial IntPtr virDomainQemuAgentCommand(SafeDomainHandle dom, string cmd, int timeout, uint flags);
}
