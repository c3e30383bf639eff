#Requires -Version 7.4
<#
.SYNOPSIS
    Soak test: memory, file descriptors and threads of one pwsh process over many mixed KvmPS operations.

.DESCRIPTION
    In THIS pwsh process, on test:///default (libvirt's in-process test driver: nothing outside the process is
    touched and everything vanishes with the process), the script creates -VmCount shut-off VMs with New-KvmVm
    and then runs -Operations cmdlet calls through one KvmConnection, in a fixed cycle of ten:

        0 Get-KvmVm -Name <vm>          5 Set-KvmVm <vm> -MemoryBytes (alternating 48 / 64 MiB)
        1 Get-KvmVm (all VMs)           6 Checkpoint-KvmVm <vm> -SnapshotName soak-<i> -Passthru
        2 Start-KvmVm <vm>              7 Remove-KvmSnapshot -VMName <vm> -Name soak-<i>
        3 Get-KvmVm -Name <vm>          8 Set-KvmVm <vm> -Description soak-<i>
          (asserts State = Running)     9 Get-KvmHost -SampleIntervalSec 0
        4 Stop-KvmVm <vm> -TurnOff

    <vm> moves to the next VM every cycle. Every operation is one cmdlet call and counts as one operation;
    any error stops the soak. At 0 (after setup and one uncounted warm-up cycle per VM) and at -Points evenly
    spaced points up to -Operations, after a full blocking GC, it records RSS (VmRSS), the managed heap
    (GC.GetTotalMemory(true)), open file descriptors (/proc/self/fd), threads (/proc/self/status) and the
    GC's pinned-object / finalization-pending counts.

    Verdict "flat" (second half of the run against the first): the highest RSS reading after the half-way point
    is < 10 % above the highest one up to it (single RSS readings swing by several % as the GC returns and
    re-takes memory), the managed heap after GC grows < 10 % (or < 1 MiB) from the half-way point to the end,
    open file descriptors do not grow at all, and threads grow by at most 2 (thread-pool workers come and go).

.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Measure-KvmPSSoak.ps1                     # 100,000 operations

