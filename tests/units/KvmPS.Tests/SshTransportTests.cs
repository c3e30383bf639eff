using KvmPS.Core;
using KvmPS.Core.Managed;
using KvmPS.Transport.Ssh;

namespace KvmPS.Tests;

/// <summary>The SSH transport's known_hosts handling and remote command, without a server.</summary>
public sealed class SshTransportTests : IDisposable
{
    // Two ed25519 public keys made with ssh-keygen, and OpenSSH's fingerprint of the first.
    private const string KeyA = "AAAAC3NzaC1lZDI1NTE5AAAAIPA006BQ+HOj8t/CeuXOiaFakbK+iwVC8F189dY0mkYA";
    private const string KeyB = "AAAAC3NzaC1lZDI1NTE5AAAAIPMu9LLL/ciqtE8i+l5UWtskpudCgAOcdGhgcY0Saovj";
    private const string FingerprintA = "SHA256:IO6uZCSYCOOXiJM8FdpELhpOuqhCQ3oZMDcaQwjoc8s";

    // "[h.example]:2222 ssh-ed25519 KeyA" hashed by ssh-keygen -H.
    private const string HashedA = "|1|SRKva0kEjkX2rqUe29Uw0jl2mR0=|5FIr8Aa9lsnSPB6ERu0F2aD2KUM= ssh-ed25519 " + KeyA;

