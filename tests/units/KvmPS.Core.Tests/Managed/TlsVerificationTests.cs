using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using KvmPS.Core.Backend;
using KvmPS.Core.Managed;

namespace KvmPS.Core.Tests.Managed;

/// <summary>
/// A throwaway PKI made with certtool (gnutls-bin, installed by .ci/provision-remote) as an administrator would
/// make libvirt's: a CA, server certificates (good, revoked), a client certificate and a CA certificate that both
/// carry the host's name, the CA's CRL, and an impostor CA with the same name but another key.
/// </summary>
public sealed class TestPki : IDisposable
{
    public TestPki()
    {
        Dir = Directory.CreateTempSubdirectory("kvmps-tls-").FullName;
        const string Host = "cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\nexpiration_days = 30\n";
        Key("ca");
        Template("ca", "cn = KvmPS test CA\norganization = KvmPS tests\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n");
        CertTool("--generate-self-signed", "--load-privkey", P("ca-key.pem"), "--template", P("ca.info"), "--outfile", P("ca.pem"));
        // Same name, another key: a CRL it signs must not count for the real CA.
        Key("impostor");
        CertTool("--generate-self-signed", "--load-privkey", P("impostor-key.pem"), "--template", P("ca.info"), "--outfile", P("impostor.pem"));

        Leaf("good", Host + "tls_www_server\nsigning_key\nencryption_key\n");
        Leaf("revoked", Host + "tls_www_server\nsigning_key\nencryption_key\n");
        Leaf("client", Host + "tls_www_client\nsigning_key\nencryption_key\n");
        Leaf("caleaf", Host + "ca\ncert_signing_key\ntls_www_server\n");

        Template("crl", "crl_next_update = 30\ncrl_number = 7\n");
        CertTool("--generate-crl", "--load-ca-privkey", P("ca-key.pem"), "--load-ca-certificate", P("ca.pem"),
            "--load-certificate", P("revoked.pem"), "--template", P("crl.info"), "--outfile", P("crl.pem"));
        CertTool("--generate-crl", "--load-ca-privkey", P("impostor-key.pem"), "--load-ca-certificate", P("impostor.pem"),
            "--load-certificate", P("good.pem"), "--template", P("crl.info"), "--outfile", P("impostor-crl.pem"));
    }

    public string Dir { get; }

    public string P(string name) => Path.Combine(Dir, name);

    /// <summary>A pkipath= folder with the CA and, when given, a cacrl.pem with that content.</summary>
    public string PkiPath(string? crlContent)
    {
        string dir = Directory.CreateDirectory(Path.Combine(Dir, "pki-" + Guid.NewGuid().ToString("N"))).FullName;
        File.Copy(P("ca.pem"), Path.Combine(dir, "cacert.pem"));
        if (crlContent is not null)
        {
            File.WriteAllText(Path.Combine(dir, "cacrl.pem"), crlContent);
        }

        return dir;
    }

    public X509Certificate2 Server(string name) => X509Certificate2.CreateFromPemFile(P($"{name}.pem"), P($"{name}-key.pem"));

    public void Dispose() => Directory.Delete(Dir, recursive: true);

    private void Key(string name)
        => CertTool("--generate-privkey", "--key-type=rsa", "--bits=2048", "--outfile", P($"{name}-key.pem"));

    private void Template(string name, string text) => File.WriteAllText(P($"{name}.info"), text);

    private void Leaf(string name, string template)
    {
        Key(name);
        Template(name, template);
        CertTool("--generate-certificate", "--load-privkey", P($"{name}-key.pem"), "--load-ca-certificate", P("ca.pem"),
            "--load-ca-privkey", P("ca-key.pem"), "--template", P($"{name}.info"), "--outfile", P($"{name}.pem"));
    }

    private static void CertTool(params string[] args)
    {
        var psi = new ProcessStartInfo("certtool") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"certtool {string.Join(' ', args)} failed: {err.Result}");
        }
    }
}

/// <summary>
/// The managed TLS transport's check of the server certificate, against a TLS server in this process (on
/// 127.0.0.1) that presents the certificate under test and then sends libvirt's "accepted" byte.
/// </summary>
public sealed class TlsVerificationTests(TestPki pki) : IClassFixture<TestPki>
{
    private static readonly LibvirtOpenOptions s_options = new() { KeepAliveIntervalSeconds = 0 };

