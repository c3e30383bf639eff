#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, demonstrates and packages KvmPS.
.DESCRIPTION
    Tasks (combinable, run in this order): Clean, Build, Test, Demo, Package.
      Build   builds the solution, publishes an importable module to out/KvmPS, generates MAML help
              from en-US/*.md (fails on a missing page, parameter description or example) and checks the manifest.
      Test    installs what the tests need (Debian packages when root, Pester from NuGet), starts libvirtd,
              runs xunit, then the whole Pester suite once per backend (Native, Managed; child pwsh), and
              ends with the line "N passed, N failed" (all runs added up).
      Demo    imports the module and shows it against libvirt's in-process test:///default driver.
      Package publishes the module to a local PSResourceGet repository in out/repository.
    Test and Demo build first when out/KvmPS is missing or older than the sources.
.EXAMPLE
    dotnet tool restore; dotnet pwsh -NoProfile -File build.ps1 -Task Build,Test
#>
[CmdletBinding()]
param(
    # Clean, Build, Test, Demo, Package; several as a list or comma-separated ('Build,Test' works with -File).
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Pester tag filter, e.g. -PesterTag TestDriver to skip the qemu:///system tests.
    [string[]] $PesterTag,

    # The backends the Pester suite runs on, each a whole run: Native, Managed ('Native,Managed' works with -File).
    [string[]] $Backend = @('Native', 'Managed'),

    # Runs the Pester passes of the backends one after the other instead of at the same time.
    [switch] $SerialPester,

    # A Pester pass whose output stops for this long is stopped (its thread stacks are kept) and counted as failed.
    [int] $StallMinutes = 10,

    # Only the Pester files whose names match these patterns (e.g. 'Migration*'); xunit still runs.
    [string[]] $TestFile
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Task = @($Task -split ',' | ForEach-Object Trim | Where-Object { $_ })
$Backend = @($Backend -split ',' | ForEach-Object Trim | Where-Object { $_ })
$TestFile = @($TestFile -split ',' | ForEach-Object Trim | Where-Object { $_ })
foreach ($b in $Backend) { if ($b -notin 'Native', 'Managed') { throw "Unknown backend '$b': use Native and/or Managed." } }
$unknown = $Task | Where-Object { $_ -notin 'Clean', 'Build', 'Test', 'Demo', 'Package' }
if ($unknown) { throw "Unknown task(s): $($unknown -join ', '). Use Clean, Build, Test, Demo or Package." }
$root = $PSScriptRoot
$manifest = Import-PowerShellDataFile ([IO.Path]::Combine($root, 'KvmPS.psd1'))
$version = $manifest.ModuleVersion
$outRoot = [IO.Path]::Combine($root, 'out')
$out = [IO.Path]::Combine($outRoot, 'KvmPS')
$bin = [IO.Path]::Combine($out, 'bin', 'net8.0')
$results = [IO.Path]::Combine($outRoot, 'TestResults')
$pwshExe = [Diagnostics.Process]::GetCurrentProcess().MainModule.FileName
$pwshArgs = @()
if ([IO.Path]::GetFileNameWithoutExtension($pwshExe) -eq 'dotnet') {
    # Running as the dotnet tool: children run the same pwsh.dll through the dotnet host.
    $pwshArgs = @([IO.Path]::Combine($PSHOME, 'pwsh.dll'))
}

function Invoke-Native {
    param([string] $FilePath, [string[]] $ArgumentList)
    & $FilePath @ArgumentList
    if ($LASTEXITCODE -ne 0) { throw "'$FilePath $($ArgumentList -join ' ')' failed with exit code $LASTEXITCODE." }
}

function Invoke-ChildPwsh {
    param([string[]] $ArgumentList)
    & $pwshExe @pwshArgs -NoProfile -NonInteractive @ArgumentList | Out-Host
    return $LASTEXITCODE
}

# The process ids of every descendant of a process (Linux: /proc/<pid>/task/*/children).
function Get-ChildPids([int] $ProcessId) {
    $kids = @(Get-ChildItem "/proc/$ProcessId/task/*/children" -ErrorAction SilentlyContinue | Get-Content -ErrorAction SilentlyContinue |
        ForEach-Object { $_ -split '\s+' } | Where-Object { $_ } | ForEach-Object { [int]$_ })
    foreach ($k in $kids) { $k; Get-ChildPids $k }
}

