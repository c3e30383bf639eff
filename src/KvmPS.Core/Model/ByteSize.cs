using System.Globalization;
using System.Text.RegularExpressions;

namespace KvmPS.Core;

/// <summary>Sizes in bytes: parsing "2GiB", "512MiB", "10GB", "4096" and friendly formatting.</summary>
public static partial class ByteSize
{
    /// <summary>Parses a size; binary units (KiB, MiB, GiB, TiB, and PowerShell's KB/MB/GB/TB) are powers of 1024.</summary>
    public static bool TryParse(string? text, out ulong bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        Match m = SizePattern().Match(text.Trim());
        if (!m.Success || !decimal.TryParse(m.Groups["n"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal n))
        {
            return false;
        }

        decimal factor = m.Groups["u"].Value.ToUpperInvariant() switch
        {
            "" or "B" => 1m,
            "K" or "KB" or "KIB" => 1024m,
            "M" or "MB" or "MIB" => 1024m * 1024m,
            "G" or "GB" or "GIB" => 1024m * 1024m * 1024m,
            "T" or "TB" or "TIB" => 1024m * 1024m * 1024m * 1024m,
            "P" or "PB" or "PIB" => 1024m * 1024m * 1024m * 1024m * 1024m,
            _ => 0m,
        };
        if (factor == 0m)
        {
            return false;
        }

        decimal value = n * factor;
        if (value > ulong.MaxValue || value != decimal.Truncate(value))
        {
            return false;
        }

        bytes = (ulong)value;
        return true;
    }

    /// <summary>"2 GiB", "512 MiB", "1.5 GiB", "0 B".</summary>
    public static string Format(ulong bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        decimal v = bytes;
        int i = 0;
        while (v >= 1024 && i < units.Length - 1)
        {
            v /= 1024;
            i++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{Math.Round(v, 2):0.##} {units[i]}");
    }

    [GeneratedRegex(@"^(?<n>\d+(\.\d+)?)\s*(?<u>[A-Za-z]*)$")]
    private static partial Regex SizePattern();
}
