using System.Collections;
using System.Management.Automation;

namespace KvmPS.Transforms;

/// <summary>
/// On a -Name that also takes pipeline input by value: accepts names (strings, numbers) and refuses whole objects, so
/// PowerShell never binds a piped object (a CSV row, a KvmVmDisk, a KvmVm that did not bind to its own parameter) to
/// -Name as its ToString() text. The refusal is an invalid cast, which the pipeline binder treats as "does not bind
/// here" and moves on to the object's parameter set or to binding by property name.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class NameTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object? value = inputData is PSObject o ? o.BaseObject : inputData;
        if (value is IEnumerable items and not string)
        {
            foreach (object? item in items)
            {
                Check(item is PSObject p ? p.BaseObject : item);
            }
        }
        else
        {
            Check(value);
        }

        return inputData;
    }

    private static void Check(object? value)
    {
        if (value is not null and not IConvertible)
        {
            throw new ArgumentTransformationMetadataException($"A {value.GetType().Name} object is not a name.",
                new PSInvalidCastException($"A {value.GetType().Name} object is not a name."));
        }
    }
}
