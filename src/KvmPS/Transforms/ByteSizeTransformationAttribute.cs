using System.Management.Automation;
using KvmPS.Core;

namespace KvmPS.Transforms;

/// <summary>Lets size parameters take PowerShell numbers (2GB) and strings ("2GiB", "512MiB", "4096").</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ByteSizeTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        => (inputData is PSObject o ? o.BaseObject : inputData) switch
        {
            ulong u => u,
            uint u => (ulong)u,
            int i when i >= 0 => (ulong)i,
            long l when l >= 0 => (ulong)l,
            double d when d >= 0 && d == Math.Floor(d) && d <= ulong.MaxValue => (ulong)d,
            decimal m when m >= 0 && m == decimal.Truncate(m) => (ulong)m,
            string s when ByteSize.TryParse(s, out ulong b) => b,
            var x => throw new ArgumentTransformationMetadataException(
                $"Cannot convert '{x}' to a size in bytes. Use a number (2GB, 536870912) or a string such as '2GiB' or '512MiB'."),
        };
}
