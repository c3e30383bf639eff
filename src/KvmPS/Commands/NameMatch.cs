using System.Management.Automation;

namespace KvmPS.Commands;

/// <summary>
/// How names given to a cmdlet pick objects, the same for every noun (VM, snapshot, network, pool, volume):
/// <list type="bullet">
/// <item>an object whose name is exactly the given text always wins (so <c>web[1]</c> finds the VM <c>web[1]</c>);</item>
/// <item>otherwise a typed name with wildcard characters is a pattern (case-insensitive), and one that matches nothing is silent;
/// a name whose only wildcard characters are escaped (<c>web`[1`]</c>, as tab completion inserts it) means that one name;</item>
/// <item>a literal name (-LiteralName, or a name that came from the pipeline: a CSV row, Select-Object Name) is never a pattern;</item>
/// <item>a name that is not a pattern and matches nothing is the noun's NotFound error.</item>
/// </list>
/// Each object is selected once, in the order the names were given.
/// </summary>
internal static class NameMatch
{
    /// <param name="names">The names as given.</param>
    /// <param name="literal">True: no name is a pattern.</param>
    /// <param name="exact">The object named exactly so, or null (a cheap lookup, or a search of <paramref name="all"/>).</param>
    /// <param name="all">Every object, for patterns (called at most once).</param>
    /// <param name="nameOf">An object's name.</param>
    /// <param name="identity">What makes two objects the same (a UUID, a pool+key pair).</param>
    /// <param name="notFound">Writes the noun's NotFound error for a name that found nothing.</param>
    /// <param name="writeError">Writes InvalidWildcard.</param>
    public static List<T> Select<T>(IEnumerable<string> names, bool literal, Func<string, T?> exact, Func<IReadOnlyList<T>> all,
        Func<T, string> nameOf, Func<T, object> identity, Action<string> notFound, Action<ErrorRecord> writeError)
        where T : class
    {
        var result = new List<T>();
        var seen = new HashSet<object>();
        IReadOnlyList<T>? listed = null;
        foreach (string name in names)
        {
            if (exact(name) is { } hit)
            {
                if (seen.Add(identity(hit)))
                {
                    result.Add(hit);
                }

                continue;
            }

            if (literal)
            {
                notFound(name);
                continue;
            }

            if (!WildcardPattern.ContainsWildcardCharacters(name))
            {
                // No wildcard left once escapes are read (web`[1`], as completion inserts it): the unescaped name, exactly.
                string unescaped = WildcardPattern.Unescape(name);
                if (unescaped != name && exact(unescaped) is { } named)
                {
                    if (seen.Add(identity(named)))
                    {
                        result.Add(named);
                    }
                }
                else
                {
                    notFound(name);
                }

                continue;
            }

            if (!KvmCmdlet.TryWildcard(name, writeError, out WildcardPattern pattern))
            {
                continue;
            }

            listed ??= all();
            foreach (T item in listed)
            {
                if (pattern.IsMatch(nameOf(item)) && seen.Add(identity(item)))
                {
                    result.Add(item);
                }
            }
        }

        return result;
    }

    /// <summary>As <see cref="Select{T}"/> over one listing (exact names are looked up in it).</summary>
    public static List<T> Select<T>(IReadOnlyList<T> all, IEnumerable<string> names, bool literal, Func<T, string> nameOf,
        Func<T, object> identity, Action<string> notFound, Action<ErrorRecord> writeError)
        where T : class
        => Select(names, literal, n => all.FirstOrDefault(x => string.Equals(nameOf(x), n, StringComparison.Ordinal)), () => all, nameOf, identity, notFound, writeError);
}
