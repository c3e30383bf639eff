#Requires -Version 7.4
<#
.SYNOPSIS
    Measures KvmPS's listing speed against the libvirt C API, virsh and its own targets.

.DESCRIPTION
    In one pwsh process:
      * test:///default - defines -TestDriverVmCount VMs through KvmPS.Core in this process (the test driver is
        in-process: virsh, another process, cannot see them), times Get-KvmVm, and compares it with bench/capi,
        which defines the same number of VMs in its own process and times the bare C calls.
      * qemu:///system  - for each count in -SystemVmCount (ascending; default 300 then 1,000) defines the
        shut-off VMs missing up to that count (16 MiB, no disks, no network interfaces) named
        kvmpsbench-<random>-<i>, times Get-KvmVm, bench/capi, virsh list and virsh dominfo, and ALWAYS undefines
        the VMs it created (only names with its own random prefix) in a finally block.
      * Import-Module time over a bare pwsh start (child processes).
      * RSS / managed heap / open file descriptors before and after repeated listings.
      * The soak: bench/Measure-KvmPSSoak.ps1 in a child pwsh (-SoakOperations mixed cmdlet calls on
        test:///default; RSS, heap, fds and threads at 0 ... the end, and a "flat?" verdict).
    Prints a Markdown table (metric | measured | target | ok?) and writes it to bench/results.md.

.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Measure-KvmPS.ps1

.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Measure-KvmPS.ps1 -TestDriverVmCount 1000 -SystemVmCount 30 -SoakOperations 5000
#>
[CmdletBinding()]
param(
    # VMs defined on test:///default (in this process and in bench/capi).
    [ValidateRange(1, 1000000)]
    [int] $TestDriverVmCount = 10000,

    # Shut-off VMs defined (and removed again) on qemu:///system; one set of figures per count. The counts are
    # reached one after the other (ascending): the VMs of a smaller count stay and only the missing ones are added.
    # Accepts 300,1000 as well as '300,1000' (what pwsh -File passes: one string, which an [int[]] parameter would
    # read as 3001000 with the comma taken for a thousands separator).
    [ValidatePattern('^\s*\d+(\s*,\s*\d+)*\s*$')]
    [string[]] $SystemVmCount = @('300', '1000'),

    # Skips the qemu:///system part.
    [switch] $SkipSystem,

    # Timed runs per figure (after one warm-up); best and median are reported.
    [ValidateRange(5, 1000)]
    [int] $Runs = 5,

    # Child processes per variant for the Import-Module figure (after one discarded warm-up).
    [ValidateRange(7, 1000)]
    [int] $ImportRuns = 9,

    # Listings of the test-driver VMs between the two memory / file-descriptor snapshots.
    [ValidateRange(1, 10000)]
    [int] $MemoryRepetitions = 20,

    # VMs sampled for the virsh dominfo figure (extrapolated to all VMs).
    [ValidateRange(1, 1000)]
    [int] $DominfoSample = 20,

    # Operations of the soak (bench/Measure-KvmPSSoak.ps1, run as a child pwsh); 0 skips it.
    [ValidateRange(0, 100000000)]
    [int] $SoakOperations = 100000,

    # The built module manifest (build.ps1 -Task Build writes it).
    [string] $ModulePath = (Join-Path $PSScriptRoot '..' 'out' 'KvmPS' 'KvmPS.psd1'),

    # Where the Markdown report is written.
    [string] $ResultPath = (Join-Path $PSScriptRoot 'results.md')
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '..')).Path
$systemCounts = [int[]]@($SystemVmCount -split ',' | ForEach-Object { [int]::Parse($_.Trim(), [Globalization.CultureInfo]::InvariantCulture) } | Sort-Object -Unique)
if (@($systemCounts | Where-Object { $_ -lt 1 -or $_ -gt 5000 }).Count) { throw "-SystemVmCount: every count must be between 1 and 5000 (got $($systemCounts -join ', '))." }
$CapiSource = Join-Path $PSScriptRoot 'capi.c'
$CapiExe = Join-Path $PSScriptRoot 'capi'
$ModulePath = [IO.Path]::GetFullPath($ModulePath)

# ---------------------------------------------------------------------------------------------------------------
# helpers

$script:Rows = [Collections.Generic.List[object]]::new()
$script:Notes = [Collections.Generic.List[string]]::new()
$script:Breakdown = [Collections.Generic.List[object]]::new()
$script:CapiLines = [Collections.Generic.List[string]]::new()

function Add-Row {
    param(
        [Parameter(Mandatory)] [string] $Metric,
        [Parameter(Mandatory)] [AllowEmptyString()] [string] $Measured,
        [string] $Target = '-',
        [Nullable[bool]] $Ok = $null
    )
    $okText = if ($null -eq $Ok) { '-' } elseif ($Ok) { 'yes' } else { '**NO**' }
    $script:Rows.Add([pscustomobject]@{ Metric = $Metric; Measured = $Measured; Target = $Target; 'ok?' = $okText })
    Write-Host ("  {0,-60} {1,-26} {2,-10} {3}" -f $Metric, $Measured, $Target, $okText)
}

function Add-Note([string] $Text) {
    $script:Notes.Add($Text)
    Write-Host "  note: $Text" -ForegroundColor DarkGray
}

function Get-Median([double[]] $Values) {
    $s = [double[]]($Values | Sort-Object)
    $m = [int][Math]::Floor($s.Count / 2)
    if ($s.Count % 2) { $s[$m] } else { ($s[$m - 1] + $s[$m]) / 2 }
}

