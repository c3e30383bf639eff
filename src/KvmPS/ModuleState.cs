using System.Collections.Concurrent;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using KvmPS.Core.Services;

namespace KvmPS;

/// <summary>
/// The module's connections. Default connections (Connect-KvmHost) are per runspace, like PowerCLI's
/// DefaultVIServers; connection objects themselves are shared process-wide per URI, because a libvirt
/// connection is thread-safe and the test driver keeps its state only while one stays open.
/// </summary>
internal static class ModuleState
{
    private static readonly ConditionalWeakTable<object, List<KvmConnection>> s_defaults = new();
    private static readonly ConcurrentDictionary<string, KvmConnection> s_byUri = new(StringComparer.Ordinal);
    private static readonly object s_globalKey = new();

    /// <summary>Every connection this process knows (opened or not).</summary>
    public static IReadOnlyCollection<KvmConnection> All => s_byUri.Values.ToArray();

    /// <summary>The default connections of the current runspace, in the order they were made.</summary>
    public static IReadOnlyList<KvmConnection> Defaults
    {
        get
        {
            List<KvmConnection> list = DefaultList();
            lock (list)
            {
                return list.ToArray();
            }
        }
    }

    /// <summary>The connection for a URI string: an existing one, else a new unopened one (opened on first use).</summary>
    public static KvmConnection FromUri(string? uri)
    {
        string key = Key(uri);
        foreach (KvmConnection d in Defaults)
        {
            if (!d.IsDisposed && (Key(d.RequestedUri) == key || d.Uri == key))
            {
                return d;
            }
        }

        // A connection its owner disposed ($c.Dispose(), `using`) never opens again: a new one takes its place.
        return s_byUri.AddOrUpdate(key, k => new KvmConnection(k.Length == 0 ? null : k),
            (k, known) => known.IsDisposed ? new KvmConnection(k.Length == 0 ? null : k) : known);
    }

    /// <summary>A connection for the URI only if one is already known (never creates one: used by completers).</summary>
    public static KvmConnection? TryGetKnown(string? uri)
    {
        string key = Key(uri);
        KvmConnection? known = Defaults.FirstOrDefault(d => !d.IsDisposed && (Key(d.RequestedUri) == key || d.Uri == key))
            ?? (s_byUri.TryGetValue(key, out KvmConnection? c) ? c : s_byUri.Values.FirstOrDefault(v => v.Uri == key));
        return known is { IsDisposed: true } ? null : known;
    }

    /// <summary>Makes <paramref name="c"/> the known connection for its URI (a newer one replaces an older one).</summary>
    public static void Register(KvmConnection c) => s_byUri[Key(c.RequestedUri)] = c;

    /// <summary>Adds a default connection; one to the same URI already in the list is replaced, not duplicated.</summary>
    public static void AddDefault(KvmConnection c)
    {
        List<KvmConnection> list = DefaultList();
        lock (list)
        {
            int i = list.FindIndex(d => ReferenceEquals(d, c) || Key(d.RequestedUri) == Key(c.RequestedUri));
            if (i >= 0)
            {
                list[i] = c;
            }
            else
            {
                list.Add(c);
            }
        }
    }

    /// <summary>Forgets and closes a connection.</summary>
    public static void Remove(KvmConnection c)
    {
        List<KvmConnection> list = DefaultList();
        lock (list)
        {
            list.Remove(c);
        }

        foreach (KeyValuePair<string, KvmConnection> kv in s_byUri)
        {
            if (ReferenceEquals(kv.Value, c))
            {
                s_byUri.TryRemove(kv);
            }
        }

        c.Dispose();
    }

    /// <summary>Closes this runspace's default connections (module removal); other runspaces keep theirs.</summary>
    public static void CloseDefaults()
    {
        foreach (KvmConnection c in Defaults)
        {
            Remove(c);
        }
    }

    /// <summary>The connections a cmdlet acts on when it was given none: defaults, else LIBVIRT_DEFAULT_URI, else libvirt's default.</summary>
    public static IReadOnlyList<KvmConnection> Implicit()
    {
        IReadOnlyList<KvmConnection> defaults = Defaults;
        if (defaults.Count > 0)
        {
            return defaults;
        }

        // $env:LIBVIRT_DEFAULT_URI set in PowerShell does not reach libvirt's native getenv on Unix: pass it explicitly.
        return [FromUri(Environment.GetEnvironmentVariable("LIBVIRT_DEFAULT_URI"))];
    }

    private static string Key(string? uri) => uri?.Trim() ?? string.Empty;

    private static List<KvmConnection> DefaultList()
        => s_defaults.GetValue((object?)Runspace.DefaultRunspace ?? s_globalKey, _ => []);
}

/// <summary>Closes the module's connections when the module is removed.</summary>
public sealed class OnModuleImportAndRemove : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport() => KvmPS.Transport.Ssh.SshTransport.Register();

    public void OnRemove(PSModuleInfo psModuleInfo) => ModuleState.CloseDefaults();
}
