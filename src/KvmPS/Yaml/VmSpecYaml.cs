using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Text.RegularExpressions;
using KvmPS.Core;
using KvmPS.Core.Xml;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace KvmPS.Yaml;

/// <summary>
/// Reads and writes <see cref="VmSpec"/> as YAML (New-KvmVm -Spec, Export-KvmVm, Import-KvmVm) and reads it from a
/// PowerShell hashtable (New-KvmVm -Spec @{...}).
/// </summary>
/// <remarks>
/// YAML is read from YamlDotNet's parser events into a small node tree of our own (never deserialized into a
/// POCO), so every error names the key path (disks[1].size) and the 1-based line and column it is at.
/// YAML keys are camelCase and case-sensitive; hashtable keys are case-insensitive, as PowerShell users expect.
/// A null value (<c>title:</c>, <c>title: ~</c>, <c>$null</c>) means the key is not given.
/// </remarks>
internal static partial class VmSpecYaml
{
    private static readonly string[] s_topKeys =
    [
        "name", "cpu", "maxCpu", "memory", "maxMemory", "disks", "networks", "noNetwork", "firmware", "accelerator",
        "machine", "cpuMode", "kernel", "initrd", "kernelArgs", "title", "description", "storagePool", "start", "cloudInit",
    ];

    private static readonly string[] s_cloudInitKeys = ["userData", "sshPublicKeys", "hostName", "user", "networkConfig"];

    private static readonly string[] s_diskKeys = ["size", "path", "baseImage", "baseImageFormat", "pool", "format", "bus", "device", "readOnly"];

    /// <summary>Parses a YAML VM spec and (unless told not to) validates it. Throws <see cref="VmSpecException"/> naming the key, line and column.</summary>
    public static VmSpec FromYaml(string text, bool validate = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        Node root = ParseDocument(text);
        if (root is not MappingNode)
        {
            throw root.Error("yaml", $"the top level must be a mapping of keys ({string.Join(", ", s_topKeys)}), found {root.Describe()}.");
        }

        return ReadSpec(root, validate);
    }

    /// <summary>Reads a VM spec from a hashtable (keys case-insensitive) and (unless told not to) validates it.</summary>
    public static VmSpec FromDictionary(IDictionary table, bool validate = true)
    {
        ArgumentNullException.ThrowIfNull(table);
        InputLimits.CheckObject(table, string.Empty);
        return ReadSpec(new ObjectValue(table), validate);
    }

    /// <summary>Writes the keys of <paramref name="spec"/> that are set (not default) as a YAML document.</summary>
    public static string ToYaml(VmSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var writer = new StringWriter(CultureInfo.InvariantCulture);
        var emitter = new Emitter(writer, EmitterSettings.Default.WithBestWidth(int.MaxValue).WithIndentedSequences().WithNewLine("\n"));
        emitter.Emit(new StreamStart());
        emitter.Emit(new DocumentStart(null, null, true));
        emitter.Emit(new MappingStart(AnchorName.Empty, TagName.Empty, true, MappingStyle.Block));

        if (!string.IsNullOrEmpty(spec.Name))
        {
            EmitText(emitter, "name", spec.Name);
        }

        EmitNumber(emitter, "cpu", spec.CpuCount);
        EmitNumber(emitter, "maxCpu", spec.MaxCpuCount);
        EmitSize(emitter, "memory", spec.MemoryBytes);
        EmitSize(emitter, "maxMemory", spec.MaxMemoryBytes);
        if (spec.Firmware != KvmFirmware.Bios)
        {
            EmitPlain(emitter, "firmware", spec.Firmware.ToString().ToLowerInvariant());
        }

        if (spec.Accelerator != KvmAcceleratorChoice.Auto)
        {
            EmitPlain(emitter, "accelerator", spec.Accelerator.ToString().ToLowerInvariant());
        }

        EmitText(emitter, "machine", spec.MachineType);
        EmitText(emitter, "cpuMode", spec.CpuMode);
        EmitText(emitter, "kernel", spec.Kernel);
        EmitText(emitter, "initrd", spec.Initrd);
        EmitText(emitter, "kernelArgs", spec.KernelArguments);
        EmitText(emitter, "title", spec.Title);
        EmitText(emitter, "description", spec.Description);
        EmitText(emitter, "storagePool", spec.StoragePool);

        if (spec.Disks.Count > 0)
        {
            emitter.Emit(new Scalar("disks"));
            emitter.Emit(new SequenceStart(AnchorName.Empty, TagName.Empty, true, SequenceStyle.Block));
            foreach (VmDiskSpec d in spec.Disks)
            {
                emitter.Emit(new MappingStart(AnchorName.Empty, TagName.Empty, true, MappingStyle.Block));
                EmitSize(emitter, "size", d.SizeBytes);
                EmitText(emitter, "path", d.Path);
                EmitText(emitter, "baseImage", d.BaseImage);
                EmitText(emitter, "baseImageFormat", d.BaseImageFormat);
                EmitText(emitter, "pool", d.Pool);
                EmitText(emitter, "format", d.Format);
                EmitText(emitter, "bus", d.Bus);
                if (d.Device != "disk")
                {
                    EmitText(emitter, "device", d.Device);
                }

                if (d.ReadOnly)
                {
                    EmitPlain(emitter, "readOnly", "true");
                }

                emitter.Emit(new MappingEnd());
            }

            emitter.Emit(new SequenceEnd());
        }

        if (spec.Networks.Count > 0)
        {
            emitter.Emit(new Scalar("networks"));
            emitter.Emit(new SequenceStart(AnchorName.Empty, TagName.Empty, true, SequenceStyle.Block));
            foreach (string n in spec.Networks)
            {
                emitter.Emit(TextScalar(n));
            }

            emitter.Emit(new SequenceEnd());
        }

        if (spec.NoNetwork)
        {
            EmitPlain(emitter, "noNetwork", "true");
        }

        if (spec.Start)
        {
            EmitPlain(emitter, "start", "true");
        }

        emitter.Emit(new MappingEnd());
        emitter.Emit(new DocumentEnd(true));
        emitter.Emit(new StreamEnd());
        return writer.ToString();
    }

