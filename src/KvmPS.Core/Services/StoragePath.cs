using System.Buffers.Binary;
using System.Text;

namespace KvmPS.Core.Services;

/// <summary>
/// Host paths of disk images spelled one way: <c>//</c>, <c>/./</c> and <c>..</c> resolved as text (<see cref="Normalize"/>),
/// and, only where the files are this machine's (a proven-local connection), symbolic links followed (<see cref="ResolveLinks"/>).
/// </summary>
public static class StoragePath
{
    private const int MaxLinkHops = 40;   // as Linux's ELOOP limit

    /// <summary>
    /// The absolute path with repeated and trailing slashes, <c>.</c> and <c>..</c> removed (<c>..</c> at the root stays at the
    /// root); null for a path that is not absolute (only absolute host paths name a disk image).
    /// </summary>
    public static string? Normalize(string? path)
    {
        if (string.IsNullOrEmpty(path) || path[0] != '/')
        {
            return null;
        }

        var parts = new List<string>();
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }

                continue;
            }

            parts.Add(part);
        }

        return "/" + string.Join('/', parts);
    }

    /// <summary>
    /// The path with every symbolic link on it followed (like realpath, but a missing tail is kept as written). Reads THIS
    /// machine's file system: call it only for a connection that is proven local. <c>..</c> after a link applies to the
    /// link's target, as the kernel does.
    /// </summary>
    public static string ResolveLinks(string path)
    {
        var pending = new Stack<string>(Enumerable.Reverse(path.Split('/', StringSplitOptions.RemoveEmptyEntries)));
        var current = new List<string>();
        int hops = 0;
        bool missing = false;
        while (pending.Count > 0)
        {
            string part = pending.Pop();
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (current.Count > 0)
                {
                    current.RemoveAt(current.Count - 1);
                }

                continue;
            }

            string candidate = "/" + string.Join('/', current.Append(part));
            string? target = null;
            if (!missing)
            {
                try
                {
                    target = new FileInfo(candidate).LinkTarget;
                    missing = target is null && !File.Exists(candidate) && !Directory.Exists(candidate);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    missing = true;   // unreadable: keep the rest as written
                }
            }

            if (target is null || ++hops > MaxLinkHops)
            {
                current.Add(part);
                continue;
            }

            if (target.StartsWith('/'))
            {
                current.Clear();
            }

            foreach (string t in Enumerable.Reverse(target.Split('/', StringSplitOptions.RemoveEmptyEntries)))
            {
                pending.Push(t);
            }
        }

        return "/" + string.Join('/', current);
    }

    /// <summary>
    /// The backing file a local qcow2 image names in its header (resolved against the image's folder when relative), or
    /// null when the file is no qcow2 image or has no backing file. Reads THIS machine's file system (proven-local only).
    /// </summary>
    public static string? ReadQcow2Backing(string path)
    {
        try
        {
            using FileStream fs = File.OpenRead(path);
            Span<byte> header = stackalloc byte[20];
            if (fs.ReadAtLeast(header, 20, throwOnEndOfStream: false) < 20 || header[0] != 'Q' || header[1] != 'F' || header[2] != 'I' || header[3] != 0xFB)
            {
                return null;
            }

            ulong offset = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
            uint size = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
            if (offset == 0 || size == 0 || size > 4096 || offset > (ulong)fs.Length)
            {
                return null;
            }

            byte[] name = new byte[size];
            fs.Position = (long)offset;
            if (fs.ReadAtLeast(name, (int)size, throwOnEndOfStream: false) < size)
            {
                return null;
            }

            return BackingReference(path, Encoding.UTF8.GetString(name));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// A backing reference as qemu reads it: an absolute path as it is; a relative one against the folder of the image that
    /// names it; a protocol (<c>nbd:</c>, <c>json:</c>) is not a host file, so null.
    /// </summary>
    public static string? BackingReference(string imagePath, string reference)
    {
        if (string.IsNullOrEmpty(reference) || reference.StartsWith("json:", StringComparison.Ordinal)
            || (reference.IndexOf(':') is var colon and > 0 && reference.IndexOf('/') is var slash && (slash < 0 || colon < slash)))
        {
            return null;
        }

        return reference.StartsWith('/') ? Normalize(reference) : Normalize((Path.GetDirectoryName(imagePath) ?? "/") + "/" + reference);
    }
}
