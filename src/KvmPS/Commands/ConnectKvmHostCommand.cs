using System.Management.Automation;
using System.Net;
using KvmPS.Core;
using KvmPS.Core.Backend;
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

    /// <summary>Native (libvirt client library), Managed (KvmPS's own RPC client) or Auto (Native when libvirt loads).</summary>
    [Parameter]
    public KvmBackendKind Backend { get; set; } = KvmBackends.DefaultKind;

    /// <summary>Gives up on any libvirt call of this connection that takes longer (0: no limit).</summary>
    [Parameter]
    [ValidateRange(0, 86400)]
    public int OperationTimeoutSec { get; set; }

    /// <summary>Seconds of silence before a keepalive ping (0 turns keepalive off).</summary>
    [Parameter]
    [ValidateRange(0, 3600)]
    public int KeepAliveIntervalSec { get; set; } = 5;

    /// <summary>Unanswered pings after which the host counts as unreachable.</summary>
    [Parameter]
    [ValidateRange(1, 100)]
    public int KeepAliveCount { get; set; } = 3;

    /// <summary>SSH (managed backend): trust the host key on first contact and add it to known_hosts.</summary>
    [Parameter]
    public SwitchParameter AcceptHostKey { get; set; }

    protected override void ProcessRecord()
    {
        string?[] uris = Uri is { Length: > 0 } ? [.. Uri] : [Environment.GetEnvironmentVariable("LIBVIRT_DEFAULT_URI")];
        foreach (string? uri in uris)
        {
            string display = string.IsNullOrWhiteSpace(uri) ? "(libvirt default URI)" : uri;
            bool custom = Credential is not null || AcceptHostKey || MyInvocation.BoundParameters.ContainsKey(nameof(KeepAliveIntervalSec))
                || MyInvocation.BoundParameters.ContainsKey(nameof(KeepAliveCount));
            KvmConnection? existing = custom ? null : ModuleState.TryGetKnown(uri);
            ILibvirtBackend backend = KvmBackends.Get(Backend);
            KvmConnection connection = existing is not null && existing.IsReadOnly == ReadOnly.IsPresent && existing.Backend == backend.Name
                ? existing
                : new KvmConnection(uri, ReadOnly.IsPresent, Credential?.GetNetworkCredential() is NetworkCredential n ? n : null, backend, KeepAliveIntervalSec, (uint)KeepAliveCount)
                {
                    AcceptUnknownHostKey = AcceptHostKey,
                };
            connection.OperationTimeout = OperationTimeoutSec > 0 ? TimeSpan.FromSeconds(OperationTimeoutSec) : null;
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

            WriteVerbose($"Connected to {connection.Uri} through the {connection.Backend} backend ({connection.Hypervisor} {connection.HypervisorVersion}, libvirt {connection.LibvirtVersion}) on {connection.HostName}");
            WriteObject(connection);
        }
    }
}
