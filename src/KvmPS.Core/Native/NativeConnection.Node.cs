using System.Text;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Native;

/// <summary>Node usage statistics of the native connection (virNodeGetCPUStats, virNodeGetMemoryStats).</summary>
internal sealed unsafe partial class NativeConnection
{
    // libvirt's drivers answer a handful of fields (Linux: 4); the remote protocol allows 16.
    private const int NodeStatsMax = 16;

    public IReadOnlyList<TypedParameter> GetNodeCpuStats(int cpu)
    {
        int n = 0;
        NativeCall.Check(NativeMethods.virNodeGetCPUStats(_conn, cpu, null, ref n, 0), "virNodeGetCPUStats");
        if (n <= 0)
        {
            return [];
        }

        CheckCount(n, "virNodeGetCPUStats");
        VirNodeStatsEntry* stats = stackalloc VirNodeStatsEntry[n];
        NativeCall.Check(NativeMethods.virNodeGetCPUStats(_conn, cpu, stats, ref n, 0), "virNodeGetCPUStats");
        return ReadNodeStats(stats, n);
    }

    public IReadOnlyList<TypedParameter> GetNodeMemoryStats(int cell)
    {
        int n = 0;
        NativeCall.Check(NativeMethods.virNodeGetMemoryStats(_conn, cell, null, ref n, 0), "virNodeGetMemoryStats");
        if (n <= 0)
        {
            return [];
        }

        CheckCount(n, "virNodeGetMemoryStats");
        VirNodeStatsEntry* stats = stackalloc VirNodeStatsEntry[n];
        NativeCall.Check(NativeMethods.virNodeGetMemoryStats(_conn, cell, stats, ref n, 0), "virNodeGetMemoryStats");
        return ReadNodeStats(stats, n);
    }

    private static void CheckCount(int n, string function)
    {
        if (n > NodeStatsMax)
        {
            throw new LibvirtException(LibvirtErrorCode.InternalError, LibvirtErrorDomain.None, $"{function} reports {n} fields, more than {NodeStatsMax}.") { Function = function };
        }
    }

    private static TypedParameter[] ReadNodeStats(VirNodeStatsEntry* stats, int n)
    {
        var result = new TypedParameter[Math.Clamp(n, 0, NodeStatsMax)];
        for (int i = 0; i < result.Length; i++)
        {
            var field = new ReadOnlySpan<byte>(stats[i].Field, 80);
            int len = field.IndexOf((byte)0);
            result[i] = new TypedParameter(Encoding.UTF8.GetString(field[..(len < 0 ? 80 : len)]), TypedParameterType.ULLong, stats[i].Value);
        }

        return result;
    }
}