    /// <summary>
    /// A spec describing an existing VM, for export: its existing disks are attached as they are (path, no size);
    /// adapters on libvirt networks become networks (bridge/direct adapters have no spec form); no adapter at all: noNetwork.
    /// </summary>
    public static VmSpec FromDomainConfig(DomainConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var spec = new VmSpec
        {
            Name = c.Name,
            CpuCount = c.CpuCount,
            MaxCpuCount = c.MaxCpuCount > c.CpuCount ? c.MaxCpuCount : null,
            MemoryBytes = c.MemoryKiB * 1024,
            MaxMemoryBytes = c.MaxMemoryKiB != c.MemoryKiB && c.MaxMemoryKiB != 0 ? c.MaxMemoryKiB * 1024 : null,
            Firmware = c.Firmware,
            Accelerator = c.Accelerator switch
            {
                KvmAccelerator.Kvm => KvmAcceleratorChoice.Kvm,
                KvmAccelerator.Qemu => KvmAcceleratorChoice.Qemu,
                _ => KvmAcceleratorChoice.Auto,
            },
            MachineType = NullIfEmpty(c.MachineType),
            CpuMode = NullIfEmpty(c.CpuMode),
            Kernel = NullIfEmpty(c.Kernel),
            Initrd = NullIfEmpty(c.Initrd),
            KernelArguments = NullIfEmpty(c.KernelArguments),
            Title = NullIfEmpty(c.Title),
            Description = NullIfEmpty(c.Description),
        };

        foreach (KvmVmDisk d in c.Disks)
        {
            if (d.Device is not ("disk" or "cdrom"))
            {
                continue;
            }

            // A pool volume is exported as its volume name with the pool.
            bool isVolume = d.Path is null && d.Volume is not null;
            spec.Disks.Add(new VmDiskSpec
            {
                Path = isVolume ? d.Volume : NullIfEmpty(d.Path),
                Pool = isVolume ? d.Pool : null,
                Format = NullIfEmpty(d.Format),
                Bus = NullIfEmpty(d.Bus),
                Device = d.Device,
                ReadOnly = d.ReadOnly,
            });
        }

        foreach (KvmVmNetworkAdapter n in c.NetworkAdapters)
        {
            if (n.Type == "network" && !string.IsNullOrEmpty(n.Source))
            {
                spec.Networks.Add(n.Source);
            }
        }

        spec.NoNetwork = c.NetworkAdapters.Count == 0;
        return spec;
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    // ---------------------------------------------------------------- reading (shared by YAML and hashtables)

    private static VmSpec ReadSpec(SpecValue root, bool validate)
    {
        var spec = new VmSpec();
        SpecValue? cloudInit = null;
        foreach ((string key, SpecValue value) in ReadMapping(root, string.Empty, s_topKeys))
        {
            if (value.IsNull)
            {
                continue;
            }

            switch (key)
            {
                case "name":
                    spec.Name = Text(value, key);
                    break;
                case "cpu":
                    spec.CpuCount = Int(value, key);
                    break;
                case "maxCpu":
                    spec.MaxCpuCount = Int(value, key);
                    break;
                case "memory":
                    spec.MemoryBytes = Size(value, key);
                    break;
                case "maxMemory":
                    spec.MaxMemoryBytes = Size(value, key);
                    break;
                case "disks":
                    ReadDisks(spec, value);
                    break;
                case "networks":
                    ReadNetworks(spec, value);
                    break;
                case "noNetwork":
                    spec.NoNetwork = Bool(value, key);
                    break;
                case "firmware":
                    spec.Firmware = Text(value, key).ToLowerInvariant() switch
                    {
                        "bios" => KvmFirmware.Bios,
                        "uefi" => KvmFirmware.Uefi,
                        _ => throw value.Error(key, $"'{Text(value, key)}' is not bios or uefi."),
                    };
                    break;
                case "accelerator":
                    spec.Accelerator = Text(value, key).ToLowerInvariant() switch
                    {
                        "auto" => KvmAcceleratorChoice.Auto,
                        "kvm" => KvmAcceleratorChoice.Kvm,
                        "qemu" => KvmAcceleratorChoice.Qemu,
                        _ => throw value.Error(key, $"'{Text(value, key)}' is not auto, kvm or qemu."),
                    };
                    break;
                case "machine":
                    spec.MachineType = Text(value, key);
                    break;
                case "cpuMode":
                    spec.CpuMode = Text(value, key);
                    break;
                case "kernel":
                    spec.Kernel = Text(value, key);
                    break;
                case "initrd":
                    spec.Initrd = Text(value, key);
                    break;
                case "kernelArgs":
                    spec.KernelArguments = Text(value, key);
                    break;
                case "title":
                    spec.Title = Text(value, key);
                    break;
                case "description":
                    spec.Description = Text(value, key);
                    break;
                case "storagePool":
                    spec.StoragePool = Text(value, key);
                    break;
                case "start":
                    spec.Start = Bool(value, key);
                    break;
                case "cloudInit":
                    cloudInit = value;
                    break;
            }
        }

        if (cloudInit is not null)
        {
            spec.CloudInit = ReadCloudInit(cloudInit, spec.Name);
        }

        if (validate)
        {
            VmSpecValidator.Validate(spec);
        }

        return spec;
    }

    /// <summary>cloudInit: { userData: text or mapping, sshPublicKeys: [..], hostName, user, networkConfig: text or mapping } (no passwords in files).</summary>
    private static CloudInitSeed ReadCloudInit(SpecValue value, string vmName)
    {
        object? userData = null, networkConfig = null;
        string[]? keys = null;
        string? hostName = null, user = null;
        foreach ((string key, SpecValue v) in ReadMapping(value, "cloudInit", s_cloudInitKeys))
        {
            if (v.IsNull)
            {
                continue;
            }

            switch (key)
            {
                case "userData":
                    userData = v.IsMapping ? Plain(v) : Text(v, "cloudInit.userData");
                    break;
                case "networkConfig":
                    networkConfig = v.IsMapping ? Plain(v) : Text(v, "cloudInit.networkConfig");
                    break;
                case "sshPublicKeys":
                    keys = v.Items is { } items ? items.Select((x, i) => Text(x, $"cloudInit.sshPublicKeys[{i}]")).ToArray() : [Text(v, "cloudInit.sshPublicKeys")];
                    break;
                case "hostName":
                    hostName = Text(v, "cloudInit.hostName");
                    break;
                case "user":
                    user = Text(v, "cloudInit.user");
                    break;
            }
        }

        return CloudInitYaml.Compose(vmName, new CloudInitYaml.Options
        {
            UserData = userData,
            NetworkConfig = networkConfig,
            SshPublicKey = keys,
            HostName = hostName,
            User = user,
        }, p => p);
    }

    /// <summary>A spec value as plain data (ordered dictionary, list, bool, long or string) for re-emitting as YAML.</summary>
    private static object? Plain(SpecValue v)
    {
        if (v.IsNull)
        {
            return null;
        }

        if (v.IsMapping)
        {
            var d = new System.Collections.Specialized.OrderedDictionary();
            foreach ((SpecValue _, string key, SpecValue value) in v.Entries!)
            {
                d[key] = Plain(value);
            }

            return d;
        }

        if (v.Items is { } items)
        {
            return items.Select(Plain).ToList();
        }

        return v.AsBool() is { } b && v.AsText() is "true" or "false" ? b : v.AsInt() is { } i && v.AsText() == i.ToString(CultureInfo.InvariantCulture) ? (object)(long)i : v.AsText();
    }

    private static void ReadDisks(VmSpec spec, SpecValue value)
    {
        // A hashtable may give one disk without an array around it (Disks = @{ Size = 20GB }).
        IReadOnlyList<SpecValue> items = value.Items
            ?? (value.IsMapping && value is ObjectValue ? new[] { value } : null)
            ?? throw value.Error("disks", $"expected a list of disks (each a mapping like 'size: 20GiB'), found {value.Describe()}.");
        for (int i = 0; i < items.Count; i++)
        {
            string path = $"disks[{i}]";
            SpecValue item = items[i];
            if (!item.IsMapping)
            {
                throw item.Error(path, $"expected a disk (a mapping of {string.Join(", ", s_diskKeys)}), found {item.Describe()}.");
            }

            var disk = new VmDiskSpec();
            foreach ((string key, SpecValue v) in ReadMapping(item, path, s_diskKeys))
            {
                if (v.IsNull)
                {
                    continue;
                }

                string keyPath = $"{path}.{key}";
                switch (key)
                {
                    case "size":
                        disk.SizeBytes = Size(v, keyPath);
                        break;
                    case "path":
                        disk.Path = Text(v, keyPath);
                        break;
                    case "baseImage":
                        disk.BaseImage = Text(v, keyPath);
                        break;
                    case "baseImageFormat":
                        disk.BaseImageFormat = Text(v, keyPath);
                        break;
                    case "pool":
                        disk.Pool = Text(v, keyPath);
                        break;
                    case "format":
                        disk.Format = Text(v, keyPath);
                        break;
                    case "bus":
                        disk.Bus = Text(v, keyPath);
                        break;
                    case "device":
                        disk.Device = Text(v, keyPath);
                        break;
                    case "readOnly":
                        disk.ReadOnly = Bool(v, keyPath);
                        break;
                }
            }

            spec.Disks.Add(disk);
        }
    }

    private static void ReadNetworks(VmSpec spec, SpecValue value)
    {
        if (value.IsScalar)
        {
            spec.Networks.Add(Text(value, "networks"));
            return;
        }

        IReadOnlyList<SpecValue> items = value.Items
            ?? throw value.Error("networks", $"expected a network name or a list of them, found {value.Describe()}.");
        for (int i = 0; i < items.Count; i++)
        {
            spec.Networks.Add(Text(items[i], $"networks[{i}]"));
        }
    }

    /// <summary>The entries of a mapping with their canonical (camelCase) key; unknown and repeated keys are errors.</summary>
    private static IEnumerable<(string Key, SpecValue Value)> ReadMapping(SpecValue map, string path, string[] known)
    {
        var seen = new Dictionary<string, SpecValue>(StringComparer.Ordinal);
        foreach ((SpecValue keyNode, string rawKey, SpecValue value) in map.Entries!)
        {
            string keyPath = path.Length == 0 ? rawKey : $"{path}.{rawKey}";
            string? key = known.FirstOrDefault(k => string.Equals(k, rawKey, map.KeyComparison));
            if (key is null)
            {
                string? hint = map.KeyComparison == StringComparison.Ordinal
                    ? known.FirstOrDefault(k => string.Equals(k, rawKey, StringComparison.OrdinalIgnoreCase))
                    : null;
                string rule = map.KeyComparison == StringComparison.Ordinal ? " (camelCase; keys are case-sensitive)" : string.Empty;
                throw keyNode.Error(keyPath, (hint is null ? "unknown key; " : $"unknown key (did you mean '{hint}'?); ")
                    + $"known keys are {string.Join(", ", known)}{rule}.");
            }

            if (seen.TryGetValue(key, out SpecValue? first))
            {
                throw keyNode.Error(keyPath, first.Line is { } line ? $"the key is given twice (first on line {line})." : "the key is given twice.");
            }

            seen.Add(key, keyNode);
            yield return (key, value);
        }
    }

    private static string Text(SpecValue v, string key)
        => v.AsText() ?? throw v.Error(key, $"expected text, found {v.Describe()}.");

    private static int Int(SpecValue v, string key)
        => v.AsInt() ?? throw v.Error(key, $"expected a whole number, found {v.Describe()}.");

    private static ulong Size(SpecValue v, string key)
        => v.AsSize() ?? throw v.Error(key, $"expected a size: a number of bytes or a number with a unit (512MiB, 2GiB, 20GB), found {v.Describe()}.");

    private static bool Bool(SpecValue v, string key)
        => v.AsBool() ?? throw v.Error(key, $"expected true or false, found {v.Describe()}.");

    /// <summary>A value read from YAML or from a hashtable.</summary>
    private abstract class SpecValue
    {
        public abstract bool IsNull { get; }

        public abstract bool IsScalar { get; }

        public abstract bool IsMapping { get; }

        /// <summary>1-based line, for YAML.</summary>
        public abstract int? Line { get; }

        /// <summary>The items of a list; null when this is not one.</summary>
        public abstract IReadOnlyList<SpecValue>? Items { get; }

        /// <summary>The entries of a mapping (key value, key as text, value); null when this is not one.</summary>
        public abstract IEnumerable<(SpecValue KeyNode, string Key, SpecValue Value)>? Entries { get; }

        public abstract StringComparison KeyComparison { get; }

        public abstract string Describe();

        public abstract string? AsText();

        public abstract int? AsInt();

        public abstract ulong? AsSize();

        public abstract bool? AsBool();

        public abstract VmSpecException Error(string key, string message);
    }

    // ---------------------------------------------------------------- YAML

    private static Node ParseDocument(string text)
    {
        try
        {
            InputLimits.CheckYaml(text, "yaml");
            var parser = new Parser(new StringReader(text));
            parser.Consume<StreamStart>();
            if (!parser.TryConsume<DocumentStart>(out var start))
            {
                throw new VmSpecException("yaml", "the document is empty: a VM spec needs at least a name.");
            }

            Node root = ReadNode(parser, new Dictionary<string, Node>(StringComparer.Ordinal));
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                throw new VmSpecException("yaml", "there is more than one YAML document (---); a VM spec is one document.",
                    (int)second.Start.Line, (int)second.Start.Column);
            }

            parser.Consume<StreamEnd>();
            if (root.IsNull)
            {
                throw new VmSpecException("yaml", "the document is empty: a VM spec needs at least a name.", (int)start.Start.Line, (int)start.Start.Column);
            }

            return root;
        }
        catch (YamlException e)
        {
            throw new VmSpecException("yaml", e.Message, (int)e.Start.Line, (int)e.Start.Column, e);
        }
    }

