using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KvmPS.Core.Managed;

/// <summary>
/// An X.509 CRL (RFC 5280 §5) read from DER: who issued it, its signature, and the serial numbers it revokes.
/// .NET can check revocation only through a CRL cache or downloads, so the TLS transport checks libvirt's
/// cacrl.pem itself. A CRL counts only when its signature verifies with the issuer's key; its dates are not
/// checked (a certificate it lists stays revoked after the CRL's nextUpdate).
/// </summary>
internal sealed class CertificateRevocationList
{
    private readonly byte[] _tbs;
    private readonly string _signatureOid;
    private readonly ReadOnlyMemory<byte>? _signatureParameters;
    private readonly byte[] _signature;
    private readonly Dictionary<BigInteger, DateTimeOffset> _revoked;

    private CertificateRevocationList(byte[] tbs, string signatureOid, ReadOnlyMemory<byte>? signatureParameters, byte[] signature, byte[] issuer,
        DateTimeOffset thisUpdate, Dictionary<BigInteger, DateTimeOffset> revoked)
    {
        _tbs = tbs;
        _signatureOid = signatureOid;
        _signatureParameters = signatureParameters;
        _signature = signature;
        Issuer = issuer;
        ThisUpdate = thisUpdate;
        _revoked = revoked;
    }

    /// <summary>The issuer's distinguished name, DER.</summary>
    public byte[] Issuer { get; }

    public DateTimeOffset ThisUpdate { get; }

    public int Count => _revoked.Count;

    /// <summary>Reads a DER CRL; throws <see cref="CryptographicException"/> when it is not one.</summary>
    public static CertificateRevocationList Parse(byte[] der)
    {
        try
        {
            var outer = new AsnReader(der, AsnEncodingRules.DER);
            AsnReader list = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            byte[] tbsBytes = list.ReadEncodedValue().ToArray();
            AsnReader algorithm = list.ReadSequence();
            string oid = algorithm.ReadObjectIdentifier();
            ReadOnlyMemory<byte>? parameters = algorithm.HasData ? algorithm.ReadEncodedValue() : null;
            byte[] signature = list.ReadBitString(out _);
            list.ThrowIfNotEmpty();

            AsnReader tbs = new AsnReader(tbsBytes, AsnEncodingRules.DER).ReadSequence();
            if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
            {
                _ = tbs.ReadInteger();   // version 2
            }

            _ = tbs.ReadSequence();   // the signature algorithm again
            byte[] issuer = tbs.ReadEncodedValue().ToArray();
            DateTimeOffset thisUpdate = ReadTime(tbs);
            if (tbs.HasData && IsTime(tbs.PeekTag()))
            {
                _ = ReadTime(tbs);   // nextUpdate
            }

            var revoked = new Dictionary<BigInteger, DateTimeOffset>();
            if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
            {
                AsnReader entries = tbs.ReadSequence();
                while (entries.HasData)
                {
                    AsnReader entry = entries.ReadSequence();
                    BigInteger serial = entry.ReadInteger();
                    revoked[serial] = ReadTime(entry);
                }
            }

            return new CertificateRevocationList(tbsBytes, oid, parameters, signature, issuer, thisUpdate, revoked);
        }
        catch (AsnContentException e)
        {
            throw new CryptographicException($"not a valid X.509 CRL: {e.Message}", e);
        }
    }

    /// <summary>When this CRL revoked the certificate (matched by serial number); null when it does not list it.</summary>
    public DateTimeOffset? Revokes(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var serial = new BigInteger(certificate.SerialNumberBytes.Span, isUnsigned: false, isBigEndian: true);
        return _revoked.TryGetValue(serial, out DateTimeOffset when) ? when : null;
    }

    /// <summary>The CRL names <paramref name="issuer"/> as its issuer and carries a valid signature by its key.</summary>
    public bool IsIssuedBy(X509Certificate2 issuer)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        if (!issuer.SubjectName.RawData.AsSpan().SequenceEqual(Issuer))
        {
            return false;
        }

        try
        {
            return VerifySignature(issuer);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private bool VerifySignature(X509Certificate2 issuer)
    {
        switch (_signatureOid)
        {
            case "1.2.840.113549.1.1.5":
            case "1.2.840.113549.1.1.11":
            case "1.2.840.113549.1.1.12":
            case "1.2.840.113549.1.1.13":
            {
                using RSA? rsa = issuer.GetRSAPublicKey();
                return rsa is not null && rsa.VerifyData(_tbs, _signature, RsaHash(_signatureOid), RSASignaturePadding.Pkcs1);
            }

            case "1.2.840.113549.1.1.10":
            {
                using RSA? rsa = issuer.GetRSAPublicKey();
                return rsa is not null && PssHash() is { } hash && rsa.VerifyData(_tbs, _signature, hash, RSASignaturePadding.Pss);
            }

            case "1.2.840.10045.4.1":
            case "1.2.840.10045.4.3.2":
            case "1.2.840.10045.4.3.3":
            case "1.2.840.10045.4.3.4":
            {
                using ECDsa? ec = issuer.GetECDsaPublicKey();
                HashAlgorithmName hash = _signatureOid switch
                {
                    "1.2.840.10045.4.1" => HashAlgorithmName.SHA1,
                    "1.2.840.10045.4.3.3" => HashAlgorithmName.SHA384,
                    "1.2.840.10045.4.3.4" => HashAlgorithmName.SHA512,
                    _ => HashAlgorithmName.SHA256,
                };
                return ec is not null && ec.VerifyData(_tbs, _signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }

            default:
                // Ed25519/Ed448 and others .NET cannot verify: the CRL cannot be trusted, so it is not used.
                return false;
        }
    }

    private static HashAlgorithmName RsaHash(string oid) => oid switch
    {
        "1.2.840.113549.1.1.5" => HashAlgorithmName.SHA1,
        "1.2.840.113549.1.1.12" => HashAlgorithmName.SHA384,
        "1.2.840.113549.1.1.13" => HashAlgorithmName.SHA512,
        _ => HashAlgorithmName.SHA256,
    };

    /// <summary>RSASSA-PSS parameters: the hash (SHA-1 when absent); .NET verifies PSS with a salt as long as the hash only.</summary>
    private HashAlgorithmName? PssHash()
    {
        if (_signatureParameters is not { } p)
        {
            return HashAlgorithmName.SHA1;
        }

        AsnReader seq = new AsnReader(p, AsnEncodingRules.DER).ReadSequence();
        HashAlgorithmName hash = HashAlgorithmName.SHA1;
        if (seq.HasData && seq.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
        {
            AsnReader hashAlg = seq.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0)).ReadSequence();
            string? h = hashAlg.ReadObjectIdentifier() switch
            {
                "1.3.14.3.2.26" => "SHA1",
                "2.16.840.1.101.3.4.2.1" => "SHA256",
                "2.16.840.1.101.3.4.2.2" => "SHA384",
                "2.16.840.1.101.3.4.2.3" => "SHA512",
                _ => null,
            };
            if (h is null)
            {
                return null;
            }

            hash = new HashAlgorithmName(h);
        }

        return hash;
    }

    private static bool IsTime(Asn1Tag tag) => tag.HasSameClassAndValue(Asn1Tag.UtcTime) || tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime);

    private static DateTimeOffset ReadTime(AsnReader r)
        => r.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) ? r.ReadUtcTime() : r.ReadGeneralizedTime();
}