.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Measure-KvmPSSoak.ps1 -Operations 5000    # quick
#>
[CmdletBinding()]
param(
    # Counted cmdlet calls (after the warm-up).
    [ValidateRange(10, 100000000)]
    [int] $Operations = 100000,

    # Test VMs created for the start/stop/set/snapshot operations.
    [ValidateRange(1, 1000)]
    [int] $VmCount = 8,

    # Measurement points after 0 (evenly spaced; the half-way point and the end are always included).
    [ValidateRange(2, 1000)]
    [int] $Points = 10,

    # The built module manifest (build.ps1 -Task Build writes it).
    [string] $ModulePath = (Join-Path $PSScriptRoot '..' 'out' 'KvmPS' 'KvmPS.psd1'),

    # Writes the Markdown report there too (default: console only).
    [string] $ResultPath,

    # Writes a machine-readable summary there (used by Measure-KvmPS.ps1).
    [string] $JsonPath
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ModulePath = [IO.Path]::GetFullPath($ModulePath)
if (-not (Test-Path -LiteralPath $ModulePath)) {
    throw "The module is not built: $ModulePath is missing. Run: dotnet pwsh -NoProfile -File build.ps1 -Task Build"
}

function Get-Snapshot {
    param([Parameter(Mandatory)] [string] $Label, [long] $Ops = 0, [double] $Seconds = 0)
    [GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
    $heap = [GC]::GetTotalMemory($true)
    $info = [GC]::GetGCMemoryInfo([GCKind]::Any)
    $status = [IO.File]::ReadAllText('/proc/self/status')
    [pscustomobject]@{
        Label              = $Label
        Ops                = $Ops
        Seconds            = $Seconds
        RssMiB             = if ($status -match '(?m)^VmRSS:\s+(\d+)\s+kB') { [long]$Matches[1] / 1024.0 } else { [double]::NaN }
        HeapMiB            = $heap / 1MB
        Fds                = [IO.Directory]::GetFileSystemEntries('/proc/self/fd').Length
        Threads            = if ($status -match '(?m)^Threads:\s+(\d+)') { [int]$Matches[1] } else { -1 }
        PinnedObjects      = $info.PinnedObjectsCount
        FinalizationPending = $info.FinalizationPendingCount
    }
}

function Format-Num([double] $Value, [string] $Format = '0.0') {
    if ([double]::IsNaN($Value)) { 'n/a' } else { $Value.ToString($Format, [Globalization.CultureInfo]::InvariantCulture) }
}

$start = Get-Snapshot 'start (before Import-Module)'
Import-Module $ModulePath -Force
$imported = Get-Snapshot 'after Import-Module'

$c = Connect-KvmHost -Uri 'test:///default' -NotDefault
$vmNames = [string[]]::new($VmCount)
for ($j = 0; $j -lt $VmCount; $j++) {
    $vmNames[$j] = "soak-vm-$j"
    $null = New-KvmVm -Name $vmNames[$j] -MemoryBytes 64MB -NoNetwork -Connection $c
}

$kinds = 'Get-KvmVm -Name', 'Get-KvmVm (all)', 'Start-KvmVm', 'Get-KvmVm -Name (running)', 'Stop-KvmVm -TurnOff',
'Set-KvmVm -MemoryBytes', 'Checkpoint-KvmVm', 'Remove-KvmSnapshot', 'Set-KvmVm -Description', 'Get-KvmHost -SampleIntervalSec 0'
$kindTicks = [long[]]::new(10)
$kindCount = [long[]]::new(10)
$expectedCount = $VmCount + 1   # the test driver's own VM 'test' is there too

# One operation; $i is the global operation index (negative during warm-up).
function Invoke-SoakOperation([long] $i) {
    $a = [Math]::Abs($i)
    $k = [int]($a % 10)
    $cycle = [long][Math]::Floor($a / 10)
    $vm = $vmNames[[int]($cycle % $VmCount)]
    $t0 = [Diagnostics.Stopwatch]::GetTimestamp()
    if ($k -eq 0) { $null = Get-KvmVm -Name $vm -Connection $c }
    elseif ($k -eq 1) {
        $n = @(Get-KvmVm -Connection $c).Count
        if ($n -ne $expectedCount) { throw "Get-KvmVm returned $n VMs, expected $expectedCount." }
    }
    elseif ($k -eq 2) { Start-KvmVm -Name $vm -Connection $c }
    elseif ($k -eq 3) {
        $state = (Get-KvmVm -Name $vm -Connection $c).State
        if ("$state" -ne 'Running') { throw "$vm is $state after Start-KvmVm." }
    }
    elseif ($k -eq 4) { Stop-KvmVm -Name $vm -TurnOff -Connection $c -Confirm:$false }
    elseif ($k -eq 5) { Set-KvmVm -Name $vm -MemoryBytes ($(if ($cycle % 2) { 48MB } else { 64MB })) -Connection $c -Confirm:$false }
    elseif ($k -eq 6) {
        $s = Checkpoint-KvmVm -Name $vm -SnapshotName "soak-$a" -Connection $c -Passthru
        if (-not $s) { throw "Checkpoint-KvmVm $vm returned no snapshot." }
    }
    elseif ($k -eq 7) { Remove-KvmSnapshot -VMName $vm -Name "soak-$($a - 1)" -Connection $c -Confirm:$false }
    elseif ($k -eq 8) { Set-KvmVm -Name $vm -Description "soak-$a" -Connection $c -Confirm:$false }
    else { $null = Get-KvmHost -Connection $c -SampleIntervalSec 0 }   # no 250 ms host CPU sample
    $kindTicks[$k] += [Diagnostics.Stopwatch]::GetTimestamp() - $t0
    $kindCount[$k]++
}

# Warm-up: one cycle per VM (JIT, caches); not counted.
for ($i = 1; $i -le 10 * $VmCount; $i++) { Invoke-SoakOperation (-$i) }
[Array]::Clear($kindTicks); [Array]::Clear($kindCount)

$snapshots = [Collections.Generic.List[object]]::new()
$snapshots.Add($start)
$snapshots.Add($imported)
$snapshots.Add((Get-Snapshot '0 (after setup and warm-up)'))
$marks = [Collections.Generic.SortedSet[long]]::new()
for ($p = 1; $p -le $Points; $p++) { $null = $marks.Add([long][Math]::Round($Operations * $p / $Points)) }
$half = [long][Math]::Round($Operations / 2)
$null = $marks.Add($half)
$null = $marks.Add($Operations)

Write-Host ("soak: {0:N0} operations on test:///default, {1} VMs" -f $Operations, $VmCount)
$opTicks = 0L
$done = 0L
foreach ($mark in $marks) {
    $t0 = [Diagnostics.Stopwatch]::GetTimestamp()
    try {
        for (; $done -lt $mark; $done++) { Invoke-SoakOperation $done }
    }
    catch {
        throw "Operation $done ($($kinds[$done % 10])) failed: $($_.Exception.Message)"
    }
    $opTicks += [Diagnostics.Stopwatch]::GetTimestamp() - $t0
    $snap = Get-Snapshot ('{0:N0}' -f $done) $done ($opTicks / [Diagnostics.Stopwatch]::Frequency)
    $snapshots.Add($snap)
    Write-Host ("  {0,12:N0} ops  {1,7:0.0} s  RSS {2,6:0.0} MiB  heap {3,6:0.0} MiB  fds {4,4}  threads {5,3}" -f `
            $done, $snap.Seconds, $snap.RssMiB, $snap.HeapMiB, $snap.Fds, $snap.Threads)
}

# Final state: nothing left over from the loop.
$left = 0
foreach ($vm in $vmNames) { $left += @(Get-KvmSnapshot -VMName $vm -Connection $c).Count }
$running = @(Get-KvmVm -Connection $c | Where-Object { $_.Name -like 'soak-vm-*' -and "$($_.State)" -ne 'ShutOff' }).Count
Disconnect-KvmHost -Connection $c

# Verdict between the half-way point and the end.
$mid = $snapshots | Where-Object Ops -eq $half | Select-Object -Last 1
$end = $snapshots[-1]
$rssGrowth = ($end.RssMiB - $mid.RssMiB) / $mid.RssMiB
# RSS swings by several % from one reading to the next (the GC returns and re-takes memory), so the verdict
# compares peaks: the highest reading after the half-way point against the highest one up to it.
$counted = @($snapshots | Where-Object Ops -gt 0)
$rssPeakFirst = ($counted | Where-Object Ops -le $half | Measure-Object RssMiB -Maximum).Maximum
$rssPeakSecond = ($counted | Where-Object Ops -gt $half | Measure-Object RssMiB -Maximum).Maximum
$rssPeakGrowth = ($rssPeakSecond - $rssPeakFirst) / $rssPeakFirst
$heapGrowthMiB = $end.HeapMiB - $mid.HeapMiB
$heapGrowth = $heapGrowthMiB / $mid.HeapMiB
$checks = [ordered]@{
    rss     = $rssPeakGrowth -lt 0.10
    heap    = ($heapGrowth -lt 0.10) -or ($heapGrowthMiB -lt 1)
    fds     = $end.Fds -le $mid.Fds
    threads = ($end.Threads - $mid.Threads) -le 2
}
$flat = -not ($checks.Values -contains $false)
$seconds = $opTicks / [Diagnostics.Stopwatch]::Frequency
$opsPerSec = $Operations / $seconds

$md = [Text.StringBuilder]::new()
$null = $md.AppendLine('| point | ops | time (s) | RSS (MiB) | managed heap after GC (MiB) | open fds | threads | pinned objects |')
$null = $md.AppendLine('|---|---:|---:|---:|---:|---:|---:|---:|')
foreach ($s in $snapshots) {
    $null = $md.AppendLine(('| {0} | {1:N0} | {2} | {3} | {4} | {5} | {6} | {7} |' -f $s.Label, $s.Ops, (Format-Num $s.Seconds), (Format-Num $s.RssMiB), (Format-Num $s.HeapMiB 0.00), $s.Fds, $s.Threads, $s.PinnedObjects))
}
$null = $md.AppendLine()
$null = $md.AppendLine('| operation | calls | mean (µs) |')
$null = $md.AppendLine('|---|---:|---:|')
for ($k = 0; $k -lt 10; $k++) {
    $mean = if ($kindCount[$k]) { 1e6 * $kindTicks[$k] / [Diagnostics.Stopwatch]::Frequency / $kindCount[$k] } else { [double]::NaN }
    $null = $md.AppendLine(('| {0} | {1:N0} | {2} |' -f $kinds[$k], $kindCount[$k], (Format-Num $mean 0)))
}
$null = $md.AppendLine()
$verdictText = ('RSS {0} → {1} MiB ({2:+0.0;-0.0} %; peak {3} → {4} MiB, {5:+0.0;-0.0} %), heap after GC {6} → {7} MiB, ' +
    'fds {8} → {9}, threads {10} → {11} between {12:N0} and {13:N0} ops') -f `
(Format-Num $mid.RssMiB), (Format-Num $end.RssMiB), (100 * $rssGrowth), (Format-Num $rssPeakFirst), (Format-Num $rssPeakSecond), (100 * $rssPeakGrowth),
(Format-Num $mid.HeapMiB 0.00), (Format-Num $end.HeapMiB 0.00), $mid.Fds, $end.Fds, $mid.Threads, $end.Threads, $mid.Ops, $end.Ops
$null = $md.AppendLine(("Flat? **{0}** — {1}. {2:N0} ops/s ({3:N0} operations in {4} s, measurement GCs excluded); snapshots left {5}, VMs left running {6}." -f `
        $(if ($flat) { 'yes' } else { 'NO' }), $verdictText, $opsPerSec, $Operations, (Format-Num $seconds), $left, $running))

Write-Host ''
Write-Host $md.ToString()

if ($ResultPath) {
    $doc = "# KvmPS soak`n`nProduced by ``bench/Measure-KvmPSSoak.ps1 -Operations $Operations -VmCount $VmCount``; see ``bench/README.md``.`n`n" + $md.ToString()
    Set-Content -LiteralPath $ResultPath -Value $doc -Encoding utf8NoBOM
    Write-Host "Wrote $ResultPath"
}
if ($JsonPath) {
    [pscustomobject]@{
        Operations    = $Operations
        VmCount       = $VmCount
        Seconds       = $seconds
        OpsPerSecond  = $opsPerSec
        Flat          = $flat
        Checks        = $checks
        RssPeakGrowth = $rssPeakGrowth
        Summary       = 'RSS peak {0:+0.0;-0.0} %, heap {1:+0.00;-0.00} MiB, fds {2:+0;-0}, threads {3:+0;-0}' -f (100 * $rssPeakGrowth), $heapGrowthMiB, ($end.Fds - $mid.Fds), ($end.Threads - $mid.Threads)
        Verdict       = $verdictText
        SnapshotsLeft = $left
        VmsLeftRunning = $running
        Snapshots     = $snapshots
        Markdown      = $md.ToString()
    } | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $JsonPath -Encoding utf8NoBOM
}
if (-not $flat -or $left -or $running) { exit 1 }
