# One KvmConnection used from many runspaces at once (ForEach-Object -Parallel), as parallel runbooks do.
# KVMPS_CONCURRENCY_OPS sets the operations per runspace on test:///default (default 25; issue 7 asks for 200).
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')

    # The cycle every test-driver runspace runs on its own VM; op i does kind i % 8.
    #   0 Get-KvmVm -Name own        4 Set-KvmVm own -Description "r<r>-<i>" (running)
    #   1 Get-KvmVm -Name <prefix>*  5 Stop-KvmVm own -TurnOff
    #   2 Start-KvmVm own            6 Set-KvmVm own -MemoryBytes 48 or 64 MiB (shut off; alternate cycles)
    #   3 Get-KvmVm own: Running     7 Get-KvmVm -Name <the next runspace's VM> (read while it changes)
    # What a VM must look like after $Ops operations of that cycle, computed independently of the runspaces.
    function Get-ExpectedFinal([int] $Ops, [int] $Runspace) {
        $lastStart = -1; $lastStop = -1; $memory = 64MB; $description = ''
        for ($i = 0; $i -lt $Ops; $i++) {
            switch ($i % 8) {
                2 { $lastStart = $i }
                5 { $lastStop = $i }
                4 { $description = "r$Runspace-$i" }
                6 { $memory = if ([Math]::Floor($i / 8) % 2) { 48MB } else { 64MB } }
            }
        }
        [pscustomobject]@{ State = $(if ($lastStart -gt $lastStop) { 'Running' } else { 'ShutOff' }); MemoryBytes = [uint64]$memory; Description = $description }
    }

    # The most runspaces that were inside their operation loops at the same moment (from their start/end times).
    function Get-MaxOverlap([object[]] $Results) {
        $edges = foreach ($r in $Results) { [pscustomobject]@{ T = $r.Start; D = 1 }; [pscustomobject]@{ T = $r.End; D = -1 } }
        $now = 0; $max = 0
        # at equal times an end counts before a start: touching intervals do not overlap
        foreach ($e in $edges | Sort-Object T, D) { $now += $e.D; if ($now -gt $max) { $max = $now } }
        $max
    }
}

