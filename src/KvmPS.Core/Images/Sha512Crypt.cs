using System.Security.Cryptography;
using System.Text;

namespace KvmPS.Core.Images;

/// <summary>
/// SHA-512 crypt ("$6$salt$hash"), the password hash glibc's crypt(3), /etc/shadow and cloud-init's hashed_passwd use.
/// Written from Ulrich Drepper's published specification ("Unix crypt using SHA-256 and SHA-512").
/// </summary>
public static class Sha512Crypt
{
    public const int DefaultRounds = 5000;
    private const int MinRounds = 1000;
    private const int MaxRounds = 999_999_999;
    private const string Alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    // The order in which the 64 digest bytes are emitted, three at a time (the last one alone).
    private static readonly int[] s_order =
    [
        0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4, 47, 5, 26, 6, 27, 48, 28, 49, 7, 50, 8, 29, 9, 30, 51, 31, 52, 10,
        53, 11, 32, 12, 33, 54, 34, 55, 13, 56, 14, 35, 15, 36, 57, 37, 58, 16, 59, 17, 38, 18, 39, 60, 40, 61, 19, 62, 20, 41, 63,
    ];

    /// <summary>A random 16-character salt from the crypt alphabet.</summary>
    public static string NewSalt()
    {
        Span<char> salt = stackalloc char[16];
        for (int i = 0; i < salt.Length; i++)
        {
            salt[i] = Alphabet[RandomNumberGenerator.GetInt32(Alphabet.Length)];
        }

        return new string(salt);
    }

    /// <summary>Hashes <paramref name="password"/> with a new random salt.</summary>
    public static string Hash(string password) => Hash(password, NewSalt());

    /// <summary>
    /// Hashes <paramref name="password"/> with <paramref name="salt"/> (at most 16 characters are used, as the specification says);
    /// <paramref name="rounds"/> other than 5000 is written as "rounds=N$" into the result.
    /// </summary>
    public static string Hash(string password, string salt, int? rounds = null)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(salt);
        int r = Math.Clamp(rounds ?? DefaultRounds, MinRounds, MaxRounds);
        byte[] key = Encoding.UTF8.GetBytes(password);
        string saltText = salt.Length > 16 ? salt[..16] : salt;
        byte[] s = Encoding.UTF8.GetBytes(saltText);
        try
        {
            // Digest B: key, salt, key
            byte[] b = SHA512.HashData([.. key, .. s, .. key]);

            // Digest A: key, salt, then B for the key's length, then key or B per bit of the key length
            using var a = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
            a.AppendData(key);
            a.AppendData(s);
            AppendRepeated(a, b, key.Length);
            for (int n = key.Length; n > 0; n >>= 1)
            {
                a.AppendData((n & 1) != 0 ? b : key);
            }

            byte[] digestA = a.GetHashAndReset();

            // P: the key hashed key-length times, stretched to the key's length
            using var dp = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
            for (int i = 0; i < key.Length; i++)
            {
                dp.AppendData(key);
            }

            byte[] p = Stretch(dp.GetHashAndReset(), key.Length);

            // S: the salt hashed (16 + first byte of A) times, stretched to the salt's length
            using var ds = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
            for (int i = 0; i < 16 + digestA[0]; i++)
            {
                ds.AppendData(s);
            }

            byte[] sBytes = Stretch(ds.GetHashAndReset(), s.Length);

            byte[] c = digestA;
            using var dc = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
            for (int i = 0; i < r; i++)
            {
                dc.AppendData((i & 1) != 0 ? p : c);
                if (i % 3 != 0)
                {
                    dc.AppendData(sBytes);
                }

                if (i % 7 != 0)
                {
                    dc.AppendData(p);
                }

                dc.AppendData((i & 1) != 0 ? c : p);
                c = dc.GetHashAndReset();
            }

            var sb = new StringBuilder(123);
            sb.Append("$6$");
            if (rounds is not null && r != DefaultRounds)
            {
                sb.Append("rounds=").Append(r).Append('$');
            }

            sb.Append(saltText).Append('$');
            for (int i = 0; i + 2 < s_order.Length; i += 3)
            {
                Encode(sb, c[s_order[i]], c[s_order[i + 1]], c[s_order[i + 2]], 4);
            }

            Encode(sb, 0, 0, c[s_order[^1]], 2);
            CryptographicOperations.ZeroMemory(p);
            return sb.ToString();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private static void AppendRepeated(IncrementalHash h, byte[] block, int length)
    {
        for (int n = length; n > 0; n -= block.Length)
        {
            h.AppendData(block, 0, Math.Min(n, block.Length));
        }
    }

    private static byte[] Stretch(byte[] digest, int length)
    {
        byte[] result = new byte[length];
        for (int i = 0; i < length; i++)
        {
            result[i] = digest[i % digest.Length];
        }

        return result;
    }

    private static void Encode(StringBuilder sb, byte b2, byte b1, byte b0, int chars)
    {
        int w = (b2 << 16) | (b1 << 8) | b0;
        for (int i = 0; i < chars; i++)
        {
            sb.Append(Alphabet[w & 0x3f]);
            w >>= 6;
        }
    }
}
