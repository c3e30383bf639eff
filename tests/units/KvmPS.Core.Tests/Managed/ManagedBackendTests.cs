using System.Collections.Concurrent;
using System.Diagnostics;
using KvmPS.Core.Backend;
using KvmPS.Core.Managed;
using KvmPS.Core.Native;

namespace KvmPS.Core.Tests.Managed;

/// <summary>
/// The managed backend against the real daemon, compared call by call with the native backend on the same
/// URI. test:///default goes through the daemon under the managed backend, so it is compared with native's
/// test+unix:///default (the same daemon-side driver).
/// </summary>
public sealed class ManagedBackendTests
{
    private const string System = "qemu:///system";
    private const string TestManaged = "test:///default";
    private const string TestNative = "test+unix:///default";
    private static readonly LibvirtOpenOptions s_options = new();

    private static bool Daemon => SocketProxy.DaemonAvailable;

    private static ILibvirtConnection Managed(string uri, LibvirtOpenOptions? o = null) => ManagedBackend.Instance.Open(uri, o ?? s_options);

    private static ILibvirtConnection Native(string uri) => NativeBackend.Instance.Open(uri, s_options);

    [Fact]
    public void Backend_IsAlwaysAvailable()
    {
        Assert.Equal("Managed", ManagedBackend.Instance.Name);
        Assert.True(ManagedBackend.Instance.IsAvailable(out string? reason));
        Assert.Null(reason);
        Assert.Contains("unix", ManagedBackend.TransportNames);
        Assert.Contains("tcp", ManagedBackend.TransportNames);
    }

    [SkippableFact]
    public void ConnectionFacts_MatchNative()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(System);
        using ILibvirtConnection n = Native(System);
        Assert.Equal("Managed", m.BackendName);
        Assert.Equal(n.GetUri(), m.GetUri());
        Assert.Equal(n.GetHostname(), m.GetHostname());
        Assert.Equal(n.GetHypervisorType(), m.GetHypervisorType());
        Assert.Equal(n.GetHypervisorVersion(), m.GetHypervisorVersion());
        Assert.Equal(n.GetLibVersion(), m.GetLibVersion());
        Assert.Equal(n.IsSecure(), m.IsSecure());
        Assert.Equal(n.IsEncrypted(), m.IsEncrypted());
        Assert.True(m.IsAlive());
        Assert.False(m.IsReadOnly);
        Assert.Equal(n.GetNodeInfo(), m.GetNodeInfo());
        Assert.Equal(n.GetCapabilities(), m.GetCapabilities());
        // Both domain types, whatever this host offers: where it offers one, both backends give the same answer;
        // where it does not (no /dev/kvm), both give the same libvirt error.
        bool kvmOffered = global::System.Xml.Linq.XElement.Parse(n.GetCapabilities()).Descendants("domain")
            .Any(d => (string?)d.Attribute("type") == "kvm");
        Assert.True(!kvmOffered || File.Exists("/dev/kvm"), "libvirt offers kvm without /dev/kvm");
        foreach (string type in new[] { "kvm", "qemu" })
        {
            bool offered = type == "qemu" || kvmOffered;
            if (offered)
            {
                Assert.Equal(n.GetMaxVcpus(type), m.GetMaxVcpus(type));
                Assert.Equal(n.GetDomainCapabilities(null, null, null, type, 0), m.GetDomainCapabilities(null, null, null, type, 0));
            }
            else
            {
                LibvirtException nativeError = Assert.ThrowsAny<LibvirtException>(() => n.GetMaxVcpus(type));
                LibvirtException managedError = Assert.ThrowsAny<LibvirtException>(() => m.GetMaxVcpus(type));
                Assert.Equal(nativeError.Code, managedError.Code);
                Assert.Equal(nativeError.Message, managedError.Message);
                nativeError = Assert.ThrowsAny<LibvirtException>(() => n.GetDomainCapabilities(null, null, null, type, 0));
                managedError = Assert.ThrowsAny<LibvirtException>(() => m.GetDomainCapabilities(null, null, null, type, 0));
                Assert.Equal(nativeError.Code, managedError.Code);
            }
        }

