using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>
/// The <c>+tls</c> transport: TCP to port 16514 (or the URI's), then TLS with libvirt's x509 files. Unless
/// <c>?no_verify=1</c>, the server certificate must chain to the CA file (the only trust anchor, not the system
/// store; nothing is downloaded), must not be revoked by the CA's CRL (cacrl.pem, when there is one, as libvirt
/// reads it), must be a leaf for TLS servers (not a CA; serverAuth when it lists extended key usages) and must
/// match the host name. After the handshake the daemon sends one byte: 1 when it accepted the client.
/// Files: <c>?pkipath=DIR</c> (DIR/cacert.pem, cacrl.pem, clientcert.pem, clientkey.pem), else libvirt's defaults
/// (root: /etc/pki/CA/cacert.pem and cacrl.pem, /etc/pki/libvirt/clientcert.pem, /etc/pki/libvirt/private/clientkey.pem;
/// other users: each file from ~/.pki/libvirt/ when it exists there; Windows: %APPDATA%\libvirt\pki\).
/// </summary>
public sealed class TlsTransport : IRpcTransport
{
    /// <summary>libvirtd's TLS port.</summary>
    public const int DefaultPort = 16514;

    private const string CaFile = "cacert.pem";
    private const string CrlFile = "cacrl.pem";
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
        IReadOnlyList<CertificateRevocationList> crls = verify ? LoadCrls(files.Crl) : [];
        X509Certificate2? clientCert = LoadClientCertificate(files);

        var ssl = new SslStream(new NetworkStream(TcpTransport.ConnectSocket(uri, DefaultPort, ct), ownsSocket: true), leaveInnerStreamOpen: false);
        var check = new ServerCheck(host, port, anchors, crls, verify, files);
        try
        {
            var auth = new SslClientAuthenticationOptions
            {
                TargetHost = host,
                RemoteCertificateValidationCallback = check.Validate,
                // The chain SslStream builds before the callback: our CA only, and no fetching of certificates
                // or revocation lists from URLs named by a peer that is not verified yet.
                CertificateChainPolicy = ServerCheck.Policy(anchors),
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

    /// <summary>The CA's revocation lists from cacrl.pem (PEM, one or more); none when the file does not exist, as in libvirt.</summary>
    private static IReadOnlyList<CertificateRevocationList> LoadCrls(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        try
        {
            var crls = new List<CertificateRevocationList>();
            string text = File.ReadAllText(path);
            ReadOnlySpan<char> rest = text;
            while (PemEncoding.TryFind(rest, out PemFields pem))
            {
                if (rest[pem.Label].SequenceEqual("X509 CRL"))
                {
                    crls.Add(CertificateRevocationList.Parse(Convert.FromBase64String(rest[pem.Base64Data].ToString())));
                }

                rest = rest[pem.Location.End..];
            }

            if (crls.Count == 0)
            {
                throw new CryptographicException("no X509 CRL in the file");
            }

            return crls;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or FormatException)
        {
            throw CannotRead("certificate revocation list", path, e);
        }
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
            Hint = "Put libvirt's TLS files in the standard places or name a folder with ?pkipath=DIR (cacert.pem, cacrl.pem, clientcert.pem, clientkey.pem).",
        };

    /// <summary>Checks the server's certificate against our CA, its CRL, the certificate's purpose and the host name; remembers why it refused.</summary>
    private sealed class ServerCheck(string host, int port, X509Certificate2Collection anchors, IReadOnlyList<CertificateRevocationList> crls, bool verify, PkiFiles files)
    {
        private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
        private const string AnyExtendedKeyUsageOid = "2.5.29.37.0";

        public LibvirtException? Failure { get; private set; }

        /// <summary>Chain building with the CA file as the only anchor and nothing downloaded (revocation is ours: the CRL file).</summary>
        public static X509ChainPolicy Policy(X509Certificate2Collection anchors)
        {
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
                DisableCertificateDownloads = true,
            };
            policy.CustomTrustStore.AddRange(anchors);
            return policy;
        }

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
            using var custom = new X509Chain { ChainPolicy = Policy(anchors) };
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
                Failure = Untrusted(server, $"it is not issued by the CA in {files.Ca} ({(why.Length > 0 ? why : "untrusted chain")})");
                return false;
            }

            // Each certificate of the chain against the CRLs of its issuer (the anchor itself is not checked).
            for (int i = 0; i + 1 < custom.ChainElements.Count; i++)
            {
                X509Certificate2 subject = custom.ChainElements[i].Certificate, issuer = custom.ChainElements[i + 1].Certificate;
                foreach (CertificateRevocationList crl in crls)
                {
                    if (crl.IsIssuedBy(issuer) && crl.Revokes(subject) is { } when)
                    {
                        Failure = Refused(server, "TlsCertificateRevoked",
                            $"{(i == 0 ? "it" : $"the CA certificate '{subject.Subject}' in its chain")} is revoked by the CRL in {files.Crl} (revoked {when:u}, serial {subject.SerialNumber})",
                            "The daemon's certificate was revoked: do not connect until its administrator installs a new one. If the CRL is out of date, replace " + files.Crl + " with the CA's current one.");
                        return false;
                    }
                }
            }

            if (PurposeProblem(server) is { } problem)
            {
                Failure = Refused(server, "TlsCertificatePurpose", problem,
                    "The daemon must present a server certificate (certtool template: tls_www_server; no 'ca'), issued by the CA for this host. A client certificate or a CA certificate is never accepted as a server's.");
                return false;
            }

            if (!server.MatchesHostname(host, allowWildcards: true, allowCommonName: true))
            {
                Failure = Untrusted(server, $"it is not valid for the host name '{host}'");
                return false;
            }

            return true;
        }

