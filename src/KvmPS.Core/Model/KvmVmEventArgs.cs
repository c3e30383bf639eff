using KvmPS.Core.Backend;

namespace KvmPS.Core;

/// <summary>A VM life-cycle event from <see cref="Services.KvmConnection.VmStateChanged"/>.</summary>
public sealed class KvmVmEventArgs(Services.KvmConnection connection, string vmName, Guid vmId, DomainEventType kind, int detail) : EventArgs
{
    public Services.KvmConnection Connection { get; } = connection;

    public string? HostName => Connection.HostName;

    public string VMName { get; } = vmName;

    public Guid VMId { get; } = vmId;

    public DomainEventType Kind { get; } = kind;

    /// <summary>libvirt's detail code for the event (for Stopped: 0 shutdown, 1 destroyed, 2 crashed, 3 migrated, 4 saved, 5 failed, 6 from snapshot).</summary>
    public int Detail { get; } = detail;

    public DateTime TimeCreated { get; } = DateTime.Now;

    public override string ToString() => $"{VMName}: {Kind}";
}
