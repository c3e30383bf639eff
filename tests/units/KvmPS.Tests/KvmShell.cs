using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Reflection;
using KvmPS.Commands;

namespace KvmPS.Tests;

/// <summary>A PowerShell host with the KvmPS cmdlets registered directly (no module import, no ALC).</summary>
public sealed class KvmShell : IDisposable
{
    private static readonly Type[] s_cmdlets = typeof(KvmCmdlet).Assembly.GetTypes()
        .Where(t => t.GetCustomAttribute<CmdletAttribute>() is not null && !t.IsAbstract).ToArray();

    public KvmShell()
    {
        InitialSessionState iss = InitialSessionState.CreateDefault2();
        foreach (Type t in s_cmdlets)
        {
            CmdletAttribute a = t.GetCustomAttribute<CmdletAttribute>()!;
            iss.Commands.Add(new SessionStateCmdletEntry($"{a.VerbName}-{a.NounName}", t, helpFileName: null));
        }

        PS = PowerShell.Create(iss);
    }

    public PowerShell PS { get; }

    public static string Fixture => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "fixtures", "node.xml"));

    public static string FixtureUri => "test://" + Fixture;

    public IReadOnlyList<PSObject> Run(string script)
    {
        PS.Commands.Clear();
        PS.Streams.ClearStreams();
        return PS.AddScript(script).Invoke();
    }

    public void Dispose() => PS.Dispose();
}
