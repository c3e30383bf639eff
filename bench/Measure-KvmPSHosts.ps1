#Requires -Version 7.4
<#
.SYNOPSIS
    Issue 15's figures: reads across many hosts at once, and placement at scale.
.DESCRIPTION
    1. Ten hosts each about 50 ms round trip away: Start-DelayProxy.ps1 (a child process) listens on ten unix sockets
       in front of the local libvirtd's socket and holds every chunk 25 ms each way. Each socket is its own host to
       KvmPS (test+unix:///default?socket=...: the daemon's test driver). Times Get-KvmVm, Get-KvmHost, Measure-KvmVm
       and Find-KvmHost against one of them and against all ten (and all ten with -ThrottleLimit 1, the old one
       after the other), on both backends; best and median of -Runs after a warm-up. Target: ten <= 1.5 x one.
    2. Placement for 100 hosts x 1,000 VMs: (a) Core's PlacementService.Rank over made-up facts of 100 hosts with
       1,000 VMs each; (b) Find-KvmHost against 100 real test-driver hosts (node files written here, each with
       -VmsPerHost VMs), read and ranked, on both backends. Target: under 1 s.
    Prints Markdown and appends it to bench/results.md.
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Measure-KvmPSHosts.ps1
#>
[CmdletBinding()]
param(
    [ValidateRange(3, 50)] [int] $Runs = 5,
    [ValidateRange(2, 100)] [int] $HostCount = 10,
    [ValidateRange(0, 1000)] [int] $DelayMs = 25,
    [ValidateRange(1, 10000)] [int] $VmsPerHost = 1000,
    [string] $Target = '/run/libvirt/libvirt-sock',
    [string] $ModulePath = ([IO.Path]::Combine($PSScriptRoot, '..', 'out', 'KvmPS', 'KvmPS.psd1')),
    [string] $ResultPath = ([IO.Path]::Combine($PSScriptRoot, 'results.md'))
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

function Measure-Best([scriptblock] $Block) {
    & $Block | Out-Null   # warm-up
    $times = foreach ($i in 1..$Runs) {
        $sw = [Diagnostics.Stopwatch]::StartNew(); & $Block | Out-Null; $sw.Stop(); $sw.Elapsed.TotalMilliseconds
    }
    $sorted = @($times | Sort-Object)
    [pscustomobject]@{ BestMs = $sorted[0]; MedianMs = $sorted[[int][math]::Floor($sorted.Count / 2)] }
}

$work = Join-Path ([IO.Path]::GetTempPath()) "kvmps-bench-hosts-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
$null = New-Item -ItemType Directory -Path $work
$proxyDir = Join-Path $work 'proxy'
# The pwsh running this, also when it is the dotnet tool (dotnet <PSHOME>/pwsh.dll).
$pwsh = [Environment]::ProcessPath
[string[]] $pwshArgs = if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { @([IO.Path]::Combine($PSHOME, 'pwsh.dll')) } else { @() }
$proxy = Start-Process $pwsh -ArgumentList ($pwshArgs + @('-NoProfile', '-File', (Join-Path $PSScriptRoot 'Start-DelayProxy.ps1'), '-Directory', $proxyDir, '-Count', $HostCount, '-DelayMs', $DelayMs, '-Target', $Target)) -PassThru
$lines = [Collections.Generic.List[string]]::new()
try {
    $sw = [Diagnostics.Stopwatch]::StartNew()
    while (-not (Test-Path (Join-Path $proxyDir 'ready'))) {
        if ($sw.Elapsed.TotalSeconds -gt 60 -or $proxy.HasExited) { throw 'the delaying proxy did not start' }
        Start-Sleep -Milliseconds 100
    }

    $uris = 1..$HostCount | ForEach-Object { "test+unix:///default?socket=$proxyDir/host$_.sock" }
    $rows = [Collections.Generic.List[object]]::new()
    foreach ($backend in 'Native', 'Managed') {
        $conns = @($uris | ForEach-Object { Connect-KvmHost $_ -Backend $backend -NotDefault })
        $one = $conns[0]
        $libvirtVersion = $one.LibvirtVersion
        # One round trip through the proxy (one libvirt call on the backend itself), for the record.
        $raw = $(if ($backend -eq 'Native') { [KvmPS.Core.Native.NativeBackend]::Instance } else { [KvmPS.Core.Managed.ManagedBackend]::Instance }).Open($uris[0], [KvmPS.Core.Backend.LibvirtOpenOptions]::new())
        try { $rtt = Measure-Best { $raw.GetLibVersion() } } finally { $raw.Dispose() }
        $cases = [ordered]@{
            'Get-KvmVm'     = { param($c, $t) Get-KvmVm -Connection $c -ThrottleLimit $t }
            'Get-KvmHost'   = { param($c, $t) Get-KvmHost -Connection $c -ThrottleLimit $t }
            'Measure-KvmVm' = { param($c, $t) Measure-KvmVm -Connection $c -ThrottleLimit $t }
            'Find-KvmHost'  = { param($c, $t) Find-KvmHost -Connection $c -ThrottleLimit $t -CpuCount 1 -MemoryBytes 64MB -IncludeExcluded }
        }
        foreach ($name in $cases.Keys) {
            $run = $cases[$name]
            $count1 = @(& $run @($one) 16).Count
            $countN = @(& $run $conns 16).Count
            if ($countN -ne $HostCount * $count1) { throw "$name returned $countN objects for $HostCount hosts, $count1 for one" }
            $t1 = Measure-Best { & $run @($one) 16 }
            $tN = Measure-Best { & $run $conns 16 }
            $tSeq = Measure-Best { & $run $conns 1 }
            $rows.Add([pscustomobject]@{
                    Backend = $backend; Cmdlet = $name; RttMs = $rtt.BestMs; OneMs = $t1.MedianMs; TenMs = $tN.MedianMs; SeqMs = $tSeq.MedianMs
                    Ratio = $tN.MedianMs / $t1.MedianMs; Ok = ($tN.MedianMs / $t1.MedianMs) -le 1.5
                })
            Write-Host ("{0,-8} {1,-14} one {2,7:0} ms  {3} {4,7:0} ms  {3} one after the other {5,7:0} ms  ratio {6:0.00}" -f $backend, $name, $t1.MedianMs, $HostCount, $tN.MedianMs, $tSeq.MedianMs, ($tN.MedianMs / $t1.MedianMs)) -ForegroundColor DarkGray
        }
        $conns | Disconnect-KvmHost
    }

    # Placement at scale (a): Core only, made-up facts.
    $rnd = [Random]::new(15)
    $GiB = [uint64]1GB
    $hosts = [Collections.Generic.List[KvmPS.Core.KvmPlacementHost]]::new()
    foreach ($h in 1..100) {
        $vms = [Collections.Generic.List[ValueTuple[int, uint64, uint64, bool]]]::new()
        foreach ($v in 1..1000) { $vms.Add([ValueTuple[int, uint64, uint64, bool]]::new($rnd.Next(1, 5), [uint64]$rnd.Next(1, 5) * $GiB, 4 * $GiB, ($rnd.Next(2) -eq 0))) }
        $hosts.Add([KvmPS.Core.KvmPlacementHost]@{ Uri = "synthetic://h$h"; CpuCount = 256; MemoryBytes = 8192 * $GiB; Vms = $vms })
    }
    $request = [KvmPS.Core.KvmPlacementRequest]@{ CpuCount = 4; MemoryBytes = 8 * $GiB }
    $tCore = Measure-Best { [KvmPS.Core.Services.PlacementService]::Rank($hosts, $request) }

    # Placement at scale (b): Find-KvmHost against 100 test-driver hosts of $VmsPerHost VMs each (and of 10 each: 1,000 VMs
    # in all). Native opens test:/// in this process; Managed has the local libvirtd run the 100 test drivers, so there
    # one daemon on this machine answers for all 100 hosts.
    $place = [Collections.Generic.List[object]]::new()
    foreach ($perHost in @($VmsPerHost, 10) | Select-Object -Unique) {
        # Hosts of 512 CPUs and 513-612 GiB; VMs of 1 vCPU and 128-384 MiB: every host fits a 4 vCPU, 8 GiB VM; the
        # host with the most memory (node100) wins.
        $domains = foreach ($v in 1..$perHost) { "<domain type='test'><name>vm$v</name><memory unit='MiB'>$(128 * (1 + $v % 3))</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>" }
        $nodeFiles = foreach ($h in 1..100) {
            $path = Join-Path $work "node$perHost-$h.xml"
            Set-Content -Path $path -Value "<node><cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>256</cores><threads>2</threads><active>512</active></cpu><memory>$(1024 * 1024 * (512 + $h))</memory>$($domains -join '')<pool type='dir'><name>default</name><target><path>/var/lib/libvirt/images</path></target></pool></node>"
            "test://$path"
        }
        & chmod -R a+rX $work
        foreach ($backend in 'Native', 'Managed') {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $conns = @($nodeFiles | ForEach-Object { Connect-KvmHost $_ -Backend $backend -NotDefault })
            $open = $sw.Elapsed.TotalMilliseconds
            $vmTotal = (Get-KvmVm -Connection $conns | Measure-Object).Count
            $t = Measure-Best { Find-KvmHost -Connection $conns -CpuCount 4 -MemoryBytes 8GB -DiskSizeBytes 10GB }
            $best = Find-KvmHost -Connection $conns -CpuCount 4 -MemoryBytes 8GB -DiskSizeBytes 10GB | Select-Object -First 1
            if ($best.Uri -notlike "*node$perHost-100.xml") { throw "Find-KvmHost picked $($best.Uri), not the host with the most memory (node$perHost-100)" }
            $one = Measure-Best { [KvmPS.Core.Services.PlacementService]::Read($conns[0], [Threading.CancellationToken]::None) }
            $place.Add([pscustomobject]@{ Backend = $backend; PerHost = $perHost; Ms = $t.MedianMs; Vms = $vmTotal; OpenMs = $open; OneHostMs = $one.MedianMs })
            Write-Host ("{0,-8} Find-KvmHost over 100 test-driver hosts ({1} VMs): {2:0} ms; one host read {3:0.0} ms (connecting all: {4:0} ms)" -f $backend, $vmTotal, $t.MedianMs, $one.MedianMs, $open) -ForegroundColor DarkGray
            $conns | Disconnect-KvmHost
        }
    }

    $lines.Add("## Many hosts at once and placement (Measure-KvmPSHosts.ps1), $((Get-Date).ToUniversalTime().ToString('yyyy-MM-dd HH:mm')) UTC")
    $lines.Add('')
    $lines.Add("Machine: $([Environment]::ProcessorCount) CPUs, $([Runtime.InteropServices.RuntimeInformation]::OSDescription), pwsh $($PSVersionTable.PSVersion), libvirt $libvirtVersion. " +
        "$HostCount hosts = $HostCount sockets of a proxy (own process) in front of $Target holding each chunk $DelayMs ms each way (test+unix:///default through it); median of $Runs runs after a warm-up. " +
        "'one after the other' is the same ten with -ThrottleLimit 1 (how every read worked before).")
    $lines.Add('')
    $lines.Add("| backend | cmdlet | round trip (ms) | 1 host (ms) | $HostCount hosts (ms) | $HostCount one after the other (ms) | $HostCount / 1 | target <= 1.5 |")
    $lines.Add('|---|---|---:|---:|---:|---:|---:|---|')
    foreach ($r in $rows) {
        $lines.Add(('| {0} | {1} | {2:0} | {3:0} | {4:0} | {5:0} | {6:0.00} | {7} |' -f $r.Backend, $r.Cmdlet, $r.RttMs, $r.OneMs, $r.TenMs, $r.SeqMs, $r.Ratio, $(if ($r.Ok) { 'yes' } else { '**no**' })))
    }
    $lines.Add('')
    $lines.Add('| placement | hosts | VMs | median (ms) | target < 1000 ms |')
    $lines.Add('|---|---:|---:|---:|---|')
    $lines.Add(('| PlacementService.Rank (Core, made-up facts) | 100 | 100,000 | {0:0.0} | {1} |' -f $tCore.MedianMs, $(if ($tCore.MedianMs -lt 1000) { 'yes' } else { '**no**' })))
    foreach ($p in $place) {
        $where = if ($p.Backend -eq 'Native') { 'in this process' } else { 'all 100 in the one local libvirtd' }
        $lines.Add(('| Find-KvmHost, {0} backend, test drivers {1} (read + rank; one host read: {2:0.0} ms) | 100 | {3:N0} | {4:0} | {5} |' -f $p.Backend, $where, $p.OneHostMs, $p.Vms, $p.Ms, $(if ($p.Ms -lt 1000) { 'yes' } else { '**no**' })))
    }
    $lines.Add('')
    $text = $lines -join [Environment]::NewLine
    Write-Output $text
    Add-Content -Path $ResultPath -Value ([Environment]::NewLine + $text)
}
finally {
    Set-Content -Path (Join-Path $proxyDir 'stop') -Value 1 -ErrorAction SilentlyContinue
    if (-not $proxy.WaitForExit(5000)) { $proxy.Kill() }
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
