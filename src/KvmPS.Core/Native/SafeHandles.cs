using System.Runtime.InteropServices;

namespace KvmPS.Core.Native;

/// <summary>Base for libvirt object references: one handle is one reference, released with its vir*Free.</summary>
internal abstract class LibvirtSafeHandle : SafeHandle
{
    protected LibvirtSafeHandle(IntPtr existing) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(existing);

    public override bool IsInvalid => handle == IntPtr.Zero;
}

/// <summary>A virConnectPtr; disposed deterministically by <see cref="NativeConnection"/>, never left to a finaliser.</summary>
internal sealed class SafeConnectHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virConnectClose(handle) >= 0;
}

/// <summary>A virDomainPtr.</summary>
internal sealed class SafeDomainHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virDomainFree(handle) >= 0;
}

/// <summary>A virNetworkPtr.</summary>
internal sealed class SafeNetworkHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virNetworkFree(handle) >= 0;
}

/// <summary>A virStoragePoolPtr.</summary>
internal sealed class SafeStoragePoolHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virStoragePoolFree(handle) >= 0;
}

/// <summary>A virStorageVolPtr.</summary>
internal sealed class SafeStorageVolHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virStorageVolFree(handle) >= 0;
}

/// <summary>A virDomainSnapshotPtr.</summary>
internal sealed class SafeDomainSnapshotHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virDomainSnapshotFree(handle) >= 0;
}

/// <summary>A virDomainCheckpointPtr.</summary>
internal sealed class SafeDomainCheckpointHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virDomainCheckpointFree(handle) >= 0;
}

/// <summary>A virStreamPtr (finish or abort it before disposing).</summary>
internal sealed class SafeStreamHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virStreamFree(handle) >= 0;
}

/// <summary>A virSecretPtr.</summary>
internal sealed class SafeSecretHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virSecretFree(handle) >= 0;
}

/// <summary>A virNodeDevicePtr.</summary>
internal sealed class SafeNodeDeviceHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virNodeDeviceFree(handle) >= 0;
}

/// <summary>A virInterfacePtr.</summary>
internal sealed class SafeInterfaceHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virInterfaceFree(handle) >= 0;
}

/// <summary>A virNWFilterPtr.</summary>
internal sealed class SafeNWFilterHandle(IntPtr h) : LibvirtSafeHandle(h)
{
    protected override bool ReleaseHandle() => NativeMethods.virNWFilterFree(handle) >= 0;
}
