using System.Management.Automation;
using KvmPS.Core;
using KvmPS.Core.Services;

namespace KvmPS.Commands;

/// <summary>Creates a virtual network (NAT, routed, open, isolated, or on an existing host bridge), checked before anything is made.</summary>
[Cmdlet(VerbsCommon.New, "KvmNetwork", SupportsShouldProcess = true)]
[OutputType(typeof(KvmNetwork))]
public sealed class NewKvmNetworkCommand : KvmCmdlet
{
    protected override bool CreatesOnOneHost => true;

    protected override object? CreationTarget => Name;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("NetworkName")]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateSet("Nat", "Route", "Open", "Isolated", "Bridge", IgnoreCase = true)]
    public KvmNetworkMode Mode { get; set; } = KvmNetworkMode.Nat;

    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true)]
    [Alias("Subnets")]
    [AllowEmptyCollection]
    [ValidateNotNull]
    public string[] Subnet { get; set; } = [];

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("DhcpRanges")]
    [AllowEmptyCollection]
    [ValidateNotNull]
    public string[] DhcpRange { get; set; } = [];

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowNull]
    [AllowEmptyString]
    public string? Bridge { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public SwitchParameter Autostart { get; set; }

    [Parameter]
    public SwitchParameter Start { get; set; }

    protected override void ProcessConnection(KvmConnection connection)
    {
        var spec = new NetworkSpec
        {
            Name = Name,
            Mode = Mode,
            Subnets = Subnet,
            DhcpRanges = DhcpRange,
            Bridge = string.IsNullOrEmpty(Bridge) ? null : Bridge,
            Autostart = Autostart,
            Start = Start,
        };
        Guard(Name, () =>
        {
            // Checked before asking, so that -WhatIf reports bad input and overlaps too.
            _ = NetworkService.Prepare(connection, spec);
            string addresses = spec.Mode == KvmNetworkMode.Bridge ? $"on host bridge {spec.Bridge}"
                : spec.Subnets.Count == 0 ? "no addresses" : string.Join(", ", spec.Subnets);
            string dhcp = spec.DhcpRanges.Count == 0 ? string.Empty : $", DHCP {string.Join(", ", spec.DhcpRanges)}";
            string then = (spec.Start ? ", start it" : string.Empty) + (spec.Autostart ? ", start it with the host" : string.Empty);
            if (!ShouldProcess($"network {Name} on {connection.HostName ?? connection.Uri}", $"Create {spec.Mode} network ({addresses}{dhcp}{then})"))
            {
                return;
            }

            WriteObject(NetworkService.Create(connection, spec, this));
        });
    }
}
