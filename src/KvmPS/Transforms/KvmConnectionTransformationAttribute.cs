using System.Collections;
using System.Management.Automation;
using KvmPS.Core.Services;

namespace KvmPS.Transforms;

/// <summary>
/// Lets -Connection take KvmConnection objects or URI strings. A string becomes the known connection for
/// that URI, or a new one that opens on first use (so a bad URI is an error of the command, not of binding).
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class KvmConnectionTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object? input = inputData is PSObject p ? p.BaseObject : inputData;
        if (input is IList list)
        {
            var result = new KvmConnection[list.Count];
            for (int i = 0; i < list.Count; i++)
            {
                result[i] = One(list[i]);
            }

            return result;
        }

        return new[] { One(input) };
    }

    private static KvmConnection One(object? item) => (item is PSObject p ? p.BaseObject : item) switch
    {
        KvmConnection c => c,
        string s when !string.IsNullOrWhiteSpace(s) => ModuleState.FromUri(s),
        Uri u => ModuleState.FromUri(u.OriginalString),
        // a host object (Get-KvmHost, Find-KvmHost) stands for its connection: Move-KvmVm -DestinationConnection (Find-KvmHost ...)
        KvmPS.Core.KvmHostPlacement h when h.Connection is not null => h.Connection,
        KvmPS.Core.KvmHostInfo h when h.Connection is not null => h.Connection,
        KvmPS.Core.KvmHostCapability h when h.Connection is not null => h.Connection,
        var x => throw new ArgumentTransformationMetadataException(
            $"Cannot use '{x}' as a KvmPS connection: pass a KvmConnection (from Connect-KvmHost) or a libvirt URI such as qemu:///system."),
    };
}