    private static Node ReadNode(IParser parser, Dictionary<string, Node> anchors)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            return anchors.TryGetValue(alias.Value.Value, out Node? target)
                ? target
                : throw new VmSpecException("yaml", $"the alias *{alias.Value.Value} names no anchor defined before it.", (int)alias.Start.Line, (int)alias.Start.Column);
        }

        Node node;
        AnchorName anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            node = new ScalarNode(scalar.Start, scalar.Value, scalar.Style);
            anchor = scalar.Anchor;
        }
        else if (parser.TryConsume<SequenceStart>(out var seqStart))
        {
            var items = new List<SpecValue>();
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                items.Add(ReadNode(parser, anchors));
            }

            node = new SequenceNode(seqStart.Start, items);
            anchor = seqStart.Anchor;
        }
        else if (parser.TryConsume<MappingStart>(out var mapStart))
        {
            var entries = new List<(SpecValue, string, SpecValue)>();
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                Node key = ReadNode(parser, anchors);
                Node value = ReadNode(parser, anchors);
                if (key is not ScalarNode { IsNull: false } k)
                {
                    throw key.Error("yaml", $"a key must be a plain name, found {key.Describe()}.");
                }

                entries.Add((key, k.Value, value));
            }

            node = new MappingNode(mapStart.Start, entries);
            anchor = mapStart.Anchor;
        }
        else
        {
            ParsingEvent? e = parser.Current;
            throw new VmSpecException("yaml", $"unexpected {e}.", (int?)e?.Start.Line, (int?)e?.Start.Column);
        }

        if (!anchor.IsEmpty)
        {
            anchors[anchor.Value] = node;
        }

        return node;
    }

    private abstract class Node(Mark start) : SpecValue
    {
        public override int? Line => (int)start.Line;

        public override bool IsNull => false;

        public override bool IsScalar => false;

        public override bool IsMapping => false;

        public override IReadOnlyList<SpecValue>? Items => null;

        public override IEnumerable<(SpecValue KeyNode, string Key, SpecValue Value)>? Entries => null;

        public override StringComparison KeyComparison => StringComparison.Ordinal;

        public override string? AsText() => null;

        public override int? AsInt() => null;

        public override ulong? AsSize() => null;

        public override bool? AsBool() => null;

        public override VmSpecException Error(string key, string message) => new(key, message, (int)start.Line, (int)start.Column);
    }

    private sealed class ScalarNode(Mark start, string value, ScalarStyle style) : Node(start)
    {
        public string Value => value;

        public override bool IsNull => style == ScalarStyle.Plain && value is "" or "~" or "null" or "Null" or "NULL";

        public override bool IsScalar => !IsNull;

        public override string Describe() => IsNull ? "nothing (null)" : $"'{value}'";

        public override string? AsText() => IsNull ? null : value;

        public override int? AsInt()
            => !IsNull && int.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v : null;

        public override ulong? AsSize() => !IsNull && ByteSize.TryParse(value, out ulong v) ? v : null;

        public override bool? AsBool() => IsNull ? null : value.Trim().ToLowerInvariant() switch
        {
            "true" => true,
            "false" => false,
            _ => null,
        };
    }

    private sealed class SequenceNode(Mark start, List<SpecValue> items) : Node(start)
    {
        public override IReadOnlyList<SpecValue>? Items => items;

        public override string Describe() => "a list";
    }

    private sealed class MappingNode(Mark start, List<(SpecValue, string, SpecValue)> entries) : Node(start)
    {
        public override bool IsMapping => true;

        public override IEnumerable<(SpecValue KeyNode, string Key, SpecValue Value)>? Entries => entries;

        public override string Describe() => "a mapping";
    }

    // ---------------------------------------------------------------- hashtables

    private sealed class ObjectValue : SpecValue
    {
        private readonly object? _value;

        public ObjectValue(object? value)
        {
            _value = Unwrap(value);
        }

        public override bool IsNull => _value is null;

        public override bool IsScalar => _value is string or char || (_value is not null && IsNumber(_value));

        public override bool IsMapping => _value is IDictionary || IsCustomObject(_value);

        public override int? Line => null;

        public override IReadOnlyList<SpecValue>? Items => _value is IEnumerable e and not string and not IDictionary && !IsCustomObject(_value)
            ? e.Cast<object?>().Select(o => (SpecValue)new ObjectValue(o)).ToList()
            : null;

        public override IEnumerable<(SpecValue KeyNode, string Key, SpecValue Value)>? Entries => _value switch
        {
            IDictionary d => DictionaryEntries(d)
                .Select(e => ((SpecValue)new ObjectValue(e.Key), Convert.ToString(Unwrap(e.Key), CultureInfo.InvariantCulture) ?? string.Empty, (SpecValue)new ObjectValue(e.Value))),
            PSObject p when IsCustomObject(p) => p.Properties
                .Select(prop => ((SpecValue)new ObjectValue(prop.Name), prop.Name, (SpecValue)new ObjectValue(prop.Value))),
            _ => null,
        };

        public override StringComparison KeyComparison => StringComparison.OrdinalIgnoreCase;

        public override string Describe() => _value switch
        {
            null => "nothing ($null)",
            string s => $"'{s}'",
            IDictionary => "a hashtable",
            PSObject => "an object",
            IEnumerable => "a list",
            _ => string.Create(CultureInfo.InvariantCulture, $"{_value} ({_value.GetType().Name})"),
        };

        public override string? AsText() => _value switch
        {
            string s => s,
            char c => c.ToString(),
            Enum e => e.ToString(),
            _ when _value is not null && IsNumber(_value) => Convert.ToString(_value, CultureInfo.InvariantCulture),
            _ => null,
        };

        public override int? AsInt() => _value switch
        {
            string s => int.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i) ? i : null,
            _ => AsWhole(_value) is { } d && d >= int.MinValue && d <= int.MaxValue ? (int)d : null,
        };

        public override ulong? AsSize() => _value switch
        {
            string s => ByteSize.TryParse(s, out ulong b) ? b : null,
            _ => AsWhole(_value) is { } d && d >= 0 && d <= ulong.MaxValue ? (ulong)d : null,
        };

        public override bool? AsBool() => _value switch
        {
            bool b => b,
            SwitchParameter sw => sw.IsPresent,
            string s when s.Trim().Equals("true", StringComparison.OrdinalIgnoreCase) => true,
            string s when s.Trim().Equals("false", StringComparison.OrdinalIgnoreCase) => false,
            _ => null,
        };

        public override VmSpecException Error(string key, string message) => new(key, message);

        /// <summary>A dictionary's entries through its IDictionaryEnumerator (generic dictionaries enumerate KeyValuePairs otherwise).</summary>
        private static IEnumerable<DictionaryEntry> DictionaryEntries(IDictionary d)
        {
            IDictionaryEnumerator e = d.GetEnumerator();
            while (e.MoveNext())
            {
                yield return e.Entry;
            }
        }

        private static object? Unwrap(object? o)
        {
            while (o is PSObject p && !IsCustomObject(p))
            {
                o = p.BaseObject;
            }

            return o;
        }

        private static bool IsCustomObject(object? o) => o is PSObject { BaseObject: PSCustomObject };

        private static bool IsNumber(object o)
            => o is sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal;

        /// <summary>A whole number as decimal (double/decimal without a fraction too); null otherwise.</summary>
        private static decimal? AsWhole(object? o)
        {
            try
            {
                decimal? d = o switch
                {
                    sbyte or byte or short or ushort or int or uint or long or ulong or decimal => Convert.ToDecimal(o, CultureInfo.InvariantCulture),
                    double x when double.IsFinite(x) && Math.Abs(x) < 7.9e28 => (decimal)x,
                    float x when float.IsFinite(x) && Math.Abs(x) < 7.9e28f => (decimal)x,
                    _ => null,
                };
                return d is { } v && v == decimal.Truncate(v) ? v : null;
            }
            catch (OverflowException)
            {
                return null;
            }
        }
    }

    // ---------------------------------------------------------------- writing

    private static void EmitPlain(IEmitter emitter, string key, string value)
    {
        emitter.Emit(new Scalar(key));
        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, value, ScalarStyle.Plain, true, false));
    }

    private static void EmitNumber(IEmitter emitter, string key, int? value)
    {
        if (value is { } v)
        {
            EmitPlain(emitter, key, v.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static void EmitSize(IEmitter emitter, string key, ulong? value)
    {
        if (value is { } v)
        {
            EmitPlain(emitter, key, FormatSize(v));
        }
    }

    private static void EmitText(IEmitter emitter, string key, string? value)
    {
        if (value is not null)
        {
            emitter.Emit(new Scalar(key));
            emitter.Emit(TextScalar(value));
        }
    }

    /// <summary>A string scalar quoted when it would read back as something else (null, a number, true); multi-line text as a literal block.</summary>
    private static Scalar TextScalar(string value)
    {
        ScalarStyle style;
        if (value.Any(ch => (char.IsControl(ch) && ch is not ('\n' or '\t')) || ch is '\u2028' or '\u2029'))
        {
            style = ScalarStyle.DoubleQuoted; // \r, \u0085 ... survive only as escapes
        }
        else if (value.Contains('\n'))
        {
            style = ScalarStyle.Literal;
        }
        else if (LooksLikeNonString().IsMatch(value))
        {
            style = ScalarStyle.DoubleQuoted;
        }
        else
        {
            style = ScalarStyle.Any;
        }

        return new Scalar(AnchorName.Empty, TagName.Empty, value, style, true, true);
    }

    /// <summary>"2GiB" / "512MiB" when exact, else the number of bytes.</summary>
    internal static string FormatSize(ulong bytes)
    {
        string[] units = ["PiB", "TiB", "GiB", "MiB", "KiB"];
        for (int i = 0; i < units.Length; i++)
        {
            ulong unit = 1UL << (10 * (units.Length - i));
            if (bytes >= unit && bytes % unit == 0)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{bytes / unit}{units[i]}");
            }
        }

        return bytes.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Plain scalars a YAML reader may take for null, a boolean or a number.</summary>
    [GeneratedRegex(@"^(|~|null|true|false|yes|no|on|off|y|n|[-+]?\.(inf|nan)|[-+]?\.?[0-9].*)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex LooksLikeNonString();
}
