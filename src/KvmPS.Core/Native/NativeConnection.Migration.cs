using System.Runtime.InteropServices;
using System.Text;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Native;

/// <summary>Migration and CPU comparison of the native connection.</summary>
internal sealed unsafe partial class NativeConnection
{
    public DomainRef MigrateDomain(DomainRef domain, ILibvirtConnection destination, IReadOnlyList<TypedParameter> parameters, MigrateFlags flags)
    {
        if (destination is not NativeConnection target)
        {
            throw new LibvirtException(LibvirtErrorCode.ArgumentUnsupported, LibvirtErrorDomain.None,
                "A managed migration needs both connections on the same backend (the destination is not a native connection).");
        }

        using SafeDomainHandle h = Open(domain.Uuid);
        using var native = new NativeTypedParameters(parameters);
        IntPtr moved = NativeMethods.virDomainMigrate3(h, target._conn, native.Pointer, native.Count, (uint)flags);
        NativeCall.Check(moved, "virDomainMigrate3");
        try
        {
            return ToRef(moved);
        }
        finally
        {
            _ = NativeMethods.virDomainFree(moved);
        }
    }

    public void MigrateDomainToUri(DomainRef domain, string destinationUri, IReadOnlyList<TypedParameter> parameters, MigrateFlags flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        using var native = new NativeTypedParameters(parameters);
        NativeCall.Check(NativeMethods.virDomainMigrateToURI3(h, destinationUri, native.Pointer, native.Count, (uint)flags), "virDomainMigrateToURI3");
    }

    public void SetMigrationMaxDowntime(DomainRef domain, ulong milliseconds)
        => OnDomain(domain, h => NativeMethods.virDomainMigrateSetMaxDowntime(h, milliseconds, 0), "virDomainMigrateSetMaxDowntime");

    public void StartMigrationPostCopy(DomainRef domain)
        => OnDomain(domain, h => NativeMethods.virDomainMigrateStartPostCopy(h, 0), "virDomainMigrateStartPostCopy");

    public void BlockCopy(DomainRef domain, string disk, string destinationXml, IReadOnlyList<TypedParameter> parameters, BlockCopyFlags flags)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        using var native = new NativeTypedParameters(parameters);
        NativeCall.Check(NativeMethods.virDomainBlockCopy(h, disk, destinationXml, native.Pointer, (int)native.Count, (uint)flags), "virDomainBlockCopy");
    }

    public BlockJobInfo? GetBlockJobInfo(DomainRef domain, string disk)
    {
        using SafeDomainHandle h = Open(domain.Uuid);
        int rc = NativeCall.Check(NativeMethods.virDomainGetBlockJobInfo(h, disk, out VirDomainBlockJobInfo info, 0), "virDomainGetBlockJobInfo");
        return rc == 0 ? null : new BlockJobInfo(info.Type, info.Bandwidth.Value, info.Cur, info.End);
    }

    public void AbortBlockJob(DomainRef domain, string disk, BlockJobAbortFlags flags)
        => OnDomain(domain, h => NativeMethods.virDomainBlockJobAbort(h, disk, (uint)flags), "virDomainBlockJobAbort");

    public CpuCompareResult CompareHypervisorCpu(string? emulator, string? arch, string? machine, string? virtType, string cpuXml, uint flags)
    {
        LibvirtLibrary.RequireExport("virConnectCompareHypervisorCPU", "4.4.0");
        int rc = NativeMethods.virConnectCompareHypervisorCPU(_conn, emulator, arch, machine, virtType, cpuXml, flags);
        return rc < 0 ? throw NativeCall.LastError("virConnectCompareHypervisorCPU") : (CpuCompareResult)rc;
    }

    /// <summary>
    /// A virTypedParameter array in native memory, owned here (not by libvirt): strings are copied as UTF-8 and freed
    /// on dispose. Repeated names (migrate_disks) are allowed, as libvirt's migration API reads them as a list.
    /// </summary>
    private sealed class NativeTypedParameters : IDisposable
    {
        private readonly List<IntPtr> _strings = [];

        public NativeTypedParameters(IReadOnlyList<TypedParameter> parameters)
        {
            Count = (uint)parameters.Count;
            if (parameters.Count == 0)
            {
                return;
            }

            Pointer = (IntPtr)NativeMemory.AllocZeroed((nuint)parameters.Count, (nuint)sizeof(VirTypedParameter));
            var p = (VirTypedParameter*)Pointer;
            for (int i = 0; i < parameters.Count; i++)
            {
                TypedParameter t = parameters[i];
                byte[] name = Encoding.UTF8.GetBytes(t.Name);
                if (name.Length >= 80)
                {
                    throw new ArgumentException($"The parameter name '{t.Name}' is longer than libvirt allows (79 bytes).", nameof(parameters));
                }

                name.CopyTo(new Span<byte>(p[i].Field, 80));
                p[i].Type = (int)t.Type;
                switch (t.Type)
                {
                    case TypedParameterType.Int: p[i].I = (int)t.Value; break;
                    case TypedParameterType.UInt: p[i].UI = (uint)t.Value; break;
                    case TypedParameterType.LLong: p[i].L = (long)t.Value; break;
                    case TypedParameterType.ULLong: p[i].UL = (ulong)t.Value; break;
                    case TypedParameterType.Double: p[i].D = (double)t.Value; break;
                    case TypedParameterType.Boolean: p[i].B = (bool)t.Value ? (byte)1 : (byte)0; break;
                    default:
                        IntPtr s = Marshal.StringToCoTaskMemUTF8((string)t.Value);
                        _strings.Add(s);
                        p[i].S = s;
                        break;
                }
            }
        }

        public IntPtr Pointer { get; }

        public uint Count { get; }

        public void Dispose()
        {
            foreach (IntPtr s in _strings)
            {
                Marshal.FreeCoTaskMem(s);
            }

            if (Pointer != IntPtr.Zero)
            {
                NativeMemory.Free((void*)Pointer);
            }
        }
    }
}
