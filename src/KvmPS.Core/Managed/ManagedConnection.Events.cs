using System.Collections.Concurrent;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Managed;

/// <summary>Domain lifecycle events of the managed connection.</summary>
internal sealed partial class ManagedConnection
{
    private const int ProcEventCallbackRegisterAny = 316;
    private const int ProcEventCallbackDeregisterAny = 317;
    private const int ProcEventCallbackLifecycle = 318;

    /// <summary>VIR_DOMAIN_EVENT_ID_LIFECYCLE.</summary>
    private const int EventIdLifecycle = 0;

    private readonly object _eventLock = new();
    private readonly Dictionary<int, Action<DomainLifecycleEvent>> _lifecycleHandlers = [];
    private readonly ConcurrentQueue<(int CallbackId, DomainLifecycleEvent Event)> _eventQueue = new();
    private int _eventPumpScheduled;
    private volatile bool _eventsStopped;

    public int RegisterDomainLifecycleEvents(DomainRef? domain, Action<DomainLifecycleEvent> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);

        // Held across the call so an event that overtakes the reply waits for its handler to be known.
        lock (_eventLock)
        {
            int id = Remote(ProcEventCallbackRegisterAny, w =>
            {
                w.WriteInt32(EventIdLifecycle);
                w.WriteOptionalDomain(domain);
            }, r => r.ReadInt32());
            _lifecycleHandlers[id] = handler;
            return id;
        }
    }

    public void DeregisterDomainEvents(int subscription)
    {
        bool known;
        lock (_eventLock)
        {
            known = _lifecycleHandlers.Remove(subscription);
        }

        if (known && _disposed == 0 && _rpc.IsOpen)
        {
            try
            {
                Remote(ProcEventCallbackDeregisterAny, w => w.WriteInt32(subscription));
            }
            catch (LibvirtException)
            {
                // like the native backend: deregistering never fails the caller
            }
        }
    }

    /// <summary>Reader thread: decode, queue, and let a pool thread run the handlers (which may call back in).</summary>
    private void OnMessage(int procedure, XdrReader r)
    {
        if (procedure != ProcEventCallbackLifecycle || _eventsStopped)
        {
            return;
        }

        int callbackId = r.ReadInt32();
        DomainRef dom = r.ReadDomain();
        int evt = r.ReadInt32();
        int detail = r.ReadInt32();
        _eventQueue.Enqueue((callbackId, new DomainLifecycleEvent(dom, (DomainEventType)evt, detail)));
        if (Interlocked.Exchange(ref _eventPumpScheduled, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_ => PumpEvents(), null);
        }
    }

    /// <summary>Delivers queued events in order, one pump at a time.</summary>
    private void PumpEvents()
    {
        while (true)
        {
            while (_eventQueue.TryDequeue(out (int CallbackId, DomainLifecycleEvent Event) item))
            {
                if (_eventsStopped)
                {
                    continue;
                }

                Action<DomainLifecycleEvent>? handler;
                lock (_eventLock)
                {
                    _lifecycleHandlers.TryGetValue(item.CallbackId, out handler);
                }

                try
                {
                    handler?.Invoke(item.Event);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // a handler's exception must not stop event delivery
                }
            }

            Volatile.Write(ref _eventPumpScheduled, 0);
            if (_eventQueue.IsEmpty || Interlocked.Exchange(ref _eventPumpScheduled, 1) != 0)
            {
                return;
            }
        }
    }

    /// <summary>No handler runs after the connection is closed or disposed.</summary>
    private void StopEvents()
    {
        _eventsStopped = true;
        lock (_eventLock)
        {
            _lifecycleHandlers.Clear();
        }

        _eventQueue.Clear();
    }
}