        /// <summary>Why the certificate may not identify a TLS server: a CA (basicConstraints CA:TRUE), or extended key usages without serverAuth.</summary>
        private static string? PurposeProblem(X509Certificate2 server)
        {
            foreach (X509Extension ext in server.Extensions)
            {
                if (ext is X509BasicConstraintsExtension { CertificateAuthority: true })
                {
                    return "it is a CA certificate (basic constraints CA:TRUE), not a server's";
                }

                if (ext is X509EnhancedKeyUsageExtension eku)
                {
                    var oids = eku.EnhancedKeyUsages.Cast<Oid>().ToList();
                    if (!oids.Any(o => o.Value is ServerAuthOid or AnyExtendedKeyUsageOid))
                    {
                        string listed = oids.Count == 0 ? "none" : string.Join(", ", oids.Select(o => string.IsNullOrEmpty(o.FriendlyName) ? o.Value : $"{o.FriendlyName} ({o.Value})"));
                        return $"its extended key usage does not allow TLS server authentication (it lists {listed})";
                    }
                }
            }

            return null;
        }

        private LibvirtException Untrusted(X509Certificate2? server, string why)
            => new(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Rpc,
                server is null
                    ? $"The TLS server {host}:{port} is not trusted: {why}."
                    : $"The TLS server certificate of {host}:{port} is not trusted: {why}. {Describe(server)}.")
            {
                ErrorId = "TlsCertificateUntrusted",
                Hint = $"Install the CA that issued the daemon's certificate as {files.Ca} (or name a folder with ?pkipath=DIR), connect with the name the certificate is issued for, or add ?no_verify=1 to skip the check.",
            };

        private LibvirtException Refused(X509Certificate2 server, string errorId, string why, string hint)
            => new(LibvirtErrorCode.AuthFailed, LibvirtErrorDomain.Rpc,
                $"The TLS server certificate of {host}:{port} is refused: {why}. {Describe(server)}.")
            {
                ErrorId = errorId,
                Hint = hint,
            };

        private static string Describe(X509Certificate2 server)
            => $"Subject '{server.Subject}', issuer '{server.Issuer}', SHA-256 thumbprint {server.GetCertHashString(HashAlgorithmName.SHA256)}";
    }

    /// <summary>Where the client's x509 files are.</summary>
    private readonly record struct PkiFiles(string Ca, string Crl, string Cert, string Key)
    {
        public static PkiFiles Locate(string? pkiPath)
        {
            if (!string.IsNullOrEmpty(pkiPath))
            {
                return new(Path.Combine(pkiPath, CaFile), Path.Combine(pkiPath, CrlFile), Path.Combine(pkiPath, CertFile), Path.Combine(pkiPath, KeyFile));
            }

            if (OperatingSystem.IsWindows())
            {
                string dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData), "libvirt", "pki");
                return new(Path.Combine(dir, CaFile), Path.Combine(dir, CrlFile), Path.Combine(dir, CertFile), Path.Combine(dir, KeyFile));
            }

            var global = new PkiFiles("/etc/pki/CA/cacert.pem", "/etc/pki/CA/cacrl.pem", "/etc/pki/libvirt/clientcert.pem", "/etc/pki/libvirt/private/clientkey.pem");
            if (Environment.IsPrivilegedProcess)
            {
                return global;
            }

            // Other users: each file from ~/.pki/libvirt when it is there, else the global one (as libvirt does).
            string user = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".pki", "libvirt");
            string ca = Path.Combine(user, CaFile), crl = Path.Combine(user, CrlFile), cert = Path.Combine(user, CertFile), key = Path.Combine(user, KeyFile);
            bool userPair = File.Exists(cert) && File.Exists(key);   // certificate and key come as a pair
            return new(File.Exists(ca) ? ca : global.Ca, File.Exists(crl) ? crl : global.Crl, userPair ? cert : global.Cert, userPair ? key : global.Key);
        }
    }
}

/// <summary>Registers the transports that live in KvmPS.Core beside unix and tcp.</summary>
public sealed partial class ManagedBackend
{
    static partial void RegisterBuiltInTransports() => RegisterTransport("tls", () => new TlsTransport());
}
