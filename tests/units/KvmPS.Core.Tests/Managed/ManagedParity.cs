using System.Diagnostics;
using KvmPS.Core.Backend;
using KvmPS.Core.Managed;
using KvmPS.Core.Native;

namespace KvmPS.Core.Tests.Managed;

/// <summary>
/// Opens the same daemon through both backends so a test can compare their answers: the managed backend
/// speaks the RPC protocol itself, the native one goes through libvirt's own remote driver.
/// </summary>
internal static class ManagedParity
{
    /// <summary>test:///default inside the daemon: what the managed backend opens for test:///default.</summary>
    public const string NativeTestUri = "test+unix:///default";
    public const string ManagedTestUri = "test:///default";
    public const string SystemUri = "qemu:///system";

    public static bool DaemonAvailable => SocketProxy.DaemonAvailable;

    private static bool? s_system;

    /// <summary>True when qemu:///system answers (the daemon runs and the QEMU driver is usable).</summary>
    public static bool SystemAvailable
    {
        get
        {
            if (s_system is null)
            {
                try
                {
                    using ILibvirtConnection c = OpenNative(SystemUri);
                    s_system = c.GetHypervisorType() == "QEMU";
                }
                catch (LibvirtException)
                {
                    s_system = false;
                }
            }

            return s_system.Value;
        }
    }

    public static ILibvirtConnection OpenNative(string uri) => NativeBackend.Instance.Open(uri, new LibvirtOpenOptions());

    public static ILibvirtConnection OpenManaged(string uri) => ManagedBackend.Instance.Open(uri, new LibvirtOpenOptions());

    /// <summary>A unique name for an object a test creates (kvmps-t-…).</summary>
    public static string NewName(string suffix) => $"kvmps-t-{Guid.NewGuid().ToString("N")[..8]}-{suffix}";

    /// <summary>Both calls fail with the same libvirt error (code, domain and message).</summary>
    public static LibvirtException SameError(Action native, Action managed)
    {
        LibvirtException n = Assert.Throws<LibvirtException>(native);
        LibvirtException m = Assert.Throws<LibvirtException>(managed);
        Assert.Equal(n.Code, m.Code);
        Assert.Equal(n.ErrorDomain, m.ErrorDomain);
        Assert.Equal(n.Message, m.Message);
        return m;
    }

    /// <summary>Both calls succeed with equal results (checked by <paramref name="compare"/>), or both fail with the same error.</summary>
    public static void SameOutcome<T>(Func<T> native, Func<T> managed, Action<T, T> compare)
    {
        T expected;
        try
        {
            expected = native();
        }
        catch (LibvirtException)
        {
            SameError(() => native(), () => managed());
            return;
        }

        compare(expected, managed());
    }

    /// <summary>Runs a command line tool (virsh) and returns its exit code.</summary>
    public static int Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEnd();
        _ = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>Best-effort cleanup: never lets a failure in teardown hide the test's own result.</summary>
    public static void Quietly(Action a)
    {
        try
        {
            a();
        }
        catch (Exception e) when (e is LibvirtException or IOException or UnauthorizedAccessException)
        {
        }
    }
}
