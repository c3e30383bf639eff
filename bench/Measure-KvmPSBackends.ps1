#Requires -Version 7.4
<#
.SYNOPSIS
    Issue 8's figures: the managed backend (KvmPS's own RPC client) against the native one (libvirt's C library)
    on the same daemon.
.DESCRIPTION
    Defines -VmCount shut-off VMs named kvmpsbench-<random>-<i> on qemu:///system (never started; undefined in a
    finally block by prefix), then reports, best of -Runs after a warm-up:
      - the XML of every VM: native (one call after another; each a lookup + GetXMLDesc) vs managed pipelined
        (up to 64 calls in flight on one connection) vs managed one call after another;
      - Get-KvmVm per VM on each backend.
    Prints a Markdown table and appends it to bench/results-backends.md.
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Measure-KvmPSBackends.ps1 -VmCount 300
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 5000)] [int] $VmCount = 300,
    [ValidateRange(3, 50)] [int] $Runs = 7,
    [string] $Uri = 'qemu:///system',
    [string] $ModulePath = ([IO.Path]::Combine($PSScriptRoot, '..', 'out', 'KvmPS', 'KvmPS.psd1')),
    [string] $ResultPath = ([IO.Path]::Combine($PSScriptRoot, 'results-backends.md'))
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

$options = [KvmPS.Core.Backend.LibvirtOpenOptions]::new()
$native = [KvmPS.Core.Native.NativeBackend]::Instance.Open($Uri, $options)
$managed = [KvmPS.Core.Managed.ManagedBackend]::Instance.Open($Uri, $options)
$prefix = 'kvmpsbench-{0:x8}' -f (Get-Random -Minimum 0 -Maximum ([int]::MaxValue))
$rows = [Collections.Generic.List[object]]::new()
try {
    $sw = [Diagnostics.Stopwatch]::StartNew()
    for ($i = 0; $i -lt $VmCount; $i++) {
        $cfg = [KvmPS.Core.Xml.DomainConfig]::new()
        $cfg.Name = "$prefix-$i"; $cfg.DomainType = 'qemu'; $cfg.MaxMemoryKiB = 16384; $cfg.MemoryKiB = 16384
        $cfg.CpuCount = 1; $cfg.MaxCpuCount = 1
        $null = $native.DefineDomain([KvmPS.Core.Xml.DomainXml]::Build($cfg), 0)
    }
    Write-Host ("defined {0} VMs in {1:0} ms" -f $VmCount, $sw.Elapsed.TotalMilliseconds) -ForegroundColor DarkGray

    $refs = [Collections.Generic.List[KvmPS.Core.Backend.DomainRef]]::new()
    foreach ($d in $native.ListAllDomains(0)) { if ($d.Name.StartsWith("$prefix-")) { $refs.Add($d) } }
    $n = $refs.Count

    $tNative = Measure-Best { $native.GetDomainXmls($refs, 'None') }
    $tPiped = Measure-Best { $managed.GetDomainXmls($refs, 'None') }
    $tManagedSeq = Measure-Best { foreach ($r in $refs) { $managed.GetDomainXml($r, 'None') } }
    $same = ($native.GetDomainXmls($refs, 'None') -join "`n") -eq ($managed.GetDomainXmls($refs, 'None') -join "`n")

    $cNative = Connect-KvmHost $Uri -Backend Native -NotDefault
    $cManaged = Connect-KvmHost $Uri -Backend Managed -NotDefault
    $all = @(Get-KvmVm -Connection $cNative).Count
    $gNative = Measure-Best { Get-KvmVm -Connection $cNative }
    $gManaged = Measure-Best { Get-KvmVm -Connection $cManaged }

    $us = { param($ms, $count) [math]::Round(1000 * $ms / $count, 1) }
    $rows.Add([pscustomobject]@{ Metric = "XML of $n VMs, native, sequential (µs/VM)"; Measured = & $us $tNative.BestMs $n; Target = '-' })
    $rows.Add([pscustomobject]@{ Metric = "XML of $n VMs, managed, pipelined (µs/VM)"; Measured = & $us $tPiped.BestMs $n; Target = '-' })
    $rows.Add([pscustomobject]@{ Metric = "XML of $n VMs, managed, sequential (µs/VM)"; Measured = & $us $tManagedSeq.BestMs $n; Target = '-' })
    $speedup = [math]::Round($tNative.BestMs / $tPiped.BestMs, 2)
    $rows.Add([pscustomobject]@{ Metric = 'XML: managed pipelined speed-up over native sequential'; Measured = "$speedup×"; Target = '≥ 2×'; Ok = $speedup -ge 2 })
    $rows.Add([pscustomobject]@{ Metric = 'XML: both backends return identical documents'; Measured = $same; Target = 'True'; Ok = $same })
    $rows.Add([pscustomobject]@{ Metric = "Get-KvmVm, $all VMs, native (µs/VM)"; Measured = & $us $gNative.BestMs $all; Target = '-' })
    $rows.Add([pscustomobject]@{ Metric = "Get-KvmVm, $all VMs, managed (µs/VM)"; Measured = & $us $gManaged.BestMs $all; Target = '-' })
    $ratio = [math]::Round($gManaged.BestMs / $gNative.BestMs, 2)
    $rows.Add([pscustomobject]@{ Metric = 'Get-KvmVm: managed / native time'; Measured = "$ratio×"; Target = '≤ 1× (no slower)'; Ok = $ratio -le 1.0 })
    Disconnect-KvmHost $cNative, $cManaged
}
finally {
    foreach ($d in $native.ListAllDomains(0)) {
        if ($d.Name.StartsWith("$prefix-")) { try { $native.UndefineDomain($d, 0) } catch { Write-Warning $_ } }
    }
    $left = @($native.ListAllDomains(0) | Where-Object { $_.Name.StartsWith("$prefix-") }).Count
    $managed.Dispose(); $native.Dispose()
}

$lines = @("## $(Get-Date -Format 'yyyy-MM-dd HH:mm:ss zzz') on $([Environment]::MachineName) ($([Environment]::ProcessorCount) CPUs), $Uri, best of $Runs", '',
    '| metric | measured | target | ok? |', '|---|---|---|---|')
foreach ($r in $rows) {
    $ok = if ($r.PSObject.Properties['Ok']) { if ($r.Ok) { 'yes' } else { '**NO**' } } else { '-' }
    $lines += "| $($r.Metric) | $($r.Measured) | $($r.Target) | $ok |"
}
$lines += "| VMs left behind after clean-up | $left | 0 | $(if ($left -eq 0) { 'yes' } else { '**NO**' }) |"
$lines += ''
$lines -join "`n" | Tee-Object -Variable table | Out-Host
Add-Content -Path $ResultPath -Value $table