Describe 'One connection shared by 16 runspaces on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:ops = if ($env:KVMPS_CONCURRENCY_OPS) { [int]$env:KVMPS_CONCURRENCY_OPS } else { 25 }
        $script:runspaces = 16
        $script:p = "kvmps-cc-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $script:conn = Connect-KvmHost -Uri 'test:///default' -NotDefault
        foreach ($r in 0..($runspaces - 1)) {
            $null = New-KvmVm -Connection $conn -Name "$p-$r" -MemoryBytes 64MB -NoNetwork
        }

        $modulePath = $script:ModulePath
        $prefix = $p
        $count = $runspaces
        $opsPerRunspace = $ops
        $ErrorActionPreference = 'Continue'   # errors from the runspaces are collected (-ErrorVariable), not thrown
        $script:connectedAt = $conn.ConnectedAt
        # Every runspace waits here until all have imported the module, then all start their operations at once.
        $barrier = [Threading.Barrier]::new($runspaces)
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $script:results = @(0..($runspaces - 1) | ForEach-Object -ThrottleLimit 16 -ErrorVariable parallelErrors -Parallel {
                $r = $_
                $errors = [Collections.Generic.List[string]]::new()
                $done = 0
                $start = $end = [long]0
                $Error.Clear()
                try {
                    $ErrorActionPreference = 'Stop'
                    Import-Module $using:modulePath
                    $c = $using:conn
                    $own = "$using:prefix-$r"
                    $next = "$using:prefix-$(($r + 1) % $using:count)"
                    if (-not ($using:barrier).SignalAndWait([TimeSpan]::FromSeconds(120))) { throw 'the other runspaces did not run at the same time' }
                    $start = [Diagnostics.Stopwatch]::GetTimestamp()
                    for ($i = 0; $i -lt $using:opsPerRunspace; $i++) {
                        try {
                            switch ($i % 8) {
                                0 { if ((Get-KvmVm -Connection $c -Name $own).Name -ne $own) { throw "Get-KvmVm -Name $own returned another VM." } }
                                1 {
                                    $n = @(Get-KvmVm -Connection $c -Name "$using:prefix-*").Count
                                    if ($n -ne $using:count) { throw "Get-KvmVm -Name $using:prefix-* returned $n VMs, expected $using:count." }
                                }
                                2 { Start-KvmVm -Connection $c -Name $own }
                                3 {
                                    $state = "$((Get-KvmVm -Connection $c -Name $own).State)"
                                    if ($state -ne 'Running') { throw "$own is $state after Start-KvmVm." }
                                }
                                4 { Set-KvmVm -Connection $c -Name $own -Description "r$r-$i" -Confirm:$false }
                                5 { Stop-KvmVm -Connection $c -Name $own -TurnOff -Confirm:$false }
                                6 { Set-KvmVm -Connection $c -Name $own -MemoryBytes $(if ([Math]::Floor($i / 8) % 2) { 48MB } else { 64MB }) -Confirm:$false }
                                7 { if ((Get-KvmVm -Connection $c -Name $next).Name -ne $next) { throw "Get-KvmVm -Name $next returned another VM." } }
                            }
                            $done++
                        }
                        catch { $errors.Add("runspace $r, op $i ($($i % 8)): $($_.Exception.Message)") }
                    }
                    $end = [Diagnostics.Stopwatch]::GetTimestamp()
                }
                catch { $errors.Add("runspace ${r}: $($_.Exception.Message)") }
                [pscustomobject]@{
                    Runspace = $r
                    Done     = $done
                    Start    = $start
                    End      = $end
                    Errors   = $errors.ToArray()
                    ErrorVar = @($Error | ForEach-Object { "runspace ${r}: $_" })
                }
            })
        $sw.Stop()
        $barrier.Dispose()
        $script:parallelErrors = @($parallelErrors | ForEach-Object { "$_" })
        $script:overlap = Get-MaxOverlap $results
        Write-Host ("    {0} runspaces x {1} operations on one connection ({2} backend): {3:0.00} s ({4:0} ops/s), up to {5} at once" -f `
                $runspaces, $ops, $conn.Backend, $sw.Elapsed.TotalSeconds, ($runspaces * $ops / $sw.Elapsed.TotalSeconds), $overlap)
    }
    AfterAll {
        if ($conn) {
            Get-KvmVm -Connection $conn -Name "$p-*" | Stop-KvmVm -TurnOff -Confirm:$false -ErrorAction SilentlyContinue
            Get-KvmVm -Connection $conn -Name "$p-*" | Remove-KvmVm -Force -Confirm:$false
            Disconnect-KvmHost -Connection $conn
        }
    }

    It 'every runspace ran all its operations without an error' {
        $results | Should -HaveCount $runspaces
        ($results.Runspace | Sort-Object) | Should -Be @(0..($runspaces - 1))
        $all = @($results.Errors) + @($results.ErrorVar) + @($parallelErrors) | Where-Object { $_ }
        $all | Should -HaveCount 0 -Because ($all -join ' | ')
        $results | ForEach-Object { $_.Done | Should -Be $ops -Because "runspace $($_.Runspace) completes every operation" }
    }

    It 'ran the runspaces at the same time, not one after another' {
        # all met at the barrier (else each reported an error above); their operation loops overlapped in time
        $results | ForEach-Object { $_.End | Should -BeGreaterThan $_.Start -Because "runspace $($_.Runspace) ran its loop" }
        $overlap | Should -BeGreaterOrEqual ($runspaces / 2) -Because 'at least half the runspaces were inside their operations at the same moment'
    }

    It 'leaves every VM in the state, memory and description its own runspace set last' {
        $vms = @(Get-KvmVm -Connection $conn -Name "$p-*")
        $vms | Should -HaveCount $runspaces
        foreach ($r in 0..($runspaces - 1)) {
            $expected = Get-ExpectedFinal $ops $r
            $vm = $vms | Where-Object Name -eq "$p-$r"
            "$($vm.State)" | Should -Be $expected.State -Because "$p-$r ran $ops operations"
            $vm.MemoryBytes | Should -Be $expected.MemoryBytes -Because "$p-$r ran $ops operations"
            "$($vm.Description)" | Should -Be $expected.Description -Because "$p-$r ran $ops operations"
        }
    }

    It 'keeps the process and the shared connection alive' {
        $conn.IsAlive | Should -BeTrue
        $conn.ConnectedAt | Should -Be $connectedAt -Because 'the one connection was never lost and reopened'
        (Get-KvmHost -Connection $conn).HostName | Should -Not -BeNullOrEmpty
        @(Get-KvmVm -Connection $conn -Name "$p-*") | Should -HaveCount $runspaces
    }
}

Describe 'One connection shared by 4 runspaces on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:runspaces = 4
        $script:sysOps = 10
        $script:p = New-TestName 'cc'
        $script:sys = $null
        if (-not $skip) {
            $script:sys = Connect-KvmHost -Uri $SystemUri -NotDefault
            foreach ($r in 0..($runspaces - 1)) {
                $null = New-KvmVm -Connection $sys -Name "$p-$r" -MemoryBytes 128MB -NoNetwork
            }

            $modulePath = $script:ModulePath
            $prefix = $p
            $count = $runspaces
            $opsPerRunspace = $sysOps
            $ErrorActionPreference = 'Continue'   # errors from the runspaces are collected (-ErrorVariable), not thrown
            $barrier = [Threading.Barrier]::new($runspaces)
            $script:results = @(0..($runspaces - 1) | ForEach-Object -ThrottleLimit $runspaces -ErrorVariable parallelErrors -Parallel {
                    $r = $_
                    $errors = [Collections.Generic.List[string]]::new()
                    $done = 0
                    $start = $end = [long]0
                    $Error.Clear()
                    try {
                        $ErrorActionPreference = 'Stop'
                        Import-Module $using:modulePath
                        $c = $using:sys
                        $own = "$using:prefix-$r"
                        if (-not ($using:barrier).SignalAndWait([TimeSpan]::FromSeconds(120))) { throw 'the other runspaces did not run at the same time' }
                        $start = [Diagnostics.Stopwatch]::GetTimestamp()
                        for ($i = 0; $i -lt $using:opsPerRunspace; $i++) {
                            try {
                                # Even ops read (own VM, then all of this test's VMs by pattern); odd ops set
                                # memory (96 / 128 MiB alternately) and the description.
                                if ($i % 2 -eq 0) {
                                    if ((Get-KvmVm -Connection $c -Name $own).Name -ne $own) { throw "Get-KvmVm -Name $own returned another VM." }
                                    $n = @(Get-KvmVm -Connection $c -Name "$using:prefix-*").Count
                                    if ($n -ne $using:count) { throw "Get-KvmVm -Name $using:prefix-* returned $n VMs, expected $using:count." }
                                }
                                else {
                                    Set-KvmVm -Connection $c -Name $own -MemoryBytes $(if ($i % 4 -eq 1) { 96MB } else { 128MB }) -Description "r$r-$i" -Confirm:$false
                                }
                                $done++
                            }
                            catch { $errors.Add("runspace $r, op ${i}: $($_.Exception.Message)") }
                        }
                        $end = [Diagnostics.Stopwatch]::GetTimestamp()
                    }
                    catch { $errors.Add("runspace ${r}: $($_.Exception.Message)") }
                    [pscustomobject]@{ Runspace = $r; Done = $done; Start = $start; End = $end; Errors = $errors.ToArray(); ErrorVar = @($Error | ForEach-Object { "runspace ${r}: $_" }) }
                })
            $barrier.Dispose()
            $script:parallelErrors = @($parallelErrors | ForEach-Object { "$_" })
            $script:overlap = Get-MaxOverlap $results
            Write-Host "    $runspaces runspaces on qemu:///system: up to $overlap inside their operations at once"
        }
    }
    AfterAll {
        if (-not $skip) {
            if ($sys) { Disconnect-KvmHost -Connection $sys -ErrorAction SilentlyContinue }
            Remove-SystemTestObjects $p
        }
    }

    It 'runs every get and set without an error' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $results | Should -HaveCount $runspaces
        $all = @($results.Errors) + @($results.ErrorVar) + @($parallelErrors) | Where-Object { $_ }
        $all | Should -HaveCount 0 -Because ($all -join ' | ')
        $results | ForEach-Object { $_.Done | Should -Be $sysOps -Because "runspace $($_.Runspace) completes every operation" }
        $results | ForEach-Object { $_.End | Should -BeGreaterThan $_.Start -Because "runspace $($_.Runspace) ran its loop" }
        $overlap | Should -BeGreaterOrEqual ($runspaces / 2) -Because 'the runspaces were inside their operations at the same time'
    }

    It 'leaves every VM shut off with the memory and description its runspace set last' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # The last odd op is 9: 9 % 4 = 1, so 96 MiB and description r<r>-9.
        foreach ($r in 0..($runspaces - 1)) {
            $vm = Get-KvmVm -Connection $sys -Name "$p-$r"
            "$($vm.State)" | Should -Be 'ShutOff'
            $vm.MemoryBytes | Should -Be 96MB
            $vm.Description | Should -Be "r$r-9"
            $xml = [xml](& virsh -c $SystemUri dumpxml "$p-$r" --inactive)
            [uint64]$xml.domain.currentMemory.'#text' * 1KB | Should -Be 96MB
        }
        $sys.IsAlive | Should -BeTrue
    }
}
