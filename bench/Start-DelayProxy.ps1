#Requires -Version 7.4
<#
.SYNOPSIS
    A unix-socket proxy that puts hosts "far away": every chunk forwarded to libvirtd, and every chunk back, waits
    -DelayMs before it goes on (so a round trip costs 2 x DelayMs), without limiting how much is in flight.
.DESCRIPTION
    Listens on <Directory>/host<N>.sock for N = 1..Count, each forwarding to -Target (one libvirtd socket), until the
    process is killed or <Directory>/stop exists. Writes <Directory>/ready once it listens. Run it as its own process
    (Measure-KvmPSHosts.ps1 does) so its threads do not compete with the command being measured.
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Start-DelayProxy.ps1 -Directory /tmp/far -Count 10 -DelayMs 25
    # then: Get-KvmVm -Connection 'test+unix:///default?socket=/tmp/far/host1.sock'
#>
param(
    [Parameter(Mandatory)] [string] $Directory,
    [ValidateRange(1, 1000)] [int] $Count = 10,
    [ValidateRange(0, 10000)] [int] $DelayMs = 25,
    [string] $Target = '/run/libvirt/libvirt-sock'
)
$ErrorActionPreference = 'Stop'
Add-Type -TypeDefinition @'
using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

public static class KvmPSDelayProxy
{
    public static void Listen(string path, string target, int delayMs)
    {
        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(64);
        new Thread(() =>
        {
            while (true)
            {
                Socket client = listener.Accept();
                var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                server.Connect(new UnixDomainSocketEndPoint(target));
                Pump(client, server, delayMs);
                Pump(server, client, delayMs);
            }
        }) { IsBackground = true }.Start();
    }

    // Reads chunks as they come and writes each one delayMs after it was read: latency, not a bandwidth limit.
    private static void Pump(Socket from, Socket to, int delayMs)
    {
        var queue = new BlockingCollection<(long Due, byte[] Data)>();
        new Thread(() =>
        {
            var buffer = new byte[65536];
            try
            {
                int n;
                while ((n = from.Receive(buffer)) > 0)
                {
                    queue.Add((Stopwatch.GetTimestamp() + (delayMs * Stopwatch.Frequency / 1000), buffer.AsSpan(0, n).ToArray()));
                }
            }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
            queue.CompleteAdding();
        }) { IsBackground = true }.Start();
        new Thread(() =>
        {
            try
            {
                foreach ((long due, byte[] data) in queue.GetConsumingEnumerable())
                {
                    long wait = (due - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
                    if (wait > 0)
                    {
                        Thread.Sleep((int)wait);
                    }

                    to.Send(data);
                }
            }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
            try { to.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
        }) { IsBackground = true }.Start();
    }
}
'@
$null = New-Item -ItemType Directory -Force -Path $Directory
foreach ($i in 1..$Count) { [KvmPSDelayProxy]::Listen((Join-Path $Directory "host$i.sock"), $Target, $DelayMs) }
Set-Content -Path (Join-Path $Directory 'ready') -Value $PID
while (-not (Test-Path (Join-Path $Directory 'stop'))) { Start-Sleep -Milliseconds 200 }