        ulong free = m.GetFreeMemory();
        Assert.InRange(free, n.GetFreeMemory() / 2, n.GetFreeMemory() * 2);
    }

    [SkippableFact]
    public void Domains_ListsXmlInfoAndStats_MatchNative()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(System);
        using ILibvirtConnection n = Native(System);

        // Two VMs of this test's own (one running, one shut off): compared by both backends, whatever else the host has.
        string prefix = ManagedParity.NewName("par");
        string type = File.Exists("/dev/kvm") ? "kvm" : "qemu";
        var defined = new List<DomainRef>();
        try
        {
            foreach (string suffix in new[] { "-run", "-off" })
            {
                var config = new KvmPS.Core.Xml.DomainConfig
                {
                    Name = prefix + suffix,
                    DomainType = type,
                    MaxMemoryKiB = 65536,
                    MemoryKiB = 65536,
                    CpuCount = 1,
                    MaxCpuCount = 1,
                    Title = "KvmPS parity test",
                };
                defined.Add(n.DefineDomain(KvmPS.Core.Xml.DomainXml.Build(config), 0));
            }

            n.CreateDomain(defined[0], 0);
            DomainRef running = n.LookupDomainByName(prefix + "-run");
            DomainRef off = defined[1];
            Assert.True(running.Id > 0);

            static string[] Ours(IEnumerable<DomainRef> list, string prefix) => [.. list.Where(d => d.Name.StartsWith(prefix, StringComparison.Ordinal)).Select(d => d.Name).Order()];
            Assert.Equal([prefix + "-off", prefix + "-run"], Ours(m.ListAllDomains(ListDomainsFlags.None), prefix));
            Assert.Equal(Ours(n.ListAllDomains(ListDomainsFlags.None), prefix), Ours(m.ListAllDomains(ListDomainsFlags.None), prefix));
            Assert.Equal([prefix + "-off"], Ours(m.ListAllDomains(ListDomainsFlags.Inactive), prefix));
            Assert.Equal(Ours(n.ListAllDomains(ListDomainsFlags.Inactive), prefix), Ours(m.ListAllDomains(ListDomainsFlags.Inactive), prefix));

            foreach (DomainRef d in new[] { running, off })
            {
                DomainRef md = m.LookupDomainByName(d.Name);
                Assert.Equal(d, md);
                Assert.Equal(d, m.LookupDomainByUuid(d.Uuid));
                Assert.Equal(n.GetDomainXml(d, DomainXmlFlags.Inactive), m.GetDomainXml(d, DomainXmlFlags.Inactive));
                Assert.Equal(n.GetDomainXml(d, DomainXmlFlags.None), m.GetDomainXml(d, DomainXmlFlags.None));
                Assert.Equal(n.GetDomainState(d), m.GetDomainState(d));
                Assert.Equal(n.GetDomainAutostart(d), m.GetDomainAutostart(d));
                Assert.Equal(n.IsDomainPersistent(d), m.IsDomainPersistent(d));
                Assert.Equal(n.HasManagedSaveImage(d), m.HasManagedSaveImage(d));
                Assert.Equal(n.GetDomainVcpus(d, DomainModificationFlags.Config), m.GetDomainVcpus(d, DomainModificationFlags.Config));
                DomainInfo mi = m.GetDomainInfo(d), ni = n.GetDomainInfo(d);
                Assert.Equal((ni.State, ni.MaxMemoryKiB, ni.VirtualCpuCount), (mi.State, mi.MaxMemoryKiB, mi.VirtualCpuCount));
            }

            Assert.Equal(1, m.GetDomainState(running).State);   // running
            Assert.Equal(5, m.GetDomainState(off).State);       // shut off
            Assert.Equal(65536UL, m.GetDomainInfo(off).MaxMemoryKiB);
            Assert.Equal(running.Uuid, m.LookupDomainById(running.Id).Uuid);

            const DomainStatsTypes stats = DomainStatsTypes.State | DomainStatsTypes.Balloon | DomainStatsTypes.Vcpu;
            var ms = m.GetAllDomainStats(stats, ListDomainsFlags.None).Where(r => r.Domain.Name.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(r => r.Domain.Uuid);
            var ns = n.GetAllDomainStats(stats, ListDomainsFlags.None).Where(r => r.Domain.Name.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(r => r.Domain.Uuid);
            Assert.Equal(new[] { running.Uuid, off.Uuid }.Order(), ms.Keys.Order());
            Assert.Equal(ns.Keys.Order(), ms.Keys.Order());
            foreach ((Guid uuid, DomainStatsRecord nr) in ns)
            {
                DomainStatsRecord mr = ms[uuid];
                Assert.Equal(nr.GetUInt64("state.state"), mr.GetUInt64("state.state"));
                Assert.Equal(nr.GetUInt64("balloon.maximum"), mr.GetUInt64("balloon.maximum"));
                Assert.Equal(nr.Parameters.Select(p => p.Name).Order(), mr.Parameters.Select(p => p.Name).Order());
            }

            Assert.Equal(1UL, ms[running.Uuid].GetUInt64("state.state"));
            Assert.Equal(5UL, ms[off.Uuid].GetUInt64("state.state"));
            Assert.Equal(65536UL, ms[off.Uuid].GetUInt64("balloon.maximum"));
        }
        finally
        {
            foreach (DomainRef d in defined)
            {
                ManagedParity.Quietly(() => n.DestroyDomain(n.LookupDomainByUuid(d.Uuid), 0));
                ManagedParity.Quietly(() => n.UndefineDomain(n.LookupDomainByUuid(d.Uuid), DomainUndefineFlags.None));
            }
        }
    }

    [SkippableFact]
    public void MissingDomain_FailsWithTheSameCodeAsNative()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(System);
        using ILibvirtConnection n = Native(System);
        string name = "kvmps-t-missing-" + Guid.NewGuid().ToString("N")[..8];
        var me = Assert.Throws<LibvirtException>(() => m.LookupDomainByName(name));
        var ne = Assert.Throws<LibvirtException>(() => n.LookupDomainByName(name));
        Assert.Equal((ne.Code, ne.ErrorDomain), (me.Code, me.ErrorDomain));
        Assert.Equal(LibvirtErrorCode.NoDomain, me.Code);
        Assert.Equal(ne.Message, me.Message);

        var ghost = new DomainRef(name, Guid.NewGuid(), -1);
        var mx = Assert.Throws<LibvirtException>(() => m.GetDomainXml(ghost, DomainXmlFlags.None));
        var nx = Assert.Throws<LibvirtException>(() => n.GetDomainXml(ghost, DomainXmlFlags.None));
        Assert.Equal((nx.Code, nx.ErrorDomain), (mx.Code, mx.ErrorDomain));
        Assert.False(mx.IsConnectionFailure);
        Assert.True(m.IsAlive());
    }

    [SkippableFact]
    public void ReadOnly_UsesTheReadOnlySocket_AndRefusesWrites()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(System, new LibvirtOpenOptions { ReadOnly = true });
        Assert.True(m.IsReadOnly);
        Assert.NotNull(m.GetCapabilities());
        var e = Assert.Throws<LibvirtException>(() => m.DefineDomain("<domain type='kvm'><name>kvmps-t-ro</name></domain>", 0));
        Assert.Equal(LibvirtErrorCode.OperationDenied, e.Code);
    }

    [SkippableFact]
    public void MissingSocket_FailsLikeNative()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        string uri = $"qemu:///system?socket=/tmp/kvmps-no-such-{Guid.NewGuid():N}.sock";
        var me = Assert.Throws<LibvirtException>(() => Managed(uri));
        var ne = Assert.Throws<LibvirtException>(() => Native(uri));
        Assert.Equal((ne.Code, ne.ErrorDomain), (me.Code, me.ErrorDomain));
        Assert.Equal(ne.Message, me.Message);
        Assert.True(me.IsConnectionFailure);
    }

    [SkippableFact]
    public void TestDriver_ThroughTheDaemon_MatchesNative()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(TestManaged);
        using ILibvirtConnection n = Native(TestNative);
        Assert.Equal("test:///default", m.GetUri());
        Assert.Equal("TEST", m.GetHypervisorType());
        DomainRef test = m.LookupDomainByName("test");
        Assert.Equal(n.LookupDomainByName("test"), test);
        Assert.Equal(n.GetDomainXml(test, DomainXmlFlags.None), m.GetDomainXml(test, DomainXmlFlags.None));
        Assert.Equal(n.GetNodeInfo(), m.GetNodeInfo());

        // the test driver lacks balloon/vcpu stats: both backends fill them from DOMAIN_GET_INFO
        const DomainStatsTypes stats = DomainStatsTypes.State | DomainStatsTypes.Balloon;
        DomainStatsRecord mr = m.GetAllDomainStats(stats, ListDomainsFlags.None).Single(r => r.Domain.Name == "test");
        DomainStatsRecord nr = n.GetAllDomainStats(stats, ListDomainsFlags.None).Single(r => r.Domain.Name == "test");
        Assert.Equal(nr.Parameters.Select(p => (p.Name, p.Type)), mr.Parameters.Select(p => (p.Name, p.Type)));
        Assert.Equal(nr.GetUInt64("balloon.maximum"), mr.GetUInt64("balloon.maximum"));
    }

    [SkippableFact]
    public void DomainLifecycle_AndEvents_OnTheTestDriver()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(TestManaged);
        string name = "kvmps-t-" + Guid.NewGuid().ToString("N")[..8];
        var events = new BlockingCollection<DomainLifecycleEvent>();
        int handlerThread = -1;
        int sub = m.RegisterDomainLifecycleEvents(null, e =>
        {
            if (e.Domain.Name == name)
            {
                handlerThread = Environment.CurrentManagedThreadId;
                // calling back into the connection from a handler must not deadlock
                _ = m.GetHypervisorType();
                events.Add(e);
            }
        });
        try
        {
            DomainRef d = m.DefineDomain($"<domain type='test'><name>{name}</name><memory>131072</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>", 0);
            Assert.Equal(name, d.Name);
            Assert.Equal(-1, d.Id);
            m.SetDomainMetadata(d, DomainMetadataType.Title, "managed title", DomainModificationFlags.Config);
            Assert.Contains("<title>managed title</title>", m.GetDomainXml(d, DomainXmlFlags.Inactive));
            m.SetDomainMemory(d, 65536, DomainModificationFlags.Config);
            m.SetDomainAutostart(d, true);
            Assert.True(m.GetDomainAutostart(d));
            m.CreateDomain(d, 0);
            Assert.Equal(1, m.GetDomainState(d).State);
            m.SuspendDomain(d);
            Assert.Equal(3, m.GetDomainInfo(d).State);
            m.ResumeDomain(d);
            m.DestroyDomain(d, 0);
            Assert.Equal(5, m.GetDomainState(d).State);
            m.UndefineDomain(d, DomainUndefineFlags.None);

            var seen = new List<DomainEventType>();
            while (!seen.Contains(DomainEventType.Undefined) && events.TryTake(out DomainLifecycleEvent e, TimeSpan.FromSeconds(10)))
            {
                seen.Add(e.Event);
            }

            // in this order (config changes may add more Defined events in between)
            Assert.Equal(DomainEventType.Defined, seen[0]);
            DomainEventType[] expected = [DomainEventType.Started, DomainEventType.Suspended, DomainEventType.Resumed, DomainEventType.Stopped, DomainEventType.Undefined];
            Assert.Equal(expected, seen.Where(x => expected.Contains(x)).ToArray());
            Assert.NotEqual(-1, handlerThread);
        }
        finally
        {
            m.DeregisterDomainEvents(sub);
            try
            {
                DomainRef left = m.LookupDomainByName(name);
                try
                {
                    m.DestroyDomain(left, 0);
                }
                catch (LibvirtException)
                {
                }

                m.UndefineDomain(left, DomainUndefineFlags.None);
            }
            catch (LibvirtException)
            {
                // already gone
            }
        }
    }

    [SkippableFact]
    public void Snapshots_OnTheTestDriver_MatchNative()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(TestManaged);
        using ILibvirtConnection n = Native(TestNative);
        string name = "kvmps-t-" + Guid.NewGuid().ToString("N")[..8];
        DomainRef d = m.DefineDomain($"<domain type='test'><name>{name}</name><memory>131072</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>", 0);
        try
        {
            Assert.Equal("s1", m.CreateSnapshot(d, "<domainsnapshot><name>s1</name></domainsnapshot>", SnapshotCreateFlags.None));
            Assert.Equal("s2", m.CreateSnapshot(d, "<domainsnapshot><name>s2</name></domainsnapshot>", SnapshotCreateFlags.None));
            IReadOnlyList<SnapshotData> ms = m.ListSnapshots(d);
            IReadOnlyList<SnapshotData> ns = n.ListSnapshots(d);
            Assert.Equal(ns.OrderBy(s => s.Name), ms.OrderBy(s => s.Name));
            Assert.Equal("s2", ms.Single(s => s.IsCurrent).Name);

            m.RevertToSnapshot(d, "s1", SnapshotRevertFlags.None);
            Assert.Equal("s1", m.ListSnapshots(d).Single(s => s.IsCurrent).Name);
            var me = Assert.Throws<LibvirtException>(() => m.DeleteSnapshot(d, "nope", SnapshotDeleteFlags.None));
            var ne = Assert.Throws<LibvirtException>(() => n.DeleteSnapshot(d, "nope", SnapshotDeleteFlags.None));
            Assert.Equal((ne.Code, ne.ErrorDomain, ne.Message), (me.Code, me.ErrorDomain, me.Message));
            m.DeleteSnapshot(d, "s1", SnapshotDeleteFlags.None);
            Assert.Equal(["s2"], m.ListSnapshots(d).Select(s => s.Name));
        }
        finally
        {
            m.UndefineDomain(d, DomainUndefineFlags.SnapshotsMetadata);
        }
    }

    [SkippableFact]
    public void RenameAndVcpus_OnTheTestDriver()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(TestManaged);
        string name = "kvmps-t-" + Guid.NewGuid().ToString("N")[..8];
        DomainRef d = m.DefineDomain($"<domain type='test'><name>{name}</name><memory>131072</memory><vcpu placement='static' current='1'>2</vcpu><os><type>hvm</type></os></domain>", 0);
        try
        {
            m.SetDomainVcpus(d, 2, DomainModificationFlags.Config);
            Assert.Equal(2, m.GetDomainVcpus(d, DomainModificationFlags.Config));
            m.RenameDomain(d, name + "-r");
            d = m.LookupDomainByUuid(d.Uuid);
            Assert.Equal(name + "-r", d.Name);
        }
        finally
        {
            m.UndefineDomain(m.LookupDomainByUuid(d.Uuid), DomainUndefineFlags.None);
        }
    }

    [SkippableFact]
    public void IdleConnection_AnswersTheDaemonsPings_AndStillWorks()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");

        // Our own pings every 2 s (count 2): without PONGs the connection would be declared dead after ~6 s.
        using ILibvirtConnection m = Managed(System, new LibvirtOpenOptions { KeepAliveIntervalSeconds = 2, KeepAliveCount = 2 });
        bool closed = false;
        m.Closed += (_, _) => closed = true;
        Thread.Sleep(TimeSpan.FromSeconds(12));
        Assert.False(closed);
        Assert.True(m.IsAlive());
        Assert.NotEmpty(m.GetHostname());
    }

    [SkippableFact]
    public void DaemonPings_AreAnswered()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");

        // Opted in (interval > 0) but pinging rarely ourselves: the daemon pings us after its 5 s of silence.
        using ILibvirtConnection m = Managed(System, new LibvirtOpenOptions { KeepAliveIntervalSeconds = 60, KeepAliveCount = 5 });
        RpcClient rpc = ((ManagedConnection)m).Rpc;
        Assert.True(SpinWait.SpinUntil(() => rpc.PingsAnswered > 0, TimeSpan.FromSeconds(15)), "the daemon never pinged (did the keepalive opt-in work?)");
        Assert.True(m.IsAlive());
        Assert.NotEmpty(m.GetHostname());
    }

    [SkippableFact]
    public void OneConnection_SixteenThreads_NoErrors()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(System);

        // answers that cannot change while other tests run: host facts, capabilities, and the test driver's XML
        string host = m.GetHostname();
        string caps = m.GetCapabilities();
        ulong lib = m.GetLibVersion();
        var problems = new ConcurrentQueue<string>();
        int calls = 0;
        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 16 }, t =>
        {
            for (int i = 0; i < 50; i++)
            {
                try
                {
                    string what = ((t + i) % 4) switch
                    {
                        0 => m.GetHostname() == host ? "" : "hostname differs",
                        1 => m.GetCapabilities() == caps ? "" : "capabilities differ",
                        2 => m.GetLibVersion() == lib ? "" : "version differs",
                        _ => m.ListAllDomains(ListDomainsFlags.None) is not null ? "" : "no list",
                    };
                    if (what.Length > 0)
                    {
                        problems.Enqueue(what);
                    }

                    Interlocked.Increment(ref calls);
                }
                catch (LibvirtException e)
                {
                    problems.Enqueue($"{e.Code}/{e.ErrorDomain}: {e.Message}");
                }
            }
        });
        Assert.True(problems.IsEmpty, $"{problems.Count} errors, e.g. {string.Join(" | ", problems.Take(3))}");
        Assert.Equal(800, calls);
        Assert.True(m.IsAlive());
    }

    [SkippableFact]
    public void ConcurrentCalls_GetTheirOwnReplies()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using ILibvirtConnection m = Managed(TestManaged);
        string tag = Guid.NewGuid().ToString("N")[..6];
        DomainRef[] doms = [.. Enumerable.Range(0, 16).Select(i => m.DefineDomain(
            $"<domain type='test'><name>kvmps-t-{tag}-{i}</name><memory>131072</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>", 0))];
        try
        {
            var problems = new ConcurrentQueue<string>();
            Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 16 }, t =>
            {
                for (int i = 0; i < 50; i++)
                {
                    DomainRef d = doms[(t * 7 + i) % doms.Length];
                    try
                    {
                        if (!m.GetDomainXml(d, DomainXmlFlags.None).Contains($"<name>{d.Name}</name>", StringComparison.Ordinal))
                        {
                            problems.Enqueue($"wrong XML for {d.Name}");
                        }

                        if (m.LookupDomainByUuid(d.Uuid).Name != d.Name)
                        {
                            problems.Enqueue($"wrong lookup for {d.Name}");
                        }
                    }
                    catch (LibvirtException e)
                    {
                        problems.Enqueue($"{e.Code}/{e.ErrorDomain}: {e.Message}");
                    }
                }
            });
            Assert.True(problems.IsEmpty, $"{problems.Count} errors, e.g. {string.Join(" | ", problems.Take(3))}");
        }
        finally
        {
            foreach (DomainRef d in doms)
            {
                m.UndefineDomain(d, DomainUndefineFlags.None);
            }
        }
    }

    [SkippableFact]
    public void TwoHundredConnections_OpenedAndClosed_LeakNoThreads()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        int readersBefore = RpcClient.LiveReaderThreads;
        for (int i = 0; i < 200; i++)
        {
            using ILibvirtConnection m = Managed(TestManaged);
            Assert.True(m.IsAlive());
        }

        Assert.True(SpinWait.SpinUntil(() => RpcClient.LiveReaderThreads <= readersBefore, TimeSpan.FromSeconds(10)),
            $"{RpcClient.LiveReaderThreads} reader threads alive, {readersBefore} before");
    }

    [SkippableFact]
    public void Dispose_ClosesWithoutRaisingClosed_AndCallsFailCleanly()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        ILibvirtConnection m = Managed(TestManaged);
        bool raised = false;
        m.Closed += (_, _) => raised = true;
        m.Dispose();
        m.Dispose();
        Assert.False(m.IsAlive());
        Assert.False(raised);
        var e = Assert.Throws<LibvirtException>(() => m.GetHostname());
        Assert.True(e.IsConnectionFailure);
    }

    [SkippableFact]
    public void DaemonGone_RaisesClosed_AndCallsFailAsConnectionFailures()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using var proxy = new SocketProxy();
        proxy.Start();
        using ILibvirtConnection m = Managed($"test+unix:///default?socket={proxy.Path}");
        Assert.Equal("test+unix:///default?socket=" + proxy.Path, m.GetUri());
        var closed = new ManualResetEventSlim();
        ConnectionCloseReason reason = ConnectionCloseReason.Client;
        m.Closed += (_, r) =>
        {
            reason = r;
            closed.Set();
        };
        proxy.Kill();
        Assert.True(closed.Wait(TimeSpan.FromSeconds(10)));
        Assert.Equal(ConnectionCloseReason.Eof, reason);
        Assert.False(m.IsAlive());
        Assert.True(Assert.Throws<LibvirtException>(() => m.GetHostname()).IsConnectionFailure);
    }

    [SkippableFact]
    public void FrozenDaemon_IsDetectedByKeepalive()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using var proxy = new SocketProxy();
        proxy.Start();
        using ILibvirtConnection m = Managed($"test+unix:///default?socket={proxy.Path}", new LibvirtOpenOptions { KeepAliveIntervalSeconds = 1, KeepAliveCount = 2 });
        Assert.NotEmpty(m.ListAllDomains(ListDomainsFlags.None));
        proxy.Freeze();
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<LibvirtException>(() => m.ListAllDomains(ListDomainsFlags.None));
        Assert.True(e.IsConnectionFailure);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
    }

    [SkippableFact]
    public void KvmConnection_OverTheManagedBackend_ReportsTheLoss_ThenReconnects()
    {
        Skip.IfNot(Daemon, "no libvirtd socket on this machine");
        using var proxy = new SocketProxy();
        proxy.Start();
        using var conn = new KvmPS.Core.Services.KvmConnection($"test+unix:///default?socket={proxy.Path}", false, null, ManagedBackend.Instance).Open();
        Assert.Equal("Managed", conn.Backend);
        Assert.Equal("TEST", conn.Hypervisor);
        Assert.Contains(KvmPS.Core.Services.VmService.List(conn), v => v.Name == "test");

        proxy.Kill();
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<LibvirtException>(() => KvmPS.Core.Services.VmService.List(conn));
        Assert.Equal(LibvirtErrorCode.ConnectionLost, e.Code);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.False(conn.IsAlive);

        proxy.Start();
        Assert.Contains(KvmPS.Core.Services.VmService.List(conn), v => v.Name == "test");
        Assert.True(conn.IsAlive);
    }

    [Fact]
    public void SessionUri_IsRefusedClearly()
    {
        var e = Assert.Throws<LibvirtException>(() => Managed("qemu:///session"));
        Assert.Equal(LibvirtErrorCode.NoSupport, e.Code);
        Assert.Contains("session", e.Message);
    }

    [Fact]
    public void UnknownTransport_IsRefusedClearly()
    {
        var e = Assert.Throws<LibvirtException>(() => Managed("qemu+ext:///system?command=/bin/true"));
        Assert.Equal(LibvirtErrorCode.NoConnect, e.Code);
        Assert.Contains("'ext'", e.Message);
    }
}