    /// <summary>Connects to an in-process server presenting <paramref name="serverCert"/>; returns the client's error, or null when it connected.</summary>
    private static LibvirtException? ConnectTo(string serverCert, string pkiPath, TestPki pki)
    {
        using X509Certificate2 cert = pki.Server(serverCert);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        Task server = Task.Run(async () =>
        {
            try
            {
                using TcpClient tcp = await listener.AcceptTcpClientAsync();
                using var ssl = new SslStream(tcp.GetStream());
                await ssl.AuthenticateAsServerAsync(cert, clientCertificateRequired: false, checkCertificateRevocation: false);
                await ssl.WriteAsync(new byte[] { 1 });
                await ssl.FlushAsync();
                await ssl.ReadExactlyAsync(new byte[1]);   // until the client goes (EndOfStreamException)
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException or System.Security.Authentication.AuthenticationException)
            {
                // the client refused the certificate, or never connected (the listener stopped first)
            }
        });
        try
        {
            using Stream s = new TlsTransport().Connect(LibvirtUri.Parse($"qemu+tls://127.0.0.1:{port}/system?pkipath={Uri.EscapeDataString(pkiPath)}"), s_options, CancellationToken.None);
            return null;
        }
        catch (LibvirtException e)
        {
            return e;
        }
        finally
        {
            listener.Stop();
            server.Wait(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public void AGoodServerCertificate_Connects_WithTheCrlInPlace()
    {
        Assert.Null(ConnectTo("good", pki.PkiPath(File.ReadAllText(pki.P("crl.pem"))), pki));
        Assert.Null(ConnectTo("good", pki.PkiPath(null), pki));
    }

    [Fact]
    public void ARevokedServerCertificate_IsRefused_TlsCertificateRevoked()
    {
        string pkiPath = pki.PkiPath(File.ReadAllText(pki.P("crl.pem")));
        LibvirtException? e = ConnectTo("revoked", pkiPath, pki);
        Assert.NotNull(e);
        Assert.Equal("TlsCertificateRevoked", e.ErrorId);
        Assert.Equal(LibvirtErrorCode.AuthFailed, e.Code);
        Assert.Contains("is revoked by the CRL in " + Path.Combine(pkiPath, "cacrl.pem"), e.Message, StringComparison.Ordinal);
        using X509Certificate2 revoked = X509Certificate2.CreateFromPem(File.ReadAllText(pki.P("revoked.pem")));
        Assert.Contains(revoked.SerialNumber, e.Message, StringComparison.Ordinal);

        // Without cacrl.pem (libvirt's CRL file is optional) the same certificate is accepted: the CRL is what refuses it.
        Assert.Null(ConnectTo("revoked", pki.PkiPath(null), pki));
        // A CRL among others in the file (PEM blocks one after the other) still counts.
        string both = File.ReadAllText(pki.P("impostor-crl.pem")) + File.ReadAllText(pki.P("crl.pem"));
        Assert.Equal("TlsCertificateRevoked", ConnectTo("revoked", pki.PkiPath(both), pki)?.ErrorId);
    }

    [Fact]
    public void ACrlSignedByAnotherKey_WithTheSameName_IsNotBelieved()
    {
        // The impostor CA (same subject as the real one) "revokes" the good certificate: its signature does not verify.
        Assert.Null(ConnectTo("good", pki.PkiPath(File.ReadAllText(pki.P("impostor-crl.pem"))), pki));
    }

    [Fact]
    public void AClientCertificate_PresentedByTheServer_IsRefused_TlsCertificatePurpose()
    {
        LibvirtException? e = ConnectTo("client", pki.PkiPath(File.ReadAllText(pki.P("crl.pem"))), pki);
        Assert.NotNull(e);
        Assert.Equal("TlsCertificatePurpose", e.ErrorId);
        Assert.Contains("extended key usage does not allow TLS server authentication", e.Message, StringComparison.Ordinal);
        Assert.Contains("1.3.6.1.5.5.7.3.2", e.Message, StringComparison.Ordinal);   // what it lists: clientAuth
    }

    [Fact]
    public void ACaCertificate_PresentedByTheServer_IsRefused_TlsCertificatePurpose()
    {
        LibvirtException? e = ConnectTo("caleaf", pki.PkiPath(null), pki);
        Assert.NotNull(e);
        Assert.Equal("TlsCertificatePurpose", e.ErrorId);
        Assert.Contains("CA certificate (basic constraints CA:TRUE)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AServerOfAnotherCa_IsUntrusted()
    {
        // The impostor's self-signed certificate carries the CA's name but not its key.
        string dir = pki.PkiPath(null);
        File.Copy(pki.P("impostor.pem"), Path.Combine(pki.Dir, "other.pem"), overwrite: true);
        File.Copy(pki.P("impostor-key.pem"), Path.Combine(pki.Dir, "other-key.pem"), overwrite: true);
        Assert.Equal("TlsCertificateUntrusted", ConnectTo("other", dir, pki)?.ErrorId);
    }

    [Fact]
    public void AnUnreadableCrl_FailsTheConnection_NamingTheFile()
    {
        string pkiPath = pki.PkiPath("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
        LibvirtException? e = ConnectTo("good", pkiPath, pki);
        Assert.NotNull(e);
        Assert.Contains($"Cannot read certificate revocation list '{Path.Combine(pkiPath, "cacrl.pem")}'", e.Message, StringComparison.Ordinal);
    }
}