function Format-Num([double] $Value, [string] $Format = '0.00') {
    if ([double]::IsNaN($Value)) { 'n/a' } else { $Value.ToString($Format, [Globalization.CultureInfo]::InvariantCulture) }
}

# Times $Action: one warm-up, then $Count timed runs. Returns best/median/all in milliseconds.
function Measure-Runs {
    param([Parameter(Mandatory)] [scriptblock] $Action, [int] $Count = $Runs, [switch] $NoWarmUp)
    if (-not $NoWarmUp) { $null = & $Action }
    $times = [Collections.Generic.List[double]]::new()
    for ($i = 0; $i -lt $Count; $i++) {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $null = & $Action
        $sw.Stop()
        $times.Add($sw.Elapsed.TotalMilliseconds)
    }
    [pscustomobject]@{
        BestMs   = ($times | Measure-Object -Minimum).Minimum
        MedianMs = Get-Median $times.ToArray()
        AllMs    = $times.ToArray()
    }
}

function Get-ProcessSnapshot {
    $status = Get-Content -LiteralPath "/proc/$PID/status" -Raw
    $rssKiB = if ($status -match '(?m)^VmRSS:\s+(\d+)\s+kB') { [long]$Matches[1] } else { -1 }
    [pscustomobject]@{
        RssMiB     = $rssKiB / 1024
        HeapMiB    = [GC]::GetTotalMemory($true) / 1MB
        Fds        = (Get-ChildItem -LiteralPath "/proc/$PID/fd" -Force | Measure-Object).Count
        Threads    = if ($status -match '(?m)^Threads:\s+(\d+)') { [int]$Matches[1] } else { -1 }
    }
}

# Runs bench/capi and returns its figures keyed by name (us_per_vm, n).
function Invoke-Capi {
    param([Parameter(Mandatory)] [string] $Uri, [int] $Count = 0)
    $capiArgs = @($Uri, $Count, $Runs)
    Write-Host "  running: bench/capi $($capiArgs -join ' ')" -ForegroundColor DarkGray
    $out = & $CapiExe @capiArgs 2>&1
    if ($LASTEXITCODE -ne 0) {
        throw "bench/capi $Uri failed (exit $LASTEXITCODE): $($out -join [Environment]::NewLine)"
    }
    $result = @{}
    foreach ($line in $out) {
        $text = "$line"
        $script:CapiLines.Add("[$Uri] $text")
        if ($text -match '^capi (\S+) us_per_vm=(\S+) n=(\d+)') {
            $result[$Matches[1]] = [pscustomobject]@{
                UsPerVm = [double]::Parse($Matches[2], [Globalization.CultureInfo]::InvariantCulture)
                Count   = [int]$Matches[3]
            }
        }
    }
    foreach ($k in 'list_name_uuid_info', 'all_domain_stats', 'kvmps_equivalent') {
        if (-not $result.ContainsKey($k)) { throw "bench/capi printed no '$k' line: $($out -join ' | ')" }
    }
    $result
}

# Median wall time of an external command (ms), after one discarded run.
function Measure-External {
    param([Parameter(Mandatory)] [string] $FilePath, [string[]] $ArgumentList = @(), [int] $Count = $Runs)
    $m = Measure-Runs -Count $Count -Action {
        $null = & $FilePath @ArgumentList 2>&1
        if ($LASTEXITCODE -ne 0) { throw "$FilePath $($ArgumentList -join ' ') failed with exit code $LASTEXITCODE" }
    }.GetNewClosure()
    $m
}

# ---------------------------------------------------------------------------------------------------------------
# prerequisites: bench/capi, the module

Write-Host '== prerequisites' -ForegroundColor Cyan
if (-not (Test-Path -LiteralPath $CapiExe) -or
    (Get-Item -LiteralPath $CapiSource).LastWriteTimeUtc -gt (Get-Item -LiteralPath $CapiExe).LastWriteTimeUtc) {
    if (-not (Get-Command gcc -ErrorAction Ignore)) { throw 'gcc is needed to build bench/capi (apt-get install gcc libvirt-dev).' }
    Write-Host "  compiling $CapiSource" -ForegroundColor DarkGray
    & gcc -O2 -std=c11 -Wall -Wextra -o $CapiExe $CapiSource -lvirt
    if ($LASTEXITCODE -ne 0) { throw "gcc failed to build bench/capi (exit $LASTEXITCODE); is libvirt-dev installed?" }
}

if (-not (Test-Path -LiteralPath $ModulePath)) {
    throw "The module is not built: $ModulePath is missing. Run: dotnet pwsh -NoProfile -File build.ps1 -Task Build"
}

$importSw = [Diagnostics.Stopwatch]::StartNew()
Import-Module $ModulePath -Force
$importSw.Stop()
$afterImport = Get-ProcessSnapshot
Write-Host ("  Import-Module in this process: {0:0.0} ms" -f $importSw.Elapsed.TotalMilliseconds) -ForegroundColor DarkGray

$virsh = (Get-Command virsh -CommandType Application -ErrorAction Ignore | Select-Object -First 1)?.Source

# A C# probe timing VmService.List's stages without PowerShell in the way.
$coreAssembly = [KvmPS.Core.Services.KvmConnection].Assembly.Location
Add-Type -ReferencedAssemblies $coreAssembly, 'System.Collections', 'System.Runtime' -IgnoreWarnings -WarningAction SilentlyContinue -TypeDefinition @'
using System;
using System.Collections.Generic;
using System.Diagnostics;
using KvmPS.Core.Backend;
using KvmPS.Core.Services;

