using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>
/// The <c>+tls</c> transport: TCP to port 16514 (or the URI's), then TLS with libvirt's x509 files. The server
/// certificate must chain to the CA file (the only trust anchor, not the system store) and match the host name,
/// unless <c>?no_verify=1</c>. After the handshake the daemon sends one byte: 1 when it accepted the client.
/// Files: <c>?pkipath=DIR</c> (DIR/cacert.pem, clientcert.pem, clientkey.pem), else libvirt's defaults
/// (root: /etc/pki/CA/cacert.pem, /etc/pki/libvirt/clientcert.pem, /etc/pki/libvirt/private/clientkey.pem;
/// other users: each file from ~/.pki/libvirt/ when it exists there; Windows: %APPDATA%\libvirt\pki\).
/// </summary>
public sealed class TlsTransport : IRpcTransport
{
    /// <summary>libvirtd's TLS port.</summary>
    public const int DefaultPort = 16514;

    private const string CaFile = "cacert.pem";
    private const string CertFile = "clientcert.pem";
    private const string KeyFile = "clientkey.pem";

    private static readonly TimeSpan s_handshakeTimeout = TimeSpan.FromSeconds(30);

    public string Name => "tls";

    public Stream Connect(LibvirtUri uri, LibvirtOpenOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(uri);
        string host = uri.Host ?? "localhost";
        int port = uri.Port ?? DefaultPort;
        bool verify = !uri.GetFlag("no_verify");
        PkiFiles files = PkiFiles.Locate(uri.Get("pkipath"));
        X509Certificate2Collection anchors = LoadCa(files.Ca);
        X509Certificate2? clientCert = LoadClientCertificate(files);

        var ssl = new SslStream(new NetworkStream(TcpTransport.ConnectSocket(uri, DefaultPort, ct), ownsSocket: true), leaveInnerStreamOpen: false);
        var check = new ServerCheck(host, port, anchors, verify, files.Ca);
        try
        {
            var auth = new SslClientAuthenticationOptions
            {
                TargetHost = host,
                RemoteCertificateValidationCallback = check.Validate,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            };
            if (clientCert is not null)
            {
                // Always offer it (libvirt does), whatever CA names the server lists as acceptable.
                auth.ClientCertificates = [clientCert];
                auth.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCert;
            }

            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(s_handshakeTimeout);
            try
            {
                ssl.AuthenticateAsClientAsync(auth, limit.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
            {
                throw TimedOut(host, port, e);
            }
            catch (AuthenticationException e)
            {
                throw check.Failure ?? new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Rpc,
                    $"TLS handshake with {host}:{port} failed: {Inner(e)}", e)
                {
                    Hint = "The daemon may have rejected the client certificate "
                        + (clientCert is null ? "(none was found)" : $"'{clientCert.Subject}' from {files.Cert}") + ". Check that it is issued by the daemon's CA.",
                };
            }
            catch (IOException e)
            {
                throw check.Failure ?? new LibvirtException(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Rpc,
                    $"TLS handshake with {host}:{port} failed: {Inner(e)}", e)
                {
                    Hint = "The daemon closed the connection during the handshake: it may not accept the client certificate "
                        + (clientCert is null ? "(none was found)" : $"'{clientCert.Subject}'") + ", or the port is not libvirt's TLS port.",
                };
            }

            ReadAcceptByte(ssl, host, port, clientCert, limit.Token, ct);
            return ssl;
        }
        catch
        {
            ssl.Dispose();
            throw;
        }
    }

    /// <summary>After the handshake libvirtd sends 1 when it accepts the client (certificate, address); otherwise it closes.</summary>
    private static void ReadAcceptByte(SslStream ssl, string host, int port, X509Certificate2? clientCert, CancellationToken limit, CancellationToken ct)
    {
        byte[] one = new byte[1];
        int n;
        try
        {
            n = ssl.ReadAsync(one, limit).AsTask().GetAwaiter().GetResult();
        }
        catch (IOException e)
        {
            throw Refused(host, port, clientCert, e);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw TimedOut(host, port, e);
        }

        if (n != 1 || one[0] != 1)
        {
            throw Refused(host, port, clientCert, null);
        }
    }

    private static LibvirtException Refused(string host, int port, X509Certificate2? clientCert, Exception? inner)
        => new(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Rpc,
            $"The daemon at {host}:{port} refused this client after the TLS handshake"
            + (clientCert is null ? " (no client certificate was sent)." : $" (client certificate '{clientCert.Subject}', SHA-256 thumbprint {clientCert.GetCertHashString(HashAlgorithmName.SHA256)})."), inner)
        {
            ErrorId = "TlsClientRefused",
            Hint = "Check the daemon's tls_allowed_dn_list and that the client certificate is issued by the daemon's CA (see virt-pki-validate on the host).",
        };

    private static LibvirtException TimedOut(string host, int port, Exception e)
        => new(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc,
            $"The TLS handshake with {host}:{port} did not finish within {s_handshakeTimeout.TotalSeconds:0} s.", e)
        {
            Hint = "Check that the port is libvirtd's TLS port (16514, listen_tls) and that nothing between drops the traffic.",
        };

    private static string Inner(Exception e) => e.InnerException is null ? e.Message : $"{e.Message} ({e.InnerException.Message})";

    private static X509Certificate2Collection LoadCa(string path)
    {
        var anchors = new X509Certificate2Collection();
        try
        {
            anchors.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw CannotRead("CA certificate", path, e);
        }

        if (anchors.Count == 0)
        {
            throw CannotRead("CA certificate", path, new CryptographicException("no certificate in the file"));
        }

        return anchors;
    }

    /// <summary>The client certificate with its key; null when neither file exists (the daemon then decides).</summary>
    private static X509Certificate2? LoadClientCertificate(PkiFiles files)
    {
        bool haveCert = File.Exists(files.Cert), haveKey = File.Exists(files.Key);
        if (!haveCert && !haveKey)
        {
            return null;
        }

        if (!haveCert || !haveKey)
        {
            string missing = haveCert ? files.Key : files.Cert;
            throw CannotRead(haveCert ? "client key" : "client certificate", missing, new FileNotFoundException("No such file", missing));
        }

        try
        {
            X509Certificate2 cert = X509Certificate2.CreateFromPemFile(files.Cert, files.Key);
            if (!OperatingSystem.IsLinux())
            {
                // SChannel (Windows) and macOS cannot use an ephemeral key from PEM: round-trip through PKCS#12.
                using (cert)
                {
                    return new X509Certificate2(cert.Export(X509ContentType.Pkcs12));
                }
            }

            return cert;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw CannotRead("client certificate or key", $"{files.Cert}, {files.Key}", e);
        }
    }

    private static LibvirtException CannotRead(string what, string path, Exception e)
        => new(LibvirtErrorCode.SystemError, LibvirtErrorDomain.Rpc, $"Cannot read {what} '{path}': {e.Message}", e)
        {
            Hint = "Put libvirt's TLS files in the standard places or name a folder with ?pkipath=DIR (cacert.pem, clientcert.pem, clientkey.pem).",
        };

    /// <summary>Checks the server's certificate against our CA and host name; remembers why it refused.</summary>
    private sealed class ServerCheck(string host, int port, X509Certificate2Collection anchors, bool verify, string caPath)
    {
        public LibvirtException? Failure { get; private set; }

        public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            if (!verify)
            {
                return true;
            }

            if (certificate is null)
            {
                Failure = Untrusted(null, "the server sent no certificate");
                return false;
            }

            using var server = new X509Certificate2(certificate);
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(anchors);
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (chain is not null)
            {
                // Intermediates the server sent (beyond its own certificate).
                foreach (X509ChainElement e in chain.ChainElements)
                {
                    if (!e.Certificate.Equals(server))
                    {
                        custom.ChainPolicy.ExtraStore.Add(e.Certificate);
                    }
                }
            }

            if (!custom.Build(server))
            {
                string why = string.Join("; ", custom.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
                Failure = Untrusted(server, $"it is not issued by the CA in {caPath} ({(why.Length > 0 ? why : "untrusted chain")})");
                return false;
            }

            if (!server.MatchesHostname(host, allowWildcards: true, allowCommonName: true))
            {
                Failure = Untrusted(server, $"it is not valid for the host name '{host}'");
                return false;
            }

            return true;
        }

        private LibvirtException Untrusted(X509Certificate2? server, string why)
            => new(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Rpc,
                server is null
                    ? $"The TLS server {host}:{port} is not trusted: {why}."
                    : $"The TLS server certificate of {host}:{port} is not trusted: {why}. Subject '{server.Subject}', issuer '{server.Issuer}', SHA-256 thumbprint {server.GetCertHashString(HashAlgorithmName.SHA256)}.")
            {
                ErrorId = "TlsCertificateUntrusted",
                Hint = $"Install the CA that issued the daemon's certificate as {caPath} (or name a folder with ?pkipath=DIR), connect with the name the certificate is issued for, or add ?no_verify=1 to skip the check.",
            };
    }

    /// <summary>Where the client's x509 files are.</summary>
    private readonly record struct PkiFiles(string Ca, string Cert, string Key)
    {
        public static PkiFiles Locate(string? pkiPath)
        {
            if (!string.IsNullOrEmpty(pkiPath))
            {
                return new(Path.Combine(pkiPath, CaFile), Path.Combine(pkiPath, CertFile), Path.Combine(pkiPath, KeyFile));
            }

            if (OperatingSystem.IsWindows())
            {
                string dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData), "libvirt", "pki");
                return new(Path.Combine(dir, CaFile), Path.Combine(dir, CertFile), Path.Combine(dir, KeyFile));
            }

            var global = new PkiFiles("/etc/pki/CA/cacert.pem", "/etc/pki/libvirt/clientcert.pem", "/etc/pki/libvirt/private/clientkey.pem");
            if (Environment.IsPrivilegedProcess)
            {
                return global;
            }

            // Other users: each file from ~/.pki/libvirt when it is there, else the global one (as libvirt does).
            string user = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".pki", "libvirt");
            string ca = Path.Combine(user, CaFile), cert = Path.Combine(user, CertFile), key = Path.Combine(user, KeyFile);
            bool userPair = File.Exists(cert) && File.Exists(key);   // certificate and key come as a pair
            return new(File.Exists(ca) ? ca : global.Ca, userPair ? cert : global.Cert, userPair ? key : global.Key);
        }
    }
}

/// <summary>Registers the transports that live in KvmPS.Core beside unix and tcp.</summary>
public sealed partial class ManagedBackend
{
    static partial void RegisterBuiltInTransports() => RegisterTransport("tls", () => new TlsTransport());
}
