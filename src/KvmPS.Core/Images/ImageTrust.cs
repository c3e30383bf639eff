using System.Xml.Linq;
using KvmPS.Core.Backend;
using KvmPS.Core.Services;

namespace KvmPS.Core.Images;

/// <summary>
/// Rules for images KvmPS did not make. A guest owns every byte of its disks and a download can say anything, so an
/// image's format is never guessed from its first bytes: it is what the user says (-Format), what a VM definition or
/// KvmPS recorded, or raw. A qcow2 image may not pull in other host files: a backing file or an external data file that
/// KvmPS did not set up is refused (ImageBackingRefused), so qemu never reads a host file on the image's say-so.
/// </summary>
public static class ImageTrust
{
    public const string BackingRefusedId = "ImageBackingRefused";

    /// <summary>The formats an image given by the user may be declared as.</summary>
    public static readonly IReadOnlyList<string> Formats = ["qcow2", "raw"];

    /// <summary>
    /// Checks an existing image about to be used as <paramref name="format"/>. For qcow2 the header is read in-process when
    /// the file is on this machine, else libvirt's volume description is asked; a backing or data file is refused. For raw
    /// nothing is read from the image, except a warning when its bytes carry a qcow2 header (it is still used as raw).
    /// </summary>
    /// <remarks>
    /// allowPoolChain: the image was declared qcow2 by the user (or a VM definition), so a backing chain is accepted when
    /// every backing file is a storage volume libvirt manages and its format is written in the header (never probed).
    /// False: no backing file at all.
    /// </remarks>
    public static void CheckExisting(KvmConnection connection, string path, string format, StorageVolumeInfo? volume, string role, IKvmLog log,
        bool allowPoolChain = true)
    {
        bool local = connection.IsProvenLocal && path.StartsWith('/') && File.Exists(path) && !path.StartsWith("/dev/", StringComparison.Ordinal);
        Qcow2Header? header = null;
        bool read = false;
        if (local)
        {
            try
            {
                header = Qcow2Header.Read(path);
                read = true;
            }
            catch (InvalidDataException e)
            {
                if (format == "qcow2")
                {
                    throw new KvmOperationException("ImageFormatMismatch", $"The {role} '{path}' has a qcow2 header that cannot be read safely: {e.Message}", path, e)
                    {
                        Kind = KvmErrorKind.InvalidData,
                    };
                }

                read = true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.Verbose($"Cannot read the header of '{path}' ({e.Message}); asking libvirt about it instead");
            }
        }

        if (format != "qcow2")
        {
            if (header is not null)
            {
                log.Warning($"The {role} '{path}' starts with a qcow2 header{(header.BackingFile is null ? string.Empty : $" naming the backing file '{header.BackingFile}'")}, but it is used as raw: KvmPS never takes the format from an image's own bytes. Add -Format qcow2 only if you made it as a qcow2 image.");
            }

            return;
        }

        if (read)
        {
            if (header is null)
            {
                throw new KvmOperationException("ImageFormatMismatch", $"The {role} '{path}' is not a qcow2 image (it has no qcow2 header).", path)
                {
                    Kind = KvmErrorKind.InvalidData,
                    Hint = "Leave -Format out (or say -Format raw) to use it as a raw image.",
                };
            }

            CheckChain(connection, path, role, header, allowPoolChain);
            return;
        }

        // Remote (or unreadable) image: libvirt reads the header for its volume description.
        if (volume is not null)
        {
            XElement vol = XElement.Parse(connection.Invoke(c => c.GetStorageVolumeXml(volume)));
            string? backing = (string?)vol.Element("backingStore")?.Element("path");
            if (!string.IsNullOrEmpty(backing) && (!allowPoolChain || connection.Invoke(c => c.LookupStorageVolumeByPath(backing)) is null))
            {
                throw Refused(path, role, $"the backing file '{backing}'");
            }

            string? actual = (string?)vol.Element("target")?.Element("format")?.Attribute("type");
            if (actual is not null && actual != "qcow2")
            {
                throw new KvmOperationException("ImageFormatMismatch", $"The {role} '{path}' is not a qcow2 image (libvirt reads it as {actual}).", path)
                {
                    Kind = KvmErrorKind.InvalidData,
                    Hint = "Leave -Format out (or say -Format raw) to use it as a raw image.",
                };
            }
        }
    }

    /// <summary>Follows a local qcow2 image's backing chain: each link a pool volume with a declared format, no data files.</summary>
    private static void CheckChain(KvmConnection connection, string path, string role, Qcow2Header header, bool allowPoolChain)
    {
        if (!allowPoolChain)
        {
            RefuseReferences(path, role, header);
            return;
        }

        string current = path;
        Qcow2Header? h = header;
        for (int depth = 0; h is not null; depth++)
        {
            if (h.HasExternalDataFile)
            {
                throw Refused(path, role, h.DataFile is null ? "an external data file" : $"the external data file '{h.DataFile}'");
            }

            if (h.BackingFile is null)
            {
                return;
            }

            string backing = h.BackingFile.StartsWith('/') ? h.BackingFile : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(current) ?? "/", h.BackingFile));
            if (depth >= 16 || h.BackingFormat is not ("qcow2" or "raw") || connection.Invoke(c => c.LookupStorageVolumeByPath(backing)) is null)
            {
                string why = depth >= 16 ? "a backing chain deeper than 16 images"
                    : h.BackingFormat is null ? $"the backing file '{h.BackingFile}' without its format"
                    : h.BackingFormat is not ("qcow2" or "raw") ? $"the backing file '{h.BackingFile}' as {h.BackingFormat}"
                    : $"the backing file '{h.BackingFile}', which is no storage volume";
                throw Refused(path, role, why);
            }

            current = backing;
            if (h.BackingFormat == "raw" || !File.Exists(backing))
            {
                return;
            }

            h = Qcow2Header.Read(backing) ?? throw Refused(path, role, $"the backing file '{backing}' as qcow2, which is not a qcow2 image");
        }
    }

    /// <summary>Refuses a qcow2 header that names a backing file or an external data file.</summary>
    public static void RefuseReferences(string path, string role, Qcow2Header header)
    {
        if (header.BackingFile is not null)
        {
            throw Refused(path, role, $"the backing file '{header.BackingFile}'");
        }

        if (header.HasExternalDataFile)
        {
            throw Refused(path, role, header.DataFile is null ? "an external data file" : $"the external data file '{header.DataFile}'");
        }
    }

    public static KvmOperationException Refused(string path, string role, string what)
        => new(BackingRefusedId, $"The {role} '{path}' declares {what}; KvmPS does not use an image that pulls in another file it did not set up itself, so it was not used.", path)
        {
            Kind = KvmErrorKind.InvalidData,
            Hint = "If it came from a guest or a download, use it as raw (-Format raw, the default for existing images). If you made it, flatten it first (qemu-img convert -f qcow2 -O qcow2 <image> <new image>) or let KvmPS make the overlay (New-KvmVm -BaseImage).",
        };

    /// <summary>The virtual size of a local image read as <paramref name="format"/>: the qcow2 header's size, else the file length.</summary>
    public static ulong LocalVirtualSize(string path, string? format)
    {
        if (format == "qcow2" && Qcow2Header.Read(path) is { } h)
        {
            return h.VirtualSize;
        }

        return (ulong)new FileInfo(path).Length;
    }

    /// <summary>Makes a file readable and writable by its owner only (0600); no-op on Windows.</summary>
    public static void OwnerOnly(string path, bool directory = false)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        File.SetUnixFileMode(path, directory
            ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            : UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}