    private readonly string _dir = Directory.CreateTempSubdirectory("kvmps-ssh-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Blob(string key) => Convert.FromBase64String(key);

    private KnownHosts Load(params string[] lines)
    {
        string path = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        File.WriteAllLines(path, lines);
        return KnownHosts.Load([path, Path.Combine(_dir, "missing")]);
    }

    [Fact]
    public void Fingerprint_And_KeyType_MatchOpenSsh()
    {
        Assert.Equal(FingerprintA, KnownHosts.Fingerprint(Blob(KeyA)));
        Assert.Equal("ssh-ed25519", KnownHosts.KeyType(Blob(KeyA)));
        Assert.Equal(string.Empty, KnownHosts.KeyType([0, 0, 0, 99, 1]));
        Assert.Equal("kvm1", KnownHosts.HostName("kvm1", 22));
        Assert.Equal("[kvm1]:2222", KnownHosts.HostName("kvm1", 2222));
    }

    [Theory]
    [InlineData("[h.example]:2222 ssh-ed25519 " + KeyA)]
    [InlineData("other,[h.example]:2222 ssh-ed25519 " + KeyA + " a comment")]
    [InlineData("[h.*]:2222 ssh-ed25519 " + KeyA)]
    [InlineData("[H.EXAMPLE]:222? ssh-ed25519 " + KeyA)]
    [InlineData(HashedA)]
    public void Check_Known(string line)
        => Assert.Equal(HostKeyVerdict.Known, Load("# comment", string.Empty, line).Check("[h.example]:2222", Blob(KeyA)));

    [Fact]
    public void Check_UnknownHostPortOrNegatedPattern()
    {
        KnownHosts k = Load("h.example ssh-ed25519 " + KeyA, "*.example,![h.example]:2222 ssh-ed25519 " + KeyB, "garbage", "x ssh-ed25519 not-base64!");
        Assert.Equal(HostKeyVerdict.Unknown, k.Check("[h.example]:2222", Blob(KeyA)));   // port 22 entry only
        Assert.Equal(HostKeyVerdict.Unknown, k.Check("[h.example]:2222", Blob(KeyB)));   // negated
        Assert.Equal(HostKeyVerdict.Known, k.Check("h.example", Blob(KeyA)));
        Assert.Equal(HostKeyVerdict.Unknown, Load().Check("h.example", Blob(KeyA)));
    }

    [Fact]
    public void Check_ChangedAndRevoked()
    {
        Assert.Equal(HostKeyVerdict.Changed, Load(HashedA).Check("[h.example]:2222", Blob(KeyB)));
        Assert.Equal(HostKeyVerdict.Revoked, Load("@revoked * ssh-ed25519 " + KeyB, "[h.example]:2222 ssh-ed25519 " + KeyB).Check("[h.example]:2222", Blob(KeyB)));
        // @cert-authority lines are not host keys
        Assert.Equal(HostKeyVerdict.Unknown, Load("@cert-authority [h.example]:2222 ssh-ed25519 " + KeyA).Check("[h.example]:2222", Blob(KeyA)));
        Assert.Equal(new[] { "ssh-ed25519" }, Load(HashedA, "@revoked * ssh-rsa " + KeyB).KeyTypesFor("[h.example]:2222"));
    }

    [Fact]
    public void Check_ANewKeyTypeForAKnownHostIsNotUnknown()
    {
        // The host is listed with an RSA key only; the server now offers ed25519: not "new", so -AcceptHostKey cannot record it.
        Assert.Equal(HostKeyVerdict.OtherType, Load("[h.example]:2222 ssh-rsa " + KeyA).Check("[h.example]:2222", Blob(KeyB)));
        Assert.Equal(HostKeyVerdict.OtherType, Load("|1|SRKva0kEjkX2rqUe29Uw0jl2mR0=|5FIr8Aa9lsnSPB6ERu0F2aD2KUM= ecdsa-sha2-nistp256 " + KeyB).Check("[h.example]:2222", Blob(KeyA)));
        // Another host's RSA key, a negated pattern, @revoked and @cert-authority lines do not make the host known.
        Assert.Equal(HostKeyVerdict.Unknown, Load("other.example ssh-rsa " + KeyA, "*,![h.example]:2222 ssh-rsa " + KeyA).Check("[h.example]:2222", Blob(KeyB)));
        Assert.Equal(HostKeyVerdict.Unknown, Load("@revoked [h.example]:2222 ssh-rsa " + KeyA, "@cert-authority [h.example]:2222 ssh-rsa " + KeyA).Check("[h.example]:2222", Blob(KeyB)));
        // Both types listed, the offered one matches: known.
        Assert.Equal(HostKeyVerdict.Known, Load("[h.example]:2222 ssh-rsa " + KeyB, "[h.example]:2222 ssh-ed25519 " + KeyA).Check("[h.example]:2222", Blob(KeyA)));
    }

    [Fact]
    public void Append_CreatesTheFileAndAddsALineThatThenMatches()
    {
        string path = Path.Combine(_dir, "sub", "known_hosts");
        KnownHosts.Append(path, "[h.example]:2222", Blob(KeyA));
        File.AppendAllText(path, "no-newline ssh-ed25519 " + KeyB);
        KnownHosts.Append(path, "kvm1", Blob(KeyB));
        Assert.Equal(new[] { "[h.example]:2222 ssh-ed25519 " + KeyA, "no-newline ssh-ed25519 " + KeyB, "kvm1 ssh-ed25519 " + KeyB }, File.ReadAllLines(path));
        KnownHosts k = KnownHosts.Load([path]);
        Assert.Equal(HostKeyVerdict.Known, k.Check("[h.example]:2222", Blob(KeyA)));
        Assert.Equal(HostKeyVerdict.Known, k.Check("kvm1", Blob(KeyB)));
    }

    [Fact]
    public void RemoteCommand_FollowsLibvirtsProxyRules()
    {
        string auto = SshTransport.RemoteCommand(LibvirtUri.Parse("qemu+ssh://root@kvm1:2222/system?keyfile=/k&known_hosts=/kh"), readOnly: false);
        Assert.StartsWith("sh -c '", auto, StringComparison.Ordinal);
        Assert.Contains("virt-ssh-helper '\\''qemu:///system'\\''", auto, StringComparison.Ordinal);
        Assert.Contains("-U '\\''/var/run/libvirt/libvirt-sock'\\''", auto, StringComparison.Ordinal);
        Assert.DoesNotContain("keyfile", auto, StringComparison.Ordinal);

        string ro = SshTransport.RemoteCommand(LibvirtUri.Parse("qemu+ssh://kvm1/system"), readOnly: true);
        Assert.Contains("virt-ssh-helper -r ", ro, StringComparison.Ordinal);
        Assert.Contains("libvirt-sock-ro", ro, StringComparison.Ordinal);

        string native = SshTransport.RemoteCommand(LibvirtUri.Parse("qemu+ssh://kvm1/system?proxy=native"), readOnly: false);
        Assert.DoesNotContain(" nc", native, StringComparison.Ordinal);
        string session = SshTransport.RemoteCommand(LibvirtUri.Parse("qemu+ssh://kvm1/session"), readOnly: false);
        Assert.DoesNotContain("-U", session, StringComparison.Ordinal);

        // ?socket= or ?netcat= means the nc proxy, as in libvirt
        string socket = SshTransport.RemoteCommand(LibvirtUri.Parse("qemu+ssh://kvm1/system?socket=/run/x%20y&netcat=/opt/nc"), readOnly: false);
        Assert.DoesNotContain("virt-ssh-helper", socket, StringComparison.Ordinal);
        Assert.Contains("'\\''/opt/nc'\\'' -q0 -U '\\''/run/x y'\\''", socket, StringComparison.Ordinal);

        var e = Assert.Throws<LibvirtException>(() => SshTransport.RemoteCommand(LibvirtUri.Parse("qemu+ssh://kvm1/system?proxy=other"), readOnly: false));
        Assert.Equal(LibvirtErrorCode.InvalidArg, e.Code);
    }

    [Theory]
    [InlineData("plain", "'plain'")]
    [InlineData("it's", "'it'\\''s'")]
    [InlineData("", "''")]
    public void Quote_IsPosixSingleQuoting(string input, string expected) => Assert.Equal(expected, SshTransport.Quote(input));
}