public static class KvmPSBenchProbe
{
    private const DomainStatsTypes ListStats = DomainStatsTypes.State | DomainStatsTypes.CpuTotal | DomainStatsTypes.Balloon | DomainStatsTypes.Vcpu;

    /// <summary>Best-of-reps milliseconds of each stage of VmService.List (after one warm-up).</summary>
    public static Dictionary<string, double> Stages(KvmConnection connection, int reps)
    {
        var best = new Dictionary<string, double>();
        for (int r = 0; r <= reps; r++)
        {
            var sw = Stopwatch.StartNew();
            IReadOnlyList<DomainStatsRecord> stats = connection.Invoke(c => c.GetAllDomainStats(ListStats, ListDomainsFlags.None));
            double tStats = sw.Elapsed.TotalMilliseconds;

            sw.Restart();
            connection.Invoke(c =>
            {
                c.ListAllDomains(ListDomainsFlags.Autostart);
                c.ListAllDomains(ListDomainsFlags.Transient);
                c.ListAllDomains(ListDomainsFlags.ManagedSave);
                return 0;
            });
            double tLists = sw.Elapsed.TotalMilliseconds;

            sw.Restart();
            int fallbacks = connection.Invoke(c =>
            {
                int n = 0;
                foreach (DomainStatsRecord s in stats)
                {
                    if (s.GetUInt64("balloon.maximum") is null || s.GetUInt64("balloon.current") is null || s.GetUInt64("vcpu.current") is null)
                    {
                        c.GetDomainInfo(s.Domain);
                        n++;
                    }
                }

                return n;
            });
            double tInfo = sw.Elapsed.TotalMilliseconds;

            long allocated = GC.GetAllocatedBytesForCurrentThread();
            int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
            sw.Restart();
            IReadOnlyList<KvmPS.Core.KvmVm> vms = VmService.List(connection);
            double tList = sw.Elapsed.TotalMilliseconds;
            allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

            if (r == 0)
            {
                continue;
            }

            Take(best, "GetAllDomainStats", tStats);
            Take(best, "3x filtered ListAllDomains", tLists);
            Take(best, "per-VM GetDomainInfo fallback", tInfo);
            Take(best, "VmService.List (total)", tList);
            Take(best, "allocated bytes", allocated);
            best["gen0"] = GC.CollectionCount(0) - gen0;
            best["gen1"] = GC.CollectionCount(1) - gen1;
            best["gen2"] = GC.CollectionCount(2) - gen2;
            best["records"] = stats.Count;
            best["fallbacks"] = fallbacks;
            best["vms"] = vms.Count;
        }

        return best;
    }

    private static void Take(Dictionary<string, double> best, string key, double ms)
    {
        if (!best.TryGetValue(key, out double b) || ms < b)
        {
            best[key] = ms;
        }
    }
}
'@

# ---------------------------------------------------------------------------------------------------------------
# machine info

$libvirtVersion = try { (& pkg-config --modversion libvirt 2>$null) } catch { $null }
if (-not $libvirtVersion -and $virsh) { $libvirtVersion = (& $virsh --version 2>$null) }
$cpuModel = (Select-String -LiteralPath /proc/cpuinfo -Pattern '^model name\s*:\s*(.+)$' -List)?.Matches[0].Groups[1].Value
$osName = if ((Get-Content /etc/os-release -Raw -ErrorAction Ignore) -match '(?m)^PRETTY_NAME="?([^"\n]+)') { $Matches[1] } else { 'Linux' }
$machine = [ordered]@{
    Date       = (Get-Date).ToString('yyyy-MM-dd HH:mm:ss zzz')
    Host       = [Environment]::MachineName
    OS         = "$osName, kernel $([Environment]::OSVersion.Version)"
    CPU        = "$cpuModel"
    nproc      = [Environment]::ProcessorCount
    LoadAvg    = "$((Get-Content /proc/loadavg -Raw).Trim()) (at start; other processes add noise)"
    Memory     = if ((Get-Content /proc/meminfo -Raw) -match 'MemTotal:\s+(\d+)') { '{0:0.0} GiB' -f ([long]$Matches[1] / 1MB) } else { '?' }
    libvirt    = "$libvirtVersion"
    PowerShell = "$($PSVersionTable.PSVersion) on .NET $([Environment]::Version)"
    Parameters = "TestDriverVmCount=$TestDriverVmCount SystemVmCount=$($systemCounts -join ',') Runs=$Runs ImportRuns=$ImportRuns MemoryRepetitions=$MemoryRepetitions SoakOperations=$SoakOperations"
}
$machine.GetEnumerator() | ForEach-Object { Write-Host ("  {0,-10} {1}" -f $_.Key, $_.Value) -ForegroundColor DarkGray }

Write-Host ''
Write-Host ("  {0,-60} {1,-26} {2,-10} {3}" -f 'metric', 'measured', 'target', 'ok?')

# ---------------------------------------------------------------------------------------------------------------
# test:///default

