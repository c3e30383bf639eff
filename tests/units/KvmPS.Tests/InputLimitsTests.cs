using System.Collections;
using System.Collections.Specialized;
using System.Text;
using KvmPS.Core;
using KvmPS.Yaml;

namespace KvmPS.Tests;

/// <summary>
/// Deep, huge and self-referencing input to the real VM spec and user-data readers: a clear error naming where, never
/// a stack overflow (which would end this test process, and pwsh with it).
/// </summary>
public sealed class InputLimitsTests
{
    private static readonly Func<string, string> s_noPath = p => p;

    private static VmSpecException UserDataFails(object userData)
        => Assert.Throws<VmSpecException>(() => CloudInitYaml.Compose("vm1", new CloudInitYaml.Options { UserData = userData }, s_noPath));

    /// <summary>A spec whose cloudInit.userData is <paramref name="levels"/> nested flow mappings: the deepest node is at level 2 + levels.</summary>
    private static string SpecWithUserDataDepth(int levels)
        => "name: vm1\ncloudInit:\n  userData: " + string.Concat(Enumerable.Repeat("{a: ", levels)) + "1" + new string('}', levels) + "\n";

    [Fact]
    public void ASpecNested20000Levels_IsRefused_AtTheLineWhereItGoesTooDeep()
    {
        // The 40 KB spec of the report: 20,000 nested lists.
        string yaml = "name: vm1\ncloudInit:\n  userData: " + new string('[', 20000) + new string(']', 20000) + "\n";
        Assert.True(yaml.Length > 40000);
        VmSpecException e = Assert.Throws<VmSpecException>(() => VmSpecYaml.FromYaml(yaml));
        Assert.Equal("yaml", e.Key);
        Assert.Equal(3, e.Line);
        Assert.Equal(13 + 62, e.Column);   // the 65th level: "  userData: " then 62 brackets (levels 3..64)
        Assert.Contains("nested more than 64 levels", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASpecAtTheLimit_IsAccepted_OneLevelMore_IsNot()
    {
        VmSpec spec = VmSpecYaml.FromYaml(SpecWithUserDataDepth(62));   // levels 1..64
        Assert.NotNull(spec.CloudInit);
        Assert.Equal(62, spec.CloudInit!.UserData.Split('\n').Count(l => l.TrimStart().StartsWith("a:", StringComparison.Ordinal)));

        VmSpecException e = Assert.Throws<VmSpecException>(() => VmSpecYaml.FromYaml(SpecWithUserDataDepth(63)));
        Assert.Contains("nested more than 64 levels", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ARecursiveAliasAsAMappingKey_IsRefused()
    {
        // The three-line cloud-config of the report.
        VmSpecException e = UserDataFails("#cloud-config\n? &a [*a]\n: 1\n");
        Assert.Equal("userData", e.Key);
        Assert.Equal(2, e.Line);
        Assert.Contains("recursive alias", e.Message, StringComparison.Ordinal);

        // The same in a VM spec.
        e = Assert.Throws<VmSpecException>(() => VmSpecYaml.FromYaml("name: vm1\ncloudInit:\n  userData:\n    ? &a [*a]\n    : 1\n"));
        Assert.Equal(4, e.Line);
        Assert.Contains("recursive alias", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnAliasAsAMappingKey_IsRefused_AsAValueItIsFine()
    {
        VmSpecException e = UserDataFails("#cloud-config\nx: &k foo\n*k : 1\n");
        Assert.Equal(3, e.Line);
        Assert.Contains("alias (*k) cannot be a mapping key", e.Message, StringComparison.Ordinal);

        CloudInitSeed seed = CloudInitYaml.Compose("vm1", new CloudInitYaml.Options { UserData = "#cloud-config\nx: &k [a, b]\ny: *k\n", HostName = "h1" }, s_noPath);
        Assert.Contains("y:", seed.UserData, StringComparison.Ordinal);
    }

    [Fact]
    public void AliasExpansion_IsCounted_BillionLaughs()
    {
        var sb = new StringBuilder("#cloud-config\na: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (char c = 'b'; c <= 'i'; c++)
        {
            sb.Append(c).Append(": &").Append(c).Append(" [").Append(string.Join(", ", Enumerable.Repeat("*" + (char)(c - 1), 10))).Append("]\n");
        }

        VmSpecException e = UserDataFails(sb.ToString());
        Assert.Contains("more than 100,000 nodes", e.Message, StringComparison.Ordinal);
        Assert.Equal(6, e.Line);   // a: 11 nodes, b: 111, c: 1,111, d: 11,111; e: (ten times d) passes 100,000
    }

    [Fact]
    public void AHashtableThatContainsItself_IsRefused_AsUserDataAndInASpec()
    {
        var h = new Hashtable { ["packages"] = new[] { "nginx" } };
        h["self"] = h;
        VmSpecException e = UserDataFails(h);
        Assert.Equal("userData.self", e.Key);
        Assert.Contains("contains itself", e.Message, StringComparison.Ordinal);

        var spec = new Hashtable { ["Name"] = "vm1", ["CloudInit"] = new Hashtable { ["UserData"] = h } };
        e = Assert.Throws<VmSpecException>(() => VmSpecYaml.FromDictionary(spec));
        Assert.Equal("CloudInit.UserData.self", e.Key);

        // A list that holds itself.
        object[] list = new object[2];
        list[0] = "x";
        list[1] = list;
        e = Assert.Throws<VmSpecException>(() => VmSpecYaml.FromDictionary(new Hashtable { ["Name"] = "vm1", ["Networks"] = list }));
        Assert.Equal("Networks[1]", e.Key);

        // The same hashtable twice side by side is not a cycle.
        var shared = new Hashtable { ["a"] = 1 };
        CloudInitSeed seed = CloudInitYaml.Compose("vm1", new CloudInitYaml.Options { UserData = new Hashtable { ["x"] = shared, ["y"] = shared } }, s_noPath);
        Assert.Contains("a: 1", seed.UserData, StringComparison.Ordinal);
    }

    [Fact]
    public void DeepAndHugeHashtables_AreRefused()
    {
        var root = new Hashtable();
        Hashtable cur = root;
        for (int i = 0; i < 20000; i++)
        {
            var next = new Hashtable();
            cur["a"] = next;
            cur = next;
        }

        VmSpecException e = UserDataFails(root);
        Assert.Contains("nested more than 64 levels", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("userData.a.a.a", e.Key, StringComparison.Ordinal);

        var huge = new OrderedDictionary();
        for (int i = 0; i < 60000; i++)
        {
            huge[$"k{i}"] = i;
        }

        e = UserDataFails(huge);
        Assert.Contains("more than 100,000 items", e.Message, StringComparison.Ordinal);

        // 64 levels of hashtables in a spec (the spec itself is level 1) are fine.
        var ok = new Hashtable();
        cur = ok;
        for (int i = 0; i < 61; i++)
        {
            var next = new Hashtable();
            cur["a"] = next;
            cur = next;
        }

        VmSpec spec = VmSpecYaml.FromDictionary(new Hashtable { ["Name"] = "vm1", ["CloudInit"] = new Hashtable { ["UserData"] = ok } });
        Assert.NotNull(spec.CloudInit);
    }
}