# Runs a script text in a child pwsh through a temporary file (-File passes arguments verbatim).
function Invoke-ChildScript {
    param([string] $Name, [string] $Script, [string[]] $ArgumentList)
    $null = New-Item -ItemType Directory -Force $outRoot
    $file = [IO.Path]::Combine($outRoot, "$Name.ps1")
    Set-Content -Path $file -Value $Script
    return Invoke-ChildPwsh (@('-File', $file) + $ArgumentList)
}

function Initialize-Host {
    param([ValidateSet('demo', 'test')] [string] $Mode)
    if (-not $IsLinux) {
        Write-Warning "Automatic setup covers Debian/Ubuntu. Install libvirt for your OS and set KVMPS_LIBVIRT_PATH when it is not on the library path."
        return
    }
    if (-not (Get-Command dpkg-query -ErrorAction SilentlyContinue)) {
        Write-Warning 'Not a Debian-like system: install libvirt (client library; for tests also libvirtd and QEMU) yourself.'
        return
    }
    Invoke-Native bash @([IO.Path]::Combine($root, '.ci', 'provision'), $Mode)
}

function Test-BuildCurrent {
    $dll = [IO.Path]::Combine($bin, 'KvmPS.dll')
    if (-not (Test-Path $dll)) { return $false }
    $built = (Get-Item $dll).LastWriteTimeUtc
    $newest = Get-ChildItem -Path ([IO.Path]::Combine($root, 'src')), ([IO.Path]::Combine($root, 'en-US')) -Recurse -File |
        Where-Object { $_.FullName -notmatch '[\\/](bin|obj)[\\/]' } |
        Sort-Object LastWriteTimeUtc -Descending | Select-Object -First 1
    $psd1 = Get-Item ([IO.Path]::Combine($root, 'KvmPS.psd1'))
    return ($newest.LastWriteTimeUtc -le $built) -and ($psd1.LastWriteTimeUtc -le $built)
}

function Invoke-Build {
    Write-Host "== Build KvmPS $version ($Configuration)" -ForegroundColor Cyan
    Invoke-Native dotnet @('build', ([IO.Path]::Combine($root, 'KvmPS.sln')), '-c', $Configuration, "-p:Version=$version", '-nologo', '-v', 'q', '-clp:ErrorsOnly')

    if (Test-Path $out) { Remove-Item $out -Recurse -Force }
    Invoke-Native dotnet @('publish', ([IO.Path]::Combine($root, 'src', 'KvmPS', 'KvmPS.csproj')), '-c', $Configuration, '--no-build', '-o', $bin, '-nologo', '-v', 'q')

    # The payload must not carry PowerShell itself, and Core (shared in the Default ALC) no packages.
    $forbidden = Get-ChildItem $bin -File | Where-Object Name -in 'System.Management.Automation.dll', 'Microsoft.PowerShell.Commands.Utility.dll'
    if ($forbidden) { throw "The module payload contains PowerShell assemblies: $($forbidden.Name -join ', ')" }
    $coreDeps = Get-Content ([IO.Path]::Combine($root, 'src', 'KvmPS.Core', 'bin', $Configuration, 'net8.0', 'KvmPS.Core.deps.json')) -Raw | ConvertFrom-Json -AsHashtable
    $corePackages = @($coreDeps.libraries.Values | Where-Object { $_.type -eq 'package' })
    if ($corePackages.Count -gt 0) { throw 'KvmPS.Core must not reference packages: it is shared in the Default load context.' }
    foreach ($required in 'KvmPS.dll', 'KvmPS.Core.dll', 'KvmPS.Loader.dll', 'YamlDotNet.dll', 'KvmPS.deps.json') {
        if (-not (Test-Path ([IO.Path]::Combine($bin, $required)))) { throw "Publish did not produce $required." }
    }

    Copy-Item ([IO.Path]::Combine($root, 'KvmPS.psd1')), ([IO.Path]::Combine($root, 'README.md')) $out
    Copy-Item ([IO.Path]::Combine($root, 'src', 'KvmPS', 'KvmPS.psm1')) $out
    Copy-Item ([IO.Path]::Combine($root, 'src', 'KvmPS', '*.Format.ps1xml')) $out

    # Help: generated in a child pwsh so this process never loads the module.
    $helpDir = [IO.Path]::Combine($out, 'en-US')
    $null = New-Item -ItemType Directory -Force $helpDir
    $code = Invoke-ChildPwsh @('-File', ([IO.Path]::Combine($root, 'src', 'HelpGen', 'New-KvmPSMaml.ps1')),
        '-Manifest', ([IO.Path]::Combine($out, 'KvmPS.psd1')), '-Source', ([IO.Path]::Combine($root, 'en-US')), '-Destination', $helpDir)
    if ($code -ne 0) { throw 'Help generation failed (see the problems listed above).' }
    Copy-Item ([IO.Path]::Combine($root, 'en-US', 'about_KvmPS.help.txt')) $helpDir

    $null = Test-ModuleManifest ([IO.Path]::Combine($out, 'KvmPS.psd1'))
    $check = @'
$null = Import-Module $args[0] -PassThru
$expected = (Import-PowerShellDataFile $args[0]).CmdletsToExport | Sort-Object
$actual = (Get-Command -Module KvmPS -CommandType Cmdlet).Name | Sort-Object
if (Compare-Object $expected $actual) { Write-Error "Exported cmdlets differ from CmdletsToExport: $(Compare-Object $expected $actual | Out-String)"; exit 1 }
'@
    $code = Invoke-ChildScript 'check-exports' $check @(([IO.Path]::Combine($out, 'KvmPS.psd1')))
    if ($code -ne 0) { throw 'The built module does not export exactly CmdletsToExport.' }
    Write-Host "Module ready: $out" -ForegroundColor Green
}

