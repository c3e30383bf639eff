using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Node usage statistics of the managed connection (REMOTE_PROC_NODE_GET_CPU_STATS / NODE_GET_MEMORY_STATS).</summary>
internal sealed partial class ManagedConnection
{
    private const int ProcNodeGetCpuStats = 227;
    private const int ProcNodeGetMemoryStats = 228;

    /// <summary>REMOTE_NODE_CPU_STATS_MAX and REMOTE_NODE_MEMORY_STATS_MAX.</summary>
    private const int NodeStatsMax = 16;

    /// <summary>
    /// remote_node_get_cpu_stats_args {int cpuNum; int nparams; u32 flags} →
    /// {remote_node_get_cpu_stats params&lt;16&gt; {string field; u64 value}; int nparams}. Like the C API's
    /// callers, asks for the field count first (nparams 0), then for exactly that many (drivers insist).
    /// </summary>
    public IReadOnlyList<TypedParameter> GetNodeCpuStats(int cpu)
    {
        int n = Remote(ProcNodeGetCpuStats, w => NodeCpuArgs(w, cpu, 0), ReadNodeStats).Count;
        return n == 0 ? [] : Remote(ProcNodeGetCpuStats, w => NodeCpuArgs(w, cpu, n), ReadNodeStats).Stats;
    }

    /// <summary>remote_node_get_memory_stats_args {int nparams; int cellNum; u32 flags} (note the order) → same reply shape.</summary>
    public IReadOnlyList<TypedParameter> GetNodeMemoryStats(int cell)
    {
        int n = Remote(ProcNodeGetMemoryStats, w => NodeMemoryArgs(w, cell, 0), ReadNodeStats).Count;
        return n == 0 ? [] : Remote(ProcNodeGetMemoryStats, w => NodeMemoryArgs(w, cell, n), ReadNodeStats).Stats;
    }

    private static void NodeCpuArgs(XdrWriter w, int cpu, int nparams)
    {
        w.WriteInt32(cpu);
        w.WriteInt32(nparams);
        w.WriteUInt32(0);
    }

    private static void NodeMemoryArgs(XdrWriter w, int cell, int nparams)
    {
        w.WriteInt32(nparams);
        w.WriteInt32(cell);
        w.WriteUInt32(0);
    }

    private static (IReadOnlyList<TypedParameter> Stats, int Count) ReadNodeStats(XdrReader r)
    {
        IReadOnlyList<TypedParameter> stats = r.ReadArray(x => new TypedParameter(x.ReadString(), TypedParameterType.ULLong, x.ReadUInt64()), NodeStatsMax);
        int count = r.ReadInt32();
        return count is < 0 or > NodeStatsMax ? throw XdrReader.Malformed($"node statistics count {count}") : (stats, count);
    }
}
