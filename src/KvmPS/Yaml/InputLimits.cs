using System.Collections;
using System.Management.Automation;
using KvmPS.Core;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace KvmPS.Yaml;

/// <summary>
/// Bounds on what a VM spec or user data may be, checked before anything walks it recursively: at most
/// <see cref="MaxDepth"/> nested levels and <see cref="MaxNodes"/> nodes (aliases counted as what they expand to),
/// no alias as a mapping key, no alias inside the node it names, no hashtable or list that contains itself.
/// Deep input would otherwise overflow the stack, which ends the whole PowerShell process.
/// </summary>
internal static class InputLimits
{
    /// <summary>Nested mappings and lists, the top level counting as 1.</summary>
    public const int MaxDepth = 64;

    /// <summary>Scalars, mappings and lists (keys included), after alias expansion.</summary>
    public const int MaxNodes = 100_000;

    /// <summary>Reads YAML parser events only (no tree, no recursion) and throws <see cref="VmSpecException"/> at the first limit passed.</summary>
    public static void CheckYaml(string text, string key)
    {
        var parser = new Parser(new StringReader(text));
        var open = new List<Frame>();
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        long nodes = 0;
        while (parser.MoveNext())
        {
            ParsingEvent e = parser.Current!;
            switch (e)
            {
                case AnchorAlias alias:
                    if (open.Count > 0 && open[^1].InKeyPosition)
                    {
                        throw Error(key, e, $"an alias (*{alias.Value.Value}) cannot be a mapping key.");
                    }

                    if (open.Any(f => f.Anchor == alias.Value.Value))
                    {
                        throw Error(key, e, $"the alias *{alias.Value.Value} is inside the node &{alias.Value.Value} it names (a recursive alias).");
                    }

                    // An alias to no anchor is the parser's error to report, later; count it as one node.
                    nodes += sizes.TryGetValue(alias.Value.Value, out long size) ? size : 1;
                    Counted(open);
                    break;
                case Scalar scalar:
                    Remember(sizes, scalar.Anchor, 1);
                    nodes++;
                    Counted(open);
                    break;
                case SequenceStart or MappingStart:
                    if (open.Count >= MaxDepth)
                    {
                        throw Error(key, e, $"the document is nested more than {MaxDepth} levels deep.");
                    }

                    AnchorName anchor = e is SequenceStart s ? s.Anchor : ((MappingStart)e).Anchor;
                    open.Add(new Frame(e is MappingStart, anchor.IsEmpty ? null : anchor.Value, nodes));
                    nodes++;
                    break;
                case SequenceEnd or MappingEnd:
                    Frame done = open[^1];
                    open.RemoveAt(open.Count - 1);
                    if (done.Anchor is { } name)
                    {
                        sizes[name] = nodes - done.NodesBefore;
                    }

                    Counted(open);
                    break;
            }

            if (nodes > MaxNodes)
            {
                throw Error(key, e, $"the document has more than {MaxNodes:N0} nodes (aliases counted as what they repeat).");
            }
        }
    }

    /// <summary>
    /// Walks a hashtable (or list, or custom object) with a bounded recursion and throws <see cref="VmSpecException"/>
    /// naming the key path when it is too deep, too large, or contains itself.
    /// </summary>
    public static void CheckObject(object? value, string key)
    {
        long nodes = 0;
        var ancestors = new HashSet<object>(ReferenceEqualityComparer.Instance);
        Walk(value, key, 1, ref nodes, ancestors);
    }

    private static void Walk(object? value, string path, int depth, ref long nodes, HashSet<object> ancestors)
    {
        if (++nodes > MaxNodes)
        {
            throw new VmSpecException(Root(path), $"the value has more than {MaxNodes:N0} items.");
        }

        object? v = value;
        while (v is PSObject p && p.BaseObject is not PSCustomObject)
        {
            v = p.BaseObject;
        }

        bool container = v is IDictionary || v is PSObject || (v is IEnumerable && v is not string);
        if (!container)
        {
            return;
        }

        if (depth > MaxDepth)
        {
            throw new VmSpecException(Root(path), $"the value is nested more than {MaxDepth} levels deep.");
        }

        if (!ancestors.Add(v!))
        {
            throw new VmSpecException(Root(path), "the value contains itself (a hashtable or list that refers back to one that holds it).");
        }

        switch (v)
        {
            case IDictionary d:
                IDictionaryEnumerator en = d.GetEnumerator();
                while (en.MoveNext())
                {
                    nodes++;   // the key
                    Walk(en.Value, Join(path, en.Key), depth + 1, ref nodes, ancestors);
                }

                break;
            case PSObject custom:
                foreach (PSPropertyInfo prop in custom.Properties)
                {
                    nodes++;
                    Walk(prop.Value, Join(path, prop.Name), depth + 1, ref nodes, ancestors);
                }

                break;
            case IEnumerable list:
                int i = 0;
                foreach (object? item in list)
                {
                    Walk(item, $"{path}[{i++}]", depth + 1, ref nodes, ancestors);
                }

                break;
        }

        ancestors.Remove(v!);
    }

    private static string Root(string path) => path.Length == 0 ? "spec" : path;

    private static string Join(string path, object? key) => path.Length == 0 ? $"{key}" : $"{path}.{key}";

    private static void Remember(Dictionary<string, long> sizes, AnchorName anchor, long size)
    {
        if (!anchor.IsEmpty)
        {
            sizes[anchor.Value] = size;
        }
    }

    /// <summary>One more child of the innermost open collection (a key and its value alternate in a mapping).</summary>
    private static void Counted(List<Frame> open)
    {
        if (open.Count > 0)
        {
            open[^1].Children++;
        }
    }

    private static VmSpecException Error(string key, ParsingEvent e, string message)
        => new(key, message, (int)e.Start.Line, (int)e.Start.Column);

    private sealed class Frame(bool isMapping, string? anchor, long nodesBefore)
    {
        public string? Anchor { get; } = anchor;

        public long NodesBefore { get; } = nodesBefore;

        public long Children { get; set; }

        public bool InKeyPosition => isMapping && Children % 2 == 0;
    }
}