function Get-TrxCounts {
    param([string] $Path)
    [xml] $trx = Get-Content $Path -Raw
    $c = $trx.TestRun.ResultSummary.Counters
    # xunit's skips do not show in the notExecuted counter: read each result's outcome instead.
    $skips = @(foreach ($r in @($trx.TestRun.Results.UnitTestResult)) {
        if ($r -and $r.outcome -eq 'NotExecuted') {
            $reason = $r.SelectSingleNode('*[local-name()="Output"]/*[local-name()="ErrorInfo"]/*[local-name()="Message"]')
            [pscustomobject]@{ Name = $r.testName; Reason = $(if ($reason) { $reason.InnerText.Trim() } else { '' }) }
        }
    })
    $failures = @(foreach ($r in @($trx.TestRun.Results.UnitTestResult)) {
        if ($r -and $r.outcome -eq 'Failed') {
            $message = $r.SelectSingleNode('*[local-name()="Output"]/*[local-name()="ErrorInfo"]/*[local-name()="Message"]')
            "$($r.testName): $(if ($message) { ($message.InnerText.Trim() -split "`n")[0] })"
        }
    })
    $times = $trx.TestRun.Times
    $seconds = ([datetime]$times.finish - [datetime]$times.start).TotalSeconds
    [pscustomobject]@{
        Passed = [int]$c.passed; Failed = [int]$c.failed + [int]$c.error + [int]$c.timeout; Skips = $skips; Seconds = $seconds; Failures = $failures
    }
}

# The programs every test may call (.ci/tools): all must be there before any test runs.
function Assert-TestTools {
    $missing = @(foreach ($line in Get-Content ([IO.Path]::Combine($root, '.ci', 'tools'))) {
        if ($line -match '^\s*(#|$)') { continue }
        $program, $package = @(-split $line)[0, 1]
        $found = if ($program.StartsWith('/')) { Test-Path $program }
            else { [bool](Get-Command $program -CommandType Application -ErrorAction SilentlyContinue) -or (Test-Path "/usr/sbin/$program") -or (Test-Path "/sbin/$program") }
        if (-not $found) { "$program (Debian package $package)" }
    })
    if ($missing) {
        throw "The tests need programs that are not installed: $($missing -join ', '). Run '.ci/provision test' as root (or apt-get install the packages named)."
    }
    Write-Host "Set-up check: all $(@(Get-Content ([IO.Path]::Combine($root, '.ci', 'tools')) | Where-Object { $_ -notmatch '^\s*(#|$)' }).Count) programs the tests call are installed."
}

# Skips listed with their reason in tests/allowed-skips.txt ("name pattern <TAB> reason"); any other skip is a failure.
function Get-AllowedSkips {
    $file = [IO.Path]::Combine($root, 'tests', 'allowed-skips.txt')
    @(if (Test-Path $file) {
        foreach ($line in Get-Content $file) {
            if ($line -match '^\s*(#|$)') { continue }
            $pattern, $reason = $line -split "\t+", 2
            [pscustomobject]@{ Pattern = $pattern.Trim(); Reason = "$reason".Trim() }
        }
    })
}

function Invoke-Test {
    Initialize-Host -Mode test
    if ($IsLinux) { Assert-TestTools }
    if (Test-Path $results) { Remove-Item $results -Recurse -Force }
    $null = New-Item -ItemType Directory -Force $results
    $passed = 0; $failed = 0
    $skips = [Collections.Generic.List[object]]::new()
    $timings = [Collections.Generic.List[object]]::new()
    $failures = [Collections.Generic.List[string]]::new()
    $started = [Diagnostics.Stopwatch]::StartNew()

    foreach ($project in 'KvmPS.Core.Tests', 'KvmPS.Tests') {
        Write-Host "== xunit $project" -ForegroundColor Cyan
        $proj = [IO.Path]::Combine($root, 'tests', 'units', $project, "$project.csproj")
        & dotnet test $proj -c $Configuration --no-build --nologo --logger "trx;LogFileName=$project.trx" --logger 'console;verbosity=normal' --results-directory $results | Out-Host
        $trx = [IO.Path]::Combine($results, "$project.trx")
        if (-not (Test-Path $trx)) { Write-Warning "$project produced no results."; $failed++; continue }
        $counts = Get-TrxCounts $trx
        $passed += $counts.Passed; $failed += $counts.Failed
        foreach ($f in $counts.Failures) { $failures.Add("[xunit $project] $f") }
        foreach ($s in $counts.Skips) { $skips.Add([pscustomobject]@{ Suite = "xunit $project"; Name = $s.Name; Reason = $s.Reason }) }
        $timings.Add([pscustomobject]@{ Suite = "xunit $project"; Passed = $counts.Passed; Failed = $counts.Failed; Seconds = [math]::Round($counts.Seconds, 1) })
    }

    $packages = [IO.Path]::Combine($outRoot, 'packages')
    Invoke-Native dotnet @('restore', ([IO.Path]::Combine($root, 'tests', 'TestDependencies.proj')), '--packages', $packages, '-nologo', '-v', 'q')
    $pester = [IO.Path]::Combine($packages, 'pester', '5.7.1', 'tools', 'Pester.psd1')
    $runner = @'
param($pester, $tests, $results, $name, $summary, $tags)
Import-Module $pester
$cfg = New-PesterConfiguration
$cfg.Run.Path = @($tests -split ';')
$cfg.Run.PassThru = $true
$cfg.Output.Verbosity = 'Detailed'
$cfg.TestResult.Enabled = $true
$cfg.TestResult.OutputFormat = 'NUnitXml'
$cfg.TestResult.OutputPath = Join-Path $results "$name.xml"
if ($tags) { $cfg.Filter.Tag = $tags -split ',' }
$r = Invoke-Pester -Configuration $cfg
$skipped = @($r.Skipped) + $(if (-not $tags) { @($r.NotRun) } else { @() })
[pscustomobject]@{
    Passed = $r.PassedCount; Failed = $r.FailedCount + $r.FailedBlocksCount + $r.FailedContainersCount
    Skips = @($skipped | Where-Object { $_ } | ForEach-Object {
        $why = if ($_.ErrorRecord) { @($_.ErrorRecord)[0].Exception.Message } else { "$($_.Result)" }
        [pscustomobject]@{ Name = $_.ExpandedPath; Reason = $why } })
    Failures = @(@($r.Failed) + @($r.FailedBlocks) + @($r.FailedContainers) | Where-Object { $_ } | ForEach-Object {
        $err = @($_.ErrorRecord)[0]
        $where = if ($err -and $err.ScriptStackTrace) { @("$($err.ScriptStackTrace)" -split "`n")[0] } else { '' }
        $label = if ($_.ExpandedPath) { $_.ExpandedPath } elseif ($_.Item) { "$($_.Item)" } else { "$($_.Name)" }
        [pscustomobject]@{ Name = $label; Error = if ($err) { "$($err.Exception.Message)" } else { "$($_.Result)" }; Where = $where } })
    Files = @($r.Containers | ForEach-Object {
        [pscustomobject]@{ Name = [IO.Path]::GetFileName("$($_.Item)"); Passed = $_.PassedCount; Failed = $_.FailedCount; Seconds = [math]::Round($_.Duration.TotalSeconds, 1) } })
} | ConvertTo-Json -Depth 4 | Set-Content $summary
'@
    $env:KVMPS_MODULE_PATH = [IO.Path]::Combine($out, 'KvmPS.psd1')
    $env:KVMPS_PACKAGES = $packages
    # The whole suite once per backend, against the same daemon: differences between them are bugs. The two backends'
    # lanes run at the same time (every test names its objects with its own prefix and never touches others'); each
    # test file runs in its own pwsh with its own log, so one file that hangs or fails costs only itself. The native
    # lane takes the files in name order and the managed lane in reverse, so that the few long guest boots (CloudInit*)
    # do not coincide. -SerialPester runs the lanes one after the other. A file whose log stops growing for
    # $StallMinutes is stopped (its thread stacks written next to its log) and counted as failed. A file that failed or
    # stalled among the concurrent lanes runs once more on its own at the end; the digest names every first failure and
    # what the second run gave, and only the second run's result counts. A test that fails twice fails the run.
    $runnerFile = [IO.Path]::Combine($outRoot, 'run-pester.ps1')
    Set-Content -Path $runnerFile -Value $runner
    $testFiles = @(Get-ChildItem -Path ([IO.Path]::Combine($root, 'tests')) -Filter '*.Tests.ps1' -File | Sort-Object Name | ForEach-Object FullName)
    if ($TestFile.Count -gt 0) { $testFiles = @($testFiles | Where-Object { $n = [IO.Path]::GetFileName($_); @($TestFile | Where-Object { $n -like $_ -or $n -like "$_.Tests.ps1" }).Count -gt 0 }) }
    $lanes = [Collections.Generic.List[object]]::new()
    foreach ($backend in $Backend) {
        $order = if ($lanes.Count % 2 -eq 0) { $testFiles } else { @($testFiles[($testFiles.Count - 1)..0]) }
        $lanes.Add([pscustomobject]@{ Backend = $backend; Queue = [Collections.Generic.Queue[string]]::new([string[]]$order); Current = $null })
    }

    $startFile = {
        param([string] $backend, [string] $file, [string] $suffix)
        $name = "pester-$($backend.ToLowerInvariant())-$([IO.Path]::GetFileNameWithoutExtension([IO.Path]::GetFileNameWithoutExtension($file)))$suffix"
        $run = [pscustomobject]@{
            Backend = $backend; File = [IO.Path]::GetFileName($file); Path = $file; Process = $null; Stalled = $false
            Summary = [IO.Path]::Combine($results, "$name-summary.json"); Log = [IO.Path]::Combine($results, "$name.log"); Result = $null
        }
        $psi = [Diagnostics.ProcessStartInfo]::new('bash')
        $psi.UseShellExecute = $false
        foreach ($a in @('-c', 'log=$1; shift; exec "$@" > "$log" 2>&1', 'pester', $run.Log, $pwshExe) + $pwshArgs +
            @('-NoProfile', '-NonInteractive', '-File', $runnerFile, $pester, $file, $results, $name, $run.Summary, ($PesterTag -join ','))) {
            $psi.ArgumentList.Add($a)
        }
        $psi.Environment['KVMPS_BACKEND'] = $backend
        $run.Process = [Diagnostics.Process]::Start($psi)
        $run
    }

    # Reads a finished file's summary (or marks it failed when it has none).
    $finishFile = {
        param($run)
        $run.Process.WaitForExit()
        $run.Result = if (-not $run.Stalled -and (Test-Path $run.Summary)) { Get-Content $run.Summary -Raw | ConvertFrom-Json } else { $null }
    }

    $watch = {
        param($run)
        if (-not (Test-Path $run.Log)) { return }
        $idle = [datetime]::UtcNow - (Get-Item $run.Log).LastWriteTimeUtc
        if (-not $run.Process.HasExited -and $idle.TotalMinutes -ge $StallMinutes) {
            $stacks = [IO.Path]::ChangeExtension($run.Log, '.stacks.txt')
            Write-Host "Pester ($($run.Backend) $($run.File)) wrote nothing for $StallMinutes min: stopping it; thread stacks in $stacks" -ForegroundColor Red
            foreach ($id in @($run.Process.Id) + @(Get-ChildPids $run.Process.Id)) {
                & dotnet tool run dotnet-stack report -p $id *>> $stacks
            }
            $run.Stalled = $true
            & kill -KILL @(@(Get-ChildPids $run.Process.Id) + $run.Process.Id) 2>$null
        }
    }

    $runs = [Collections.Generic.List[object]]::new()
    $lastBeat = [Diagnostics.Stopwatch]::StartNew()
    $active = if ($SerialPester) { @($lanes[0]) } else { @($lanes) }
    $laneIndex = $active.Count
    while ($true) {
        foreach ($lane in $active) {
            if ($lane.Current -and $lane.Current.Process.HasExited) { & $finishFile $lane.Current; $lane.Current = $null }
            if (-not $lane.Current -and $lane.Queue.Count -gt 0) {
                $lane.Current = & $startFile $lane.Backend $lane.Queue.Dequeue() ''
                $runs.Add($lane.Current)
            }
        }
        if (@($active | Where-Object { $_.Current }).Count -eq 0) {
            if ($laneIndex -lt $lanes.Count) { $active = @($lanes[$laneIndex]); $laneIndex++; continue }
            break
        }
        Start-Sleep -Milliseconds 500
        foreach ($lane in $active) { if ($lane.Current) { & $watch $lane.Current } }
        if ($lastBeat.Elapsed.TotalSeconds -ge 60) {
            $lastBeat.Restart()
            $beat = foreach ($lane in $lanes) {
                $done = @($runs | Where-Object { $_.Backend -eq $lane.Backend -and $_.Result }).Count
                "$($lane.Backend) $done/$($testFiles.Count) files$(if ($lane.Current) { " (now $($lane.Current.File))" })"
            }
            Write-Host "  Pester after $([math]::Round($started.Elapsed.TotalMinutes, 1)) min: $($beat -join ', ')"
        }
    }

    # Files that failed or stalled beside the other lane: once more, alone.
    $firstFailures = @($runs | Where-Object { -not $_.Result -or $_.Result.Failed -gt 0 })
    $final = @{}
    foreach ($r in $runs) { $final["$($r.Backend)|$($r.File)"] = $r }
    if (-not $SerialPester -and $lanes.Count -gt 1 -and $firstFailures.Count -gt 0) {
        Write-Host "== Pester: $($firstFailures.Count) file(s) failed or stalled beside the other lane; running each once more on its own" -ForegroundColor Yellow
        foreach ($f in $firstFailures) {
            $again = & $startFile $f.Backend $f.Path '-rerun'
            while (-not $again.Process.HasExited) { Start-Sleep -Milliseconds 500; & $watch $again }
            & $finishFile $again
            $final["$($f.Backend)|$($f.File)"] = $again
            $runs.Add($again)
            $outcome = if (-not $again.Result) { 'stalled or crashed again' } elseif ($again.Result.Failed -gt 0) { "failed again ($($again.Result.Failed))" } else { "passed ($($again.Result.Passed))" }
            $first = if ($f.Stalled) { 'STALLED' } elseif (-not $f.Result) { 'no summary' } else { (@($f.Result.Failures) | ForEach-Object { "$($_.Name): $($_.Error)" }) -join ' || ' }
            $failures.Add("[Pester $($f.Backend)] $($f.File) first run: $first`n      on its own: $outcome")
        }
    }

    foreach ($r in $runs) {
        Write-Host "== Pester, $($r.Backend) backend, $($r.File)" -ForegroundColor Cyan
        Get-Content $r.Log | Out-Host
    }
    foreach ($r in $final.Values | Sort-Object Backend, File) {
        if ($r.Stalled -or -not $r.Result) {
            Write-Host "Pester ($($r.Backend) $($r.File)) $(if ($r.Stalled) { 'stalled and was stopped' } else { 'produced no summary' })" -ForegroundColor Red
            $stacksFile = [IO.Path]::ChangeExtension($r.Log, '.stacks.txt')
            $lastLines = @(Get-Content $r.Log -Tail 400 | ForEach-Object { $_ -replace "\e\[[0-9;]*m", '' } |
                Where-Object { $_ -match '^\s*(Running tests from|Describing|Context|\[[+!-]\])' } | Select-Object -Last 4)
            # the thread running the test's script (the one in a PowerShell pipeline), its top frames without arguments
            $threads = @((Get-Content $stacksFile -Raw -ErrorAction SilentlyContinue) -split '(?m)^(?=Thread \()' | Where-Object { $_ -match 'PipelineProcessor' })
            $frames = @(foreach ($t in $threads) {
                @($t -split "`n" | Select-Object -Skip 1 | Where-Object { $_ -match '!' } | Select-Object -First 10 | ForEach-Object { ($_.Trim() -split '\(')[0] }) -join ' <- '
            })
            $failures.Add("[Pester $($r.Backend)] $($r.File) $(if ($r.Stalled) { 'STALLED' } else { 'NO SUMMARY' }) after: $(($lastLines | ForEach-Object { $_.Trim() }) -join ' | ')`n      script thread: $($frames -join "`n      script thread: ")")
            $failed++
            continue
        }
        $p = $r.Result
        $passed += $p.Passed; $failed += $p.Failed
        foreach ($s in @($p.Skips)) { $skips.Add([pscustomobject]@{ Suite = "Pester $($r.Backend)"; Name = $s.Name; Reason = $s.Reason }) }
        foreach ($f in @($p.Failures)) { $failures.Add("[Pester $($r.Backend)] $($f.Name): $($f.Error) $($f.Where)") }
        $timings.Add([pscustomobject]@{ Suite = "Pester $($r.Backend) $($r.File)"; Passed = $p.Passed; Failed = $p.Failed; Seconds = @($p.Files | Measure-Object Seconds -Sum).Sum })
    }
    foreach ($lane in $lanes) {
        $mine = @($final.Values | Where-Object { $_.Backend -eq $lane.Backend -and $_.Result })
        Write-Host "Pester ($($lane.Backend) backend): $(($mine | ForEach-Object { $_.Result.Passed } | Measure-Object -Sum).Sum) passed, $(($mine | ForEach-Object { $_.Result.Failed } | Measure-Object -Sum).Sum) failed in $($mine.Count) of $($testFiles.Count) files"
    }

    Write-Host ''
    Write-Host "== Timing (slowest first; whole run $([math]::Round($started.Elapsed.TotalMinutes, 1)) min)" -ForegroundColor Cyan
    $timings | Sort-Object Seconds -Descending | Format-Table Suite, Passed, Failed, Seconds -AutoSize | Out-Host

    # A skip counts as a failure unless tests/allowed-skips.txt lists it with its reason.
    $allowed = Get-AllowedSkips
    $allowedCount = 0
    foreach ($s in $skips) {
        $rule = $allowed | Where-Object { $s.Name -like $_.Pattern -or "$($s.Suite): $($s.Name)" -like $_.Pattern } | Select-Object -First 1
        if ($rule) { $allowedCount++; Write-Host "skipped (allowed: $($rule.Reason)): [$($s.Suite)] $($s.Name)" }
        else { $failed++; Write-Host "SKIPPED, counted as failed (not in tests/allowed-skips.txt): [$($s.Suite)] $($s.Name): $($s.Reason)" -ForegroundColor Red }
    }
    Write-Host "$($skips.Count) skipped ($allowedCount allowed, $($skips.Count - $allowedCount) counted as failed)"
    if ($failures.Count -gt 0) {
        Write-Host "== Failures, and files run again on their own ($($failures.Count))" -ForegroundColor Red
        foreach ($f in $failures) { Write-Host ("  " + $(if ($f.Length -gt 1200) { $f.Substring(0, 1200) + ' …' } else { $f })) }
    }
    Write-Host "$passed passed, $failed failed"
    if ($failed -gt 0) { exit 1 }
}

function Invoke-Demo {
    Initialize-Host -Mode demo
    $demo = @'
Import-Module $args[0]
$ErrorActionPreference = 'Stop'
function Show([string] $title, [scriptblock] $sb) {
    Write-Host ''
    Write-Host "PS> $($sb.ToString().Trim())" -ForegroundColor Yellow
    & $sb | Out-Host
}
Write-Host "KvmPS demo against libvirt's in-process test driver (test:///default): no daemon, no VMs harmed." -ForegroundColor Cyan
Show 'connect' { Connect-KvmHost -Uri test:///default }
Show 'host' { Get-KvmHost }
Show 'capability' { Get-KvmHostCapability }
Show 'vms' { Get-KvmVm }
Show 'details' { Get-KvmVm -Name te* | Format-List Name, State, CpuCount, MemoryBytes, MaxMemoryBytes, Accelerator, Disks, NetworkAdapters }
Show 'pipeline' { Get-KvmVm -State Running | Sort-Object MemoryBytes -Descending | Select-Object Name, State, CpuCount, @{ n = 'MemoryGiB'; e = { $_.MemoryBytes / 1GB } }, HostName }
if (Test-Path /run/libvirt/libvirt-sock) {
    Write-Host ''
    Write-Host "This machine's own libvirtd answers at qemu:///system: its real capability report (on a machine without" -ForegroundColor Cyan
    Write-Host "/dev/kvm it says KVM is not available and names the failing checks; guests then run under TCG)." -ForegroundColor Cyan
    try { Show 'this machine' { Get-KvmHostCapability -Connection qemu:///system -OutVariable cap | Format-List HostName, KvmAvailable, Accelerators, Overall; $cap.Checks | Format-Table Name, Result, Detail -Wrap } }
    catch { Write-Host "qemu:///system did not answer ($($_.Exception.Message)); the test-driver demo above is complete." }
}
Show 'errors' { Get-KvmVm -Name no-such-vm -ErrorAction SilentlyContinue -ErrorVariable e; $e | ForEach-Object { "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" } }
'@
    $code = Invoke-ChildScript 'demo' $demo @(([IO.Path]::Combine($out, 'KvmPS.psd1')))
    if ($code -ne 0) { throw 'The demo failed.' }
}

function Invoke-Package {
    $repo = [IO.Path]::Combine($outRoot, 'repository')
    $null = New-Item -ItemType Directory -Force $repo
    $script = @'
param($repo, $module)
Register-PSResourceRepository -Name KvmPS-Local -Uri $repo -Trusted -Force
try { Publish-PSResource -Path $module -Repository KvmPS-Local }
finally { Unregister-PSResourceRepository -Name KvmPS-Local }
'@
    $code = Invoke-ChildScript 'package' $script @($repo, $out)
    if ($code -ne 0) { throw 'Packaging failed.' }
    Write-Host "Package written to $repo" -ForegroundColor Green
}

if ('Clean' -in $Task) { if (Test-Path $outRoot) { Remove-Item $outRoot -Recurse -Force } }
if ('Build' -in $Task) { Invoke-Build }
elseif ((@('Test', 'Demo', 'Package') | Where-Object { $_ -in $Task }) -and -not (Test-BuildCurrent)) {
    Write-Host 'out/KvmPS is missing or older than the sources: building first.'
    Invoke-Build
}
elseif ('Test' -in $Task) {
    # dotnet test --no-build needs the test projects built too.
    Invoke-Native dotnet @('build', ([IO.Path]::Combine($root, 'KvmPS.sln')), '-c', $Configuration, "-p:Version=$version", '-nologo', '-v', 'q', '-clp:ErrorsOnly')
}
if ('Test' -in $Task) { Invoke-Test }
if ('Demo' -in $Task) { Invoke-Demo }
if ('Package' -in $Task) { Invoke-Package }