Write-Host '== test:///default' -ForegroundColor Cyan
$testUri = 'test:///default'
$test = Connect-KvmHost -Uri $testUri
$defineMs = 0.0
$xmls = [string[]]::new($TestDriverVmCount)
for ($i = 0; $i -lt $TestDriverVmCount; $i++) {
    $cfg = [KvmPS.Core.Xml.DomainConfig]::new()
    $cfg.Name = "kvmpsbench-$i"
    $cfg.DomainType = 'test'
    $cfg.MaxMemoryKiB = 16384
    $cfg.MemoryKiB = 16384
    $cfg.CpuCount = 1
    $cfg.MaxCpuCount = 1
    $xmls[$i] = [KvmPS.Core.Xml.DomainXml]::Build($cfg)
}
$defineAll = {
    param([KvmPS.Core.Backend.ILibvirtConnection] $l)
    foreach ($x in $xmls) { $null = $l.DefineDomain($x, 0) }
    $xmls.Count
}.GetNewClosure()
$sw = [Diagnostics.Stopwatch]::StartNew()
$null = $test.Invoke([Func[KvmPS.Core.Backend.ILibvirtConnection, int]]$defineAll)
$defineMs = $sw.Elapsed.TotalMilliseconds
$xmls = $null
Write-Host ("  defined {0} test VMs in {1:0} ms" -f $TestDriverVmCount, $defineMs) -ForegroundColor DarkGray

$testCount = @(Get-KvmVm -Connection $testUri).Count
if ($testCount -lt $TestDriverVmCount) { throw "Get-KvmVm returned $testCount VMs; expected at least $TestDriverVmCount." }

$tGet = Measure-Runs { $null = @(Get-KvmVm -Connection $testUri) }
$tMeasure = Measure-Runs { $null = Get-KvmVm -Connection $testUri | Measure-Object }
$tService = Measure-Runs { $null = [KvmPS.Core.Services.VmService]::List($test, [Threading.CancellationToken]::None) }
$stages = [KvmPSBenchProbe]::Stages($test, $Runs)
$tTable = Measure-Runs -Count 3 { $null = Get-KvmVm -Connection $testUri | Out-String -Width 160 }
# The same columns without the view's two script-block columns (what the view costs over plain properties).
$tPlain = Measure-Runs -Count 3 { $null = Get-KvmVm -Connection $testUri | Format-Table Name, State, CpuCount, MemoryBytes, MaxMemoryBytes, HostName | Out-String -Width 160 }

$perVm = { param($ms, $n) 1000.0 * $ms / $n }
$getBestUs = & $perVm $tGet.BestMs $testCount
$getMedUs = & $perVm $tGet.MedianMs $testCount

$capiTest = Invoke-Capi -Uri $testUri -Count $TestDriverVmCount
$cList = $capiTest['list_name_uuid_info'].UsPerVm
$ratioTest = $getBestUs / $cList

Add-Row "test: Get-KvmVm, $testCount VMs, best (µs/VM)" ("{0} ({1} ms)" -f (Format-Num $getBestUs), (Format-Num $tGet.BestMs 0)) 
Add-Row "test: Get-KvmVm, $testCount VMs, median (µs/VM)" ("{0} ({1} ms)" -f (Format-Num $getMedUs), (Format-Num $tGet.MedianMs 0))
Add-Row 'test: Get-KvmVm | Measure-Object, best (µs/VM)' (Format-Num (& $perVm $tMeasure.BestMs $testCount))
Add-Row 'test: VmService.List without the cmdlet, best (µs/VM)' (Format-Num (& $perVm $tService.BestMs $testCount))
Add-Row 'test: C list+name+uuid+info (µs/VM)' (Format-Num $cList)
Add-Row 'test: C virConnectGetAllDomainStats (µs/VM)' (Format-Num $capiTest['all_domain_stats'].UsPerVm)
Add-Row 'test: C calls VmService.List makes (stats + 3 lists) (µs/VM)' (Format-Num $capiTest['kvmps_equivalent'].UsPerVm)
Add-Row 'test: Get-KvmVm / C list+name+uuid+info' ('{0}×' -f (Format-Num $ratioTest)) '≤ 1.5×' ($ratioTest -le 1.5)
Add-Row 'test: Get-KvmVm | Out-String (default table), best (µs/VM)' (Format-Num (& $perVm $tTable.BestMs $testCount))
Add-Row 'test: managed bytes allocated by VmService.List (per VM)' ('{0} B ({1} MiB per listing; GCs gen0/1/2: {2}/{3}/{4})' -f (Format-Num ($stages['allocated bytes'] / $stages['records']) 0), (Format-Num ($stages['allocated bytes'] / 1MB) 0.0), $stages['gen0'], $stages['gen1'], $stages['gen2'])
Add-Row 'test: defining VMs through KvmPS.Core (µs/VM)' (Format-Num (& $perVm $defineMs $TestDriverVmCount))

foreach ($k in 'GetAllDomainStats', '3x filtered ListAllDomains', 'per-VM GetDomainInfo fallback', 'VmService.List (total)') {
    $script:Breakdown.Add([pscustomobject]@{
        Stage = "test: $k"; BestMs = $stages[$k]; UsPerVm = 1000.0 * $stages[$k] / $stages['records']
    })
}
$script:Breakdown.Add([pscustomobject]@{ Stage = 'test: VmService.List via PowerShell method call'; BestMs = $tService.BestMs; UsPerVm = & $perVm $tService.BestMs $testCount })
$script:Breakdown.Add([pscustomobject]@{ Stage = 'test: Get-KvmVm (cmdlet + WriteObject)'; BestMs = $tGet.BestMs; UsPerVm = $getBestUs })
$script:Breakdown.Add([pscustomobject]@{ Stage = 'test: Get-KvmVm | Out-String (default table view)'; BestMs = $tTable.BestMs; UsPerVm = & $perVm $tTable.BestMs $testCount })
$script:Breakdown.Add([pscustomobject]@{ Stage = 'test: Get-KvmVm | Format-Table <6 plain properties> | Out-String'; BestMs = $tPlain.BestMs; UsPerVm = & $perVm $tPlain.BestMs $testCount })
if ($stages['fallbacks'] -gt 0) {
    Add-Note ("test driver: {0} of {1} stats records lack balloon/vcpu figures, so VmService.List calls virDomainGetInfo (after a UUID lookup) per VM." -f $stages['fallbacks'], $stages['records'])
}

