using System.Management.Automation;
using System.Net;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Opens a connection to a libvirt host and adds it to the default connections.</summary>
[Cmdlet(VerbsCommunications.Connect, "KvmHost")]
[OutputType(typeof(KvmConnection))]
public sealed class ConnectKvmHostCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Server")]
    public string[]? Uri { get; set; }

    [Parameter]
    [Credential]
    public PSCredential? Credential { get; set; }

    [Parameter]
    public SwitchParameter ReadOnly { get; set; }

    [Parameter]
    public SwitchParameter NotDefault { get; set; }

    protected override void ProcessRecord()
    {
        string?[] uris = Uri is { Length: > 0 } ? [.. Uri] : [Environment.GetEnvironmentVariable("LIBVIRT_DEFAULT_URI")];
        foreach (string? uri in uris)
        {
            string display = string.IsNullOrWhiteSpace(uri) ? "(libvirt default URI)" : uri;
            KvmConnection? existing = Credential is null ? ModuleState.TryGetKnown(uri) : null;
            KvmConnection connection = existing is not null && existing.IsReadOnly == ReadOnly.IsPresent
                ? existing
                : new KvmConnection(uri, ReadOnly.IsPresent, Credential?.GetNetworkCredential() is NetworkCredential n ? n : null);
            try
            {
                WriteVerbose($"Connecting to {display}");
                connection.Open();
            }
            catch (LibvirtException e)
            {
                if (!ReferenceEquals(existing, connection))
                {
                    connection.Dispose();
                }

                WriteError(ErrorRecords.ConnectionFailed(e, display));
                continue;
            }

            ModuleState.Register(connection);
            if (!NotDefault)
            {
                ModuleState.AddDefault(connection);
            }

            WriteVerbose($"Connected to {connection.Uri} ({connection.Hypervisor} {connection.HypervisorVersion}, libvirt {connection.LibvirtVersion}) on {connection.HostName}");
            WriteObject(connection);
        }
    }
}