if ($virsh) {
    $tVirsh = Measure-External -FilePath $virsh -ArgumentList '-c', $testUri, 'list', '--all'
    Add-Row 'test: virsh list --all, its own 1 default VM (ms, median)' (Format-Num $tVirsh.MedianMs 0.0)
    Add-Note 'virsh is another process: it sees only the test driver''s default VM, not the VMs defined in this process.'
}

# ---------------------------------------------------------------------------------------------------------------
# memory and file descriptors around repeated listings

Write-Host '== memory' -ForegroundColor Cyan
[GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
$before = Get-ProcessSnapshot
for ($i = 0; $i -lt $MemoryRepetitions; $i++) { $null = @(Get-KvmVm -Connection $testUri) }
[GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
$after = Get-ProcessSnapshot
Add-Row 'memory: RSS / managed heap right after Import-Module (MiB)' ('{0} / {1}' -f (Format-Num $afterImport.RssMiB 0), (Format-Num $afterImport.HeapMiB 0.0))
Add-Note 'RSS after that includes this script''s own Add-Type (Roslyn) probe and the test VMs held by the in-process test driver.'
Add-Row "memory: RSS before → after $MemoryRepetitions× listing $testCount VMs (MiB)" ('{0} → {1}' -f (Format-Num $before.RssMiB 0), (Format-Num $after.RssMiB 0))
Add-Row 'memory: managed heap after GC, before → after (MiB)' ('{0} → {1}' -f (Format-Num $before.HeapMiB 0.0), (Format-Num $after.HeapMiB 0.0))
Add-Row 'memory: open file descriptors, before → after' ('{0} → {1}' -f $before.Fds, $after.Fds) 'no growth' (($after.Fds - $before.Fds) -le 2)
Add-Row 'memory: threads, before → after' ('{0} → {1}' -f $before.Threads, $after.Threads)

# The test VMs are gone with the connection (the test driver is in-process); free them now.
Disconnect-KvmHost -Connection $test -ErrorAction Continue
$test = $null
[GC]::Collect()

# ---------------------------------------------------------------------------------------------------------------
# qemu:///system

$sysUri = 'qemu:///system'
$runSystem = -not $SkipSystem
if ($runSystem -and -not (Test-Path -LiteralPath '/run/libvirt/libvirt-sock') -and -not (Test-Path -LiteralPath '/run/libvirt/virtqemud-sock')) {
    Add-Note 'qemu:///system skipped: no libvirt daemon socket under /run/libvirt.'
    $runSystem = $false
}

if ($runSystem) {
    Write-Host '== qemu:///system' -ForegroundColor Cyan
    $sys = $null
    try {
        $sys = Connect-KvmHost -Uri $sysUri -NotDefault -ErrorAction Stop
    }
    catch {
        Add-Note "qemu:///system skipped: cannot connect ($($_.Exception.Message))."
        $runSystem = $false
    }
}

if ($runSystem) {
    $prefix = 'kvmpsbench-{0:x8}' -f (Get-Random -Minimum 0 -Maximum ([int]::MaxValue))
    $created = [Collections.Generic.List[string]]::new()
    $undefined = 0
    $leftover = @()
    $sysDefineMs = 0.0
    try {
        $existing = @(Get-KvmVm -Connection $sys).Count
        # Each count in turn, ascending: define the VMs missing up to it (the earlier ones stay), then measure.
        foreach ($target in $systemCounts) {
            $tag = "system $target"
            $sw = [Diagnostics.Stopwatch]::StartNew()
            for ($i = $created.Count; $i -lt $target; $i++) {
                $cfg = [KvmPS.Core.Xml.DomainConfig]::new()
                $cfg.Name = "$prefix-$i"
                $cfg.DomainType = 'qemu'
                $cfg.MaxMemoryKiB = 16384
                $cfg.MemoryKiB = 16384
                $cfg.CpuCount = 1
                $cfg.MaxCpuCount = 1
                $xml = [KvmPS.Core.Xml.DomainXml]::Build($cfg)
                $define = { param([KvmPS.Core.Backend.ILibvirtConnection] $l) $l.DefineDomain($xml, 0) }.GetNewClosure()
                # (Clean-up matches the prefix, not this list, so a define that failed late leaves nothing either.)
                $null = $sys.Invoke([Func[KvmPS.Core.Backend.ILibvirtConnection, KvmPS.Core.Backend.DomainRef]]$define)
                $created.Add($cfg.Name)
            }
            $sysDefineMs += $sw.Elapsed.TotalMilliseconds
            Write-Host ("  {0}: {1} VMs named {2}-* defined ({3:0} ms so far); {4} other VMs exist" -f $tag, $created.Count, $prefix, $sysDefineMs, $existing) -ForegroundColor DarkGray

            $sysCount = @(Get-KvmVm -Connection $sys).Count
            $tSys = Measure-Runs { $null = @(Get-KvmVm -Connection $sys) }
            $sysStages = [KvmPSBenchProbe]::Stages($sys, $Runs)
            $capiSys = Invoke-Capi -Uri $sysUri
            $sysBestUs = & $perVm $tSys.BestMs $sysCount
            $sysMedUs = & $perVm $tSys.MedianMs $sysCount
            $cSysList = $capiSys['list_name_uuid_info'].UsPerVm
            $cSysStats = $capiSys['all_domain_stats'].UsPerVm
            $ratioStats = $sysBestUs / $cSysStats

            Add-Row "${tag}: Get-KvmVm, $sysCount VMs, best (µs/VM)" ("{0} ({1} ms)" -f (Format-Num $sysBestUs), (Format-Num $tSys.BestMs 0.0))
            Add-Row "${tag}: Get-KvmVm, $sysCount VMs, median (µs/VM)" ("{0} ({1} ms)" -f (Format-Num $sysMedUs), (Format-Num $tSys.MedianMs 0.0))
            Add-Row "${tag}: C list+name+uuid+info (µs/VM)" (Format-Num $cSysList)
            Add-Row "${tag}: C virConnectGetAllDomainStats (µs/VM)" (Format-Num $cSysStats)
            Add-Row "${tag}: C calls VmService.List makes (stats + 3 lists) (µs/VM)" (Format-Num $capiSys['kvmps_equivalent'].UsPerVm)
            Add-Row "${tag}: Get-KvmVm / C virConnectGetAllDomainStats" ('{0}×' -f (Format-Num $ratioStats)) '≤ 3×' ($ratioStats -le 3)
            Add-Row "${tag}: Get-KvmVm / C list+name+uuid+info" ('{0}×' -f (Format-Num ($sysBestUs / $cSysList)))
            foreach ($k in 'GetAllDomainStats', '3x filtered ListAllDomains', 'per-VM GetDomainInfo fallback', 'VmService.List (total)') {
                $script:Breakdown.Add([pscustomobject]@{
                        Stage = "${tag}: $k"; BestMs = $sysStages[$k]; UsPerVm = 1000.0 * $sysStages[$k] / $sysStages['records']
                    })
            }
            $script:Breakdown.Add([pscustomobject]@{ Stage = "${tag}: Get-KvmVm (cmdlet + WriteObject)"; BestMs = $tSys.BestMs; UsPerVm = $sysBestUs })

            # Format-List shows XML-derived properties (Accelerator, Firmware, Disks ...): one GetXMLDesc per VM.
            $tList = Measure-Runs -Count 1 -NoWarmUp { $null = Get-KvmVm -Connection $sys | Format-List | Out-String -Width 160 }
            $script:Breakdown.Add([pscustomobject]@{ Stage = "${tag}: Get-KvmVm | Format-List | Out-String"; BestMs = $tList.BestMs; UsPerVm = & $perVm $tList.BestMs $sysCount })
            Add-Row "${tag}: Get-KvmVm | Format-List (reads each VM's XML) (µs/VM)" (Format-Num (& $perVm $tList.BestMs $sysCount) 0)

            if ($virsh) {
                $tVirshSys = Measure-External -FilePath $virsh -ArgumentList '-c', $sysUri, 'list', '--all'
                Add-Row "${tag}: virsh list --all, $sysCount VMs (ms, median)" (Format-Num $tVirshSys.MedianMs 0.0)

                $sample = @($created | Get-Random -Count ([Math]::Min($DominfoSample, $created.Count)))
                $null = & $virsh -c $sysUri dominfo $sample[0] 2>&1   # warm-up
                $sw = [Diagnostics.Stopwatch]::StartNew()
                foreach ($n in $sample) {
                    $null = & $virsh -c $sysUri dominfo $n 2>&1
                    if ($LASTEXITCODE -ne 0) { throw "virsh dominfo $n failed with exit code $LASTEXITCODE" }
                }
                $dominfoUs = 1000.0 * $sw.Elapsed.TotalMilliseconds / $sample.Count
                $speedup = $dominfoUs / $sysBestUs
                Add-Row "${tag}: virsh dominfo per VM (sample of $($sample.Count)) (ms)" (Format-Num ($dominfoUs / 1000) 0.0)
                Add-Row "${tag}: virsh dominfo for all $sysCount VMs, extrapolated (s)" (Format-Num ($dominfoUs * $sysCount / 1e6) 0.00)
                Add-Row "${tag}: Get-KvmVm speed-up over virsh dominfo per VM" ('{0}×' -f (Format-Num $speedup 0)) '≥ 100×' ($speedup -ge 100)
            }
        }
        Add-Row 'system: defining VMs through KvmPS.Core (ms/VM)' (Format-Num ($sysDefineMs / [Math]::Max(1, $created.Count)) 0.00)
    }
    finally {
        # Remove every VM this run created, and only those (names carry this run's random prefix).
        $undefineFlags = [KvmPS.Core.Backend.DomainUndefineFlags]'ManagedSave, SnapshotsMetadata, Nvram, CheckpointsMetadata'
        $names = [Collections.Generic.HashSet[string]]::new([string[]]$created.ToArray())
        try {
            # The leading comma returns the list as one object (a script block would enumerate it).
            $all = $sys.Invoke([Func[KvmPS.Core.Backend.ILibvirtConnection, Collections.Generic.IReadOnlyList[KvmPS.Core.Backend.DomainRef]]] {
                    param([KvmPS.Core.Backend.ILibvirtConnection] $l) , $l.ListAllDomains([KvmPS.Core.Backend.ListDomainsFlags]::None)
                })
            foreach ($d in $all) {
                if ($d.Name.StartsWith("$prefix-", [StringComparison]::Ordinal)) {
                    $null = $names.Add($d.Name)
                    $undefine = { param([KvmPS.Core.Backend.ILibvirtConnection] $l) $l.UndefineDomain($d, $undefineFlags) }.GetNewClosure()
                    try {
                        $sys.Invoke([Action[KvmPS.Core.Backend.ILibvirtConnection]]$undefine)
                        $undefined++
                    }
                    catch { Write-Warning "Could not undefine $($d.Name) through KvmPS.Core: $($_.Exception.Message)" }
                }
            }
        }
        catch { Write-Warning "Listing VMs for clean-up failed: $($_.Exception.Message)" }

        # Fallback through virsh for anything still there.
        if ($virsh) {
            $remaining = @(& $virsh -c $sysUri list --all --name 2>$null | Where-Object { $_ -and $_.StartsWith("$prefix-", [StringComparison]::Ordinal) })
            foreach ($n in $remaining) {
                $null = & $virsh -c $sysUri undefine $n --managed-save --snapshots-metadata --nvram 2>&1
            }
            $leftover = @(& $virsh -c $sysUri list --all --name 2>$null | Where-Object { $_ -and $_.StartsWith("$prefix-", [StringComparison]::Ordinal) })
        }
        Write-Host ("  clean-up: undefined {0} of {1} VMs named {2}-*" -f $undefined, $names.Count, $prefix) -ForegroundColor DarkGray
        if ($leftover.Count -gt 0) {
            Write-Warning "These VMs could not be undefined: $($leftover -join ', ')"
        }
        if ($sys) { Disconnect-KvmHost -Connection $sys -ErrorAction Continue }
    }
    Add-Row 'system: VMs left behind after clean-up' "$($leftover.Count)" '0' ($leftover.Count -eq 0)
}

# ---------------------------------------------------------------------------------------------------------------
# Import-Module time over a bare pwsh start

Write-Host '== Import-Module' -ForegroundColor Cyan
$quoted = "'" + $ModulePath.Replace("'", "''") + "'"
$importCommand = "`$s = [Diagnostics.Stopwatch]::StartNew(); Import-Module $quoted; `$s.Stop(); '{0:F3}' -f `$s.Elapsed.TotalMilliseconds"
$variants = [Collections.Generic.List[object]]::new()
$variants.Add([pscustomobject]@{ Name = 'dotnet pwsh'; File = 'dotnet'; Prefix = @('pwsh') })
$pwshExe = Join-Path $PSHOME 'pwsh'
if ((Test-Path -LiteralPath $pwshExe -PathType Leaf) -and -not $IsWindows) {
    $variants.Add([pscustomobject]@{ Name = 'pwsh (direct)'; File = $pwshExe; Prefix = @() })
}

Push-Location $RepoRoot   # dotnet pwsh needs the tool manifest in .config/
try {
    foreach ($v in $variants) {
        $bare = [Collections.Generic.List[double]]::new()
        $import = [Collections.Generic.List[double]]::new()
        $inProcess = [Collections.Generic.List[double]]::new()
        for ($i = 0; $i -le $ImportRuns; $i++) {   # run 0 warms the disk cache and is discarded
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $null = & $v.File @($v.Prefix + @('-NoProfile', '-NonInteractive', '-Command', '$null'))
            $tBare = $sw.Elapsed.TotalMilliseconds
            if ($LASTEXITCODE -ne 0) { throw "$($v.Name) -Command `$null failed (exit $LASTEXITCODE)" }

            $sw.Restart()
            $out = & $v.File @($v.Prefix + @('-NoProfile', '-NonInteractive', '-Command', $importCommand)) 2>&1
            $tImport = $sw.Elapsed.TotalMilliseconds
            if ($LASTEXITCODE -ne 0) { throw "$($v.Name): Import-Module failed (exit $LASTEXITCODE): $($out -join ' ')" }
            if ($i -eq 0) { continue }
            $bare.Add($tBare)
            $import.Add($tImport)
            $last = "$(@($out)[-1])"
            $parsed = 0.0
            if ([double]::TryParse($last, [Globalization.NumberStyles]::Float, [Globalization.CultureInfo]::InvariantCulture, [ref]$parsed)) {
                $inProcess.Add($parsed)
            }
        }
        $diff = (Get-Median $import.ToArray()) - (Get-Median $bare.ToArray())
        Add-Row "import: $($v.Name) + Import-Module − bare start, median of $ImportRuns (ms)" `
            ('{0} ({1} − {2})' -f (Format-Num $diff 0), (Format-Num (Get-Median $import.ToArray()) 0), (Format-Num (Get-Median $bare.ToArray()) 0)) '≤ 150 ms' ($diff -le 150)
        if ($inProcess.Count -gt 0) {
            Add-Row "import: Import-Module inside the $($v.Name) child, median (ms)" (Format-Num (Get-Median $inProcess.ToArray()) 0)
        }
    }
}
finally {
    Pop-Location
}

# ---------------------------------------------------------------------------------------------------------------
# soak: many mixed operations in a fresh process (bench/Measure-KvmPSSoak.ps1)

$script:SoakMarkdown = $null
if ($SoakOperations -gt 0) {
    Write-Host '== soak' -ForegroundColor Cyan
    $soakScript = Join-Path $PSScriptRoot 'Measure-KvmPSSoak.ps1'
    $soakJson = [IO.Path]::Combine([IO.Path]::GetTempPath(), "kvmps-soak-$PID.json")
    $soakArgs = @('-NoProfile', '-NonInteractive', '-File', $soakScript, '-Operations', $SoakOperations, '-ModulePath', $ModulePath, '-JsonPath', $soakJson)
    Push-Location $RepoRoot   # dotnet pwsh needs the tool manifest in .config/
    try {
        # The same pwsh as the Import-Module figure: $PSHOME's executable, else the dotnet tool.
        if ((Test-Path -LiteralPath $pwshExe -PathType Leaf) -and -not $IsWindows) { & $pwshExe @soakArgs | Out-Host }
        else { & dotnet pwsh @soakArgs | Out-Host }
        $soakExit = $LASTEXITCODE
    }
    finally { Pop-Location }
    if (-not (Test-Path -LiteralPath $soakJson)) { throw "The soak failed (exit $soakExit) before writing its summary; see its output above." }
    try { $soak = Get-Content -LiteralPath $soakJson -Raw | ConvertFrom-Json }
    finally { Remove-Item -LiteralPath $soakJson -ErrorAction Ignore }

    $points = @($soak.Snapshots | Where-Object { $_.Label -like '0 *' -or $_.Ops -gt 0 })
    $at = { param($ops) $points | Where-Object Ops -eq $ops | Select-Object -Last 1 }
    $p0 = $points[0]; $pMid = & $at ([long][Math]::Round($SoakOperations / 2)); $pEnd = $points[-1]
    $three = { param($prop, $fmt) '{0} / {1} / {2}' -f (Format-Num $p0.$prop $fmt), (Format-Num $pMid.$prop $fmt), (Format-Num $pEnd.$prop $fmt) }
    $label = '0 / {0:N0} / {1:N0} ops' -f $pMid.Ops, $pEnd.Ops
    Add-Row "soak: $($SoakOperations.ToString('N0')) mixed cmdlet calls on test:///default (ops/s)" ('{0} ({1} s)' -f (Format-Num $soak.OpsPerSecond 0), (Format-Num $soak.Seconds 0.0))
    Add-Row "soak: RSS at $label (MiB)" (& $three RssMiB '0.0')
    Add-Row "soak: managed heap after GC at $label (MiB)" (& $three HeapMiB '0.00')
    Add-Row "soak: open file descriptors at $label" (& $three Fds '0')
    Add-Row "soak: threads at $label" (& $three Threads '0')
    Add-Row "soak: flat? $($pMid.Ops.ToString('N0')) → $($pEnd.Ops.ToString('N0')) ops (RSS peak < +10 %, heap < +10 %, fds +0, threads ≤ +2)" $soak.Summary 'flat' ([bool]$soak.Flat)
    Add-Row 'soak: snapshots left / VMs left running' ('{0} / {1}' -f $soak.SnapshotsLeft, $soak.VmsLeftRunning) '0 / 0' (($soak.SnapshotsLeft -eq 0) -and ($soak.VmsLeftRunning -eq 0))
    $script:SoakMarkdown = $soak.Markdown
}

# ---------------------------------------------------------------------------------------------------------------
# report

$table = [Text.StringBuilder]::new()
$null = $table.AppendLine('| metric | measured | target | ok? |')
$null = $table.AppendLine('|---|---|---|---|')
function ConvertTo-MdCell([string] $Text) { $Text.Replace('|', '\|') }
foreach ($r in $script:Rows) {
    $null = $table.AppendLine("| $(ConvertTo-MdCell $r.Metric) | $(ConvertTo-MdCell $r.Measured) | $($r.Target) | $($r.'ok?') |")
}

$breakdownMd = [Text.StringBuilder]::new()
$null = $breakdownMd.AppendLine('| stage | best (ms) | µs/VM |')
$null = $breakdownMd.AppendLine('|---|---:|---:|')
foreach ($b in $script:Breakdown) {
    $null = $breakdownMd.AppendLine("| $(ConvertTo-MdCell $b.Stage) | $(Format-Num $b.BestMs 0.00) | $(Format-Num $b.UsPerVm 0.00) |")
}

Write-Host ''
Write-Host $table.ToString()
Write-Host 'Where the time goes (best of runs):'
Write-Host $breakdownMd.ToString()

$md = [Text.StringBuilder]::new()
$null = $md.AppendLine('# KvmPS benchmark results')
$null = $md.AppendLine()
$null = $md.AppendLine('Produced by `bench/Measure-KvmPS.ps1`; see `bench/README.md` for what each figure means.')
$null = $md.AppendLine()
foreach ($kv in $machine.GetEnumerator()) { $null = $md.AppendLine("- **$($kv.Key)**: $($kv.Value)") }
$null = $md.AppendLine()
$null = $md.Append($table.ToString())
$null = $md.AppendLine()
$null = $md.AppendLine('## Where the time goes')
$null = $md.AppendLine()
$null = $md.Append($breakdownMd.ToString())
if ($script:Notes.Count -gt 0) {
    $null = $md.AppendLine()
    $null = $md.AppendLine('## Notes')
    $null = $md.AppendLine()
    foreach ($n in $script:Notes) { $null = $md.AppendLine("- $n") }
}
if ($script:SoakMarkdown) {
    $null = $md.AppendLine()
    $null = $md.AppendLine("## Soak ($($SoakOperations.ToString('N0')) operations, bench/Measure-KvmPSSoak.ps1)")
    $null = $md.AppendLine()
    $null = $md.Append($script:SoakMarkdown)
}
$null = $md.AppendLine()
$null = $md.AppendLine('## bench/capi output')
$null = $md.AppendLine()
$null = $md.AppendLine('```')
foreach ($l in $script:CapiLines) { $null = $md.AppendLine($l) }
$null = $md.AppendLine('```')
Set-Content -LiteralPath $ResultPath -Value $md.ToString() -Encoding utf8NoBOM
Write-Host "Wrote $ResultPath"
