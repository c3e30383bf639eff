# Issue 7: many hosts, -ThrottleLimit / -AsJob, a dying daemon (our own private libvirtd, never the shared one),
# blocked calls that honour Ctrl+C and -OperationTimeoutSec.
BeforeAll {
    . $PSScriptRoot/common.ps1

    # Start-PrivateLibvirtd / Stop-PrivateLibvirtd (common.ps1): a private daemon as 'nobody' on its own socket.
    # Times at which QEMU saw each ACPI power-button press (its POWERDOWN event), by VM name, as virsh prints
    # them: an observer independent of the module.
    # Returns once the watcher demonstrably sees events: it logs $Probe's STOP/RESUME (a suspend and resume).
    function Start-PowerdownLog([string] $Path, [string] $Probe) {
        $watcher = Start-Process virsh -ArgumentList '-c', 'qemu:///system', 'qemu-monitor-event', '--loop', '--timestamp' -RedirectStandardOutput $Path -PassThru
        $sw = [Diagnostics.Stopwatch]::StartNew()
        do {
            & virsh -c qemu:///system suspend $Probe *> $null
            & virsh -c qemu:///system resume $Probe *> $null
            Start-Sleep -Milliseconds 500
        } until ((Get-Content $Path -Raw -ErrorAction SilentlyContinue) -match "event RESUME for domain '$Probe'" -or $sw.Elapsed.TotalSeconds -gt 60)
        $watcher
    }
    function Read-PowerdownLog([string] $Path, [string[]] $Names) {
        foreach ($line in Get-Content $Path -ErrorAction SilentlyContinue) {
            if ($line -match "^(\S+ \S+)\+0000: event POWERDOWN for domain '([^']+)'" -and $Matches[2] -in $Names) {
                [pscustomobject]@{ Name = $Matches[2]; Time = [datetime]::ParseExact($Matches[1], 'yyyy-MM-dd HH:mm:ss.fff', $null) }
            }
        }
    }

    $script:CanRunDaemon = [bool](Get-Command libvirtd -ErrorAction SilentlyContinue) -and [bool](Get-Command setpriv -ErrorAction SilentlyContinue) -and ((id -u) -eq '0')
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "kvmps-t-pd-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $script:Uri = "test+unix:///default?socket=$Dir/run/libvirt-sock"
    if ($CanRunDaemon) { $null = Start-PrivateLibvirtd $Dir }
}

AfterAll {
    if ($CanRunDaemon) {
        Get-KvmConnection | Where-Object { $_.RequestedUri -like "*$Dir*" } | Disconnect-KvmHost -ErrorAction SilentlyContinue
        Stop-PrivateLibvirtd $Dir -Kill
        Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
    }
}

Describe 'A dying daemon' -Tag System {
    BeforeEach {
        if (-not $CanRunDaemon) { Set-ItResult -Skipped -Because 'needs root, libvirtd and setpriv to run a private daemon'; return }
        if (-not (Test-Path "$Dir/pid")) { $null = Start-PrivateLibvirtd $Dir }
    }

    It 'fails fast with ConnectionLost when the daemon is killed, and reconnects by itself when it is back' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 1 -KeepAliveCount 2
        (Get-KvmVm -Connection $c -Name test).State | Should -Be 'Running'
        Stop-PrivateLibvirtd $Dir -Kill
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $null = Get-KvmVm -Connection $c -ErrorAction SilentlyContinue -ErrorVariable err
        $sw.Stop()
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionLost,*'
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
        $c.IsAlive | Should -BeFalse

        $null = Start-PrivateLibvirtd $Dir
        (Get-KvmVm -Connection $c -Name test).Name | Should -Be 'test'
        $c.IsAlive | Should -BeTrue
        Disconnect-KvmHost $c
    }

    It 'detects a frozen daemon within the keepalive window instead of hanging' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 1 -KeepAliveCount 2
        $null = Get-KvmVm -Connection $c
        $daemonPid = [int](Get-Content "$Dir/pid" -Raw)
        & kill -STOP $daemonPid
        try {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $null = Get-KvmVm -Connection $c -ErrorAction SilentlyContinue -ErrorVariable err
            $sw.Stop()
        }
        finally { & kill -CONT $daemonPid }
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionLost,*'
        # keepalive 1 s x 2: dead after about 3 s; allow for a loaded machine
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 10
        # the daemon answers again: the next command reconnects
        (Get-KvmVm -Connection $c -Name test).Name | Should -Be 'test'
        Disconnect-KvmHost $c
    }

    It 'gives up on a blocked call after -OperationTimeoutSec even without keepalive' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0 -OperationTimeoutSec 2
        $null = Get-KvmHost -Connection $c
        $daemonPid = [int](Get-Content "$Dir/pid" -Raw)
        & kill -STOP $daemonPid
        try {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $null = Get-KvmVm -Connection $c -ErrorAction SilentlyContinue -ErrorVariable err
            $sw.Stop()
        }
        finally { & kill -CONT $daemonPid }
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'OperationTimeout,*'
        $err[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $sw.Elapsed.TotalSeconds | Should -BeGreaterThan 1.5
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 6
        (Get-KvmVm -Connection $c -Name test).Name | Should -Be 'test'
        Disconnect-KvmHost $c
    }

    It 'stops a blocked call on Ctrl+C' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0
        $null = Get-KvmHost -Connection $c
        $daemonPid = [int](Get-Content "$Dir/pid" -Raw)
        $rs = [runspacefactory]::CreateRunspace()
        $rs.Open()
        & kill -STOP $daemonPid
        try {
            $ps = [powershell]::Create()
            $ps.Runspace = $rs
            $null = $ps.AddCommand('Import-Module').AddArgument($ModulePath).Invoke()
            $ps.Commands.Clear()
            $null = $ps.AddCommand('Get-KvmVm').AddParameter('Connection', $c)
            $async = $ps.BeginInvoke()
            Start-Sleep -Milliseconds 1500
            $ps.InvocationStateInfo.State | Should -Be 'Running' -Because "it is blocked on the frozen daemon ($($ps.InvocationStateInfo.Reason))"
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $sw.Stop()
            try { $null = $ps.EndInvoke($async) } catch { $null = $_ }
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            # a call that watches the token gets 2 s to clean up; a blocked one is then left behind
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
            $ps.Dispose()
        }
        finally { & kill -CONT $daemonPid; $rs.Dispose() }
        Disconnect-KvmHost $c
    }

    It 'restores event subscriptions after the daemon comes back' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 1 -KeepAliveCount 2
        $id = "kvmps-t-ev-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $null = Register-ObjectEvent -InputObject $c -EventName VmStateChanged -SourceIdentifier $id
        try {
            $c.EventSubscriptionCount | Should -Be 1
            & virsh -c $Uri suspend test *> $null
            $e = Wait-Event -SourceIdentifier $id -Timeout 10
            $e.SourceEventArgs.Kind | Should -Be 'Suspended'
            $e.SourceEventArgs.VMName | Should -Be 'test'
            Remove-Event -SourceIdentifier $id

            Stop-PrivateLibvirtd $Dir -Kill
            $null = Start-PrivateLibvirtd $Dir
            # nothing calls the connection: the background retry reopens it and registers the subscription again
            $sw = [Diagnostics.Stopwatch]::StartNew()
            while (-not $c.IsAlive -and $sw.Elapsed.TotalSeconds -lt 15) { Start-Sleep -Milliseconds 200 }
            $c.IsAlive | Should -BeTrue
            & virsh -c $Uri suspend test *> $null   # a fresh daemon: 'test' runs again
            $e = Wait-Event -SourceIdentifier $id -Timeout 10
            $e | Should -Not -BeNullOrEmpty
            $e.SourceEventArgs.Kind | Should -Be 'Suspended'
        }
        finally {
            Unregister-Event -SourceIdentifier $id -ErrorAction SilentlyContinue
            Remove-Event -SourceIdentifier $id -ErrorAction SilentlyContinue
        }
        $c.EventSubscriptionCount | Should -Be 0
        Disconnect-KvmHost $c
    }
}

Describe 'Many hosts' -Tag System {
    It 'merges results of several hosts, each object naming its host; an unreachable host is one error' {
        if (-not $CanRunDaemon -or -not (Test-SystemLibvirt)) { Set-ItResult -Skipped -Because 'needs qemu:///system and a private daemon'; return }
        if (-not (Test-Path "$Dir/pid")) { $null = Start-PrivateLibvirtd $Dir }
        $name = New-SystemTestVm -Name (New-TestName 'mh')
        try {
            $dead = "test+unix:///default?socket=$Dir/run/missing-sock"
            $vms = Get-KvmVm -Connection $SystemUri, $dead, $Uri -ErrorAction SilentlyContinue -ErrorVariable err
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
            $err[0].TargetObject | Should -Be $dead
            ($vms | Where-Object Name -EQ $name).Connection.Uri | Should -Be 'qemu:///system'
            ($vms | Where-Object Name -EQ 'test').Connection.RequestedUri | Should -Be $Uri
            @($vms.HostName | Where-Object { $_ }).Count | Should -Be $vms.Count
        }
        finally { Remove-SystemTestVm $name }
    }
}

Describe '-ThrottleLimit and -AsJob' -Tag TestDriver {
    BeforeAll {
        $script:c = Connect-KvmHost test:///default -NotDefault
        $script:p = "kvmps-t-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        1..12 | ForEach-Object { $null = New-KvmVm -Connection $c -Name "$p-$_" -MemoryBytes 64MB -NoNetwork }
    }
    AfterAll {
        Get-KvmVm -Connection $c -Name "$p-*" | Stop-KvmVm -TurnOff -ErrorAction SilentlyContinue
        Get-KvmVm -Connection $c -Name "$p-*" | Remove-KvmVm -Confirm:$false -ErrorAction SilentlyContinue
    }

    It 'starts and stops many VMs in parallel and writes each one once' {
        $started = Start-KvmVm -Connection $c -Name "$p-*" -ThrottleLimit 6 -Passthru
        @($started).Count | Should -Be 12
        @($started.Name | Sort-Object -Unique).Count | Should -Be 12
        @(Get-KvmVm -Connection $c -Name "$p-*" | Where-Object State -EQ 'Running').Count | Should -Be 12
        $stopped = Get-KvmVm -Connection $c -Name "$p-*" | Stop-KvmVm -TurnOff -ThrottleLimit 4 -Passthru
        @($stopped | Where-Object State -EQ 'ShutOff').Count | Should -Be 12
    }

    It 'reports each failing VM as its own error while the others go on' {
        Start-KvmVm -Connection $c -Name "$p-1"
        $out = Start-KvmVm -Connection $c -Name "$p-1", "$p-2", "$p-3" -ThrottleLimit 3 -Passthru -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmStateInvalid,*'
        $err[0].TargetObject | Should -Be "$p-1"
        @($out.Name | Sort-Object) | Should -Be @("$p-2", "$p-3")
        Stop-KvmVm -Connection $c -Name "$p-1", "$p-2", "$p-3" -TurnOff
    }

    It 'runs as a job with -AsJob' {
        $job = Start-KvmVm -Connection $c -Name "$p-*" -AsJob -ThrottleLimit 4 -Passthru
        $job | Should -BeOfType ([KvmPS.Jobs.KvmPSJob])
        $job.PSJobTypeName | Should -Be 'KvmPSJob'
        $null = Wait-Job $job -Timeout 60
        $job.State | Should -Be 'Completed'
        $out = Receive-Job $job
        @($out).Count | Should -Be 12
        @($out | Where-Object State -EQ 'Running').Count | Should -Be 12
        (Get-Job -Id $job.Id).Id | Should -Be $job.Id
        Remove-Job $job

        $job = Stop-KvmVm -Connection $c -Name "$p-*", 'kvmps-t-no-such-vm' -TurnOff -AsJob -ErrorAction SilentlyContinue -ErrorVariable err
        # a name that matches nothing is reported while resolving, before the job
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmNotFound,*'
        $null = Wait-Job $job -Timeout 60
        $job.State | Should -Be 'Completed'
        @(Get-KvmVm -Connection $c -Name "$p-*" | Where-Object State -EQ 'ShutOff').Count | Should -Be 12
        Remove-Job $job
    }

    It 'checkpoints, restores and removes snapshots of many VMs in parallel and as a job' {
        $snaps = Checkpoint-KvmVm -Connection $c -Name "$p-*" -SnapshotName s1 -ThrottleLimit 4 -Passthru
        @($snaps).Count | Should -Be 12
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-1" -SnapshotName s2
        $restored = Restore-KvmSnapshot -Connection $c -VMName "$p-*" -Name s1 -ThrottleLimit 4 -Passthru -Confirm:$false
        @($restored).Count | Should -Be 12
        # two snapshots of the same VM in one parallel command: they run one after the other, both succeed
        $job = Remove-KvmSnapshot -Connection $c -VMName "$p-*" -Name s1, s2 -AsJob -ThrottleLimit 4 -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err | Where-Object { $_.FullyQualifiedErrorId -notlike 'SnapshotNotFound,*' } | Should -BeNullOrEmpty
        $null = Wait-Job $job -Timeout 60
        $job.State | Should -Be 'Completed'
        $job.Error.Count | Should -Be 0
        @(Get-KvmSnapshot -Connection $c -VMName "$p-*" -ErrorAction SilentlyContinue).Count | Should -Be 0
        Remove-Job $job
    }

    It 'asks before each VM and runs nothing with -WhatIf' {
        $r = Start-KvmVm -Connection $c -Name "$p-*" -ThrottleLimit 4 -WhatIf -Passthru
        $r | Should -BeNullOrEmpty
        @(Get-KvmVm -Connection $c -Name "$p-*" | Where-Object State -EQ 'Running').Count | Should -Be 0
    }
}

Describe '-ThrottleLimit runs items at the same time on qemu:///system' -Tag System {
    It 'shuts down at most -ThrottleLimit VMs at once, and those together (AsJob: <AsJob>)' -TestCases @(@{ AsJob = $false }, @{ AsJob = $true }) {
        if (-not (Test-SystemLibvirt)) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # Firmware-only guests ignore ACPI: each graceful stop waits its whole -TimeoutSec, then -Force powers it off.
        # Two slots for three VMs: two presses at once, the third one timeout later. One after another would
        # space all three a timeout apart; no limit would press all three at once.
        $timeout = 6
        $names = 1..3 | ForEach-Object { New-SystemTestVm -Name (New-TestName "tl$_") -Start }
        $log = Join-Path $TestDrive "powerdown-$AsJob.log"
        $watcher = Start-PowerdownLog $log $names[0]
        try {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            if ($AsJob) {
                $job = Stop-KvmVm -Connection $SystemUri -Name $names -ThrottleLimit 2 -TimeoutSec $timeout -Force -AsJob
                $null = Wait-Job $job -Timeout 120
                $job.State | Should -Be 'Completed'
                @($job.ChildJobs.Warning + $job.Warning | Where-Object { $_ }) | Should -Not -BeNullOrEmpty
                Remove-Job $job
            }
            else {
                Stop-KvmVm -Connection $SystemUri -Name $names -ThrottleLimit 2 -TimeoutSec $timeout -Force -WarningVariable warn -WarningAction SilentlyContinue
                $warn | Should -HaveCount 3 -Because 'each VM timed out and was powered off'
            }
            $sw.Stop()
            foreach ($n in $names) { (& virsh -c qemu:///system domstate $n) -join '' | Should -Match 'shut off' }
            Start-Sleep -Milliseconds 500
            $presses = @(Read-PowerdownLog $log $names | Sort-Object Time)
            $presses | Should -HaveCount 3 -Because "each VM got one ACPI request ($((Get-Content $log -ErrorAction SilentlyContinue) -join ' | '))"
            @($presses.Name | Sort-Object -Unique) | Should -HaveCount 3
            $second = ($presses[1].Time - $presses[0].Time).TotalSeconds
            $third = ($presses[2].Time - $presses[0].Time).TotalSeconds
            $second | Should -BeLessThan ($timeout / 2) -Because 'two VMs were stopping at the same time'
            $third | Should -BeGreaterThan ($timeout * 0.75) -Because 'the third waited for a free slot (-ThrottleLimit 2)'
        }
        finally {
            Stop-Process -Id $watcher.Id -ErrorAction SilentlyContinue
            $names | ForEach-Object { Remove-SystemTestVm $_ }
        }
    }
}

Describe 'Ctrl+C with parallel work' -Tag System {
    It 'stops waiting graceful shutdowns cleanly and leaves no libvirt job' {
        if (-not (Test-SystemLibvirt)) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # firmware-only guests never answer ACPI: Stop-KvmVm would wait its whole timeout
        $names = 1..3 | ForEach-Object { New-SystemTestVm -Name (New-TestName "cc$_") -Start }
        $log = Join-Path $TestDrive 'powerdown-ctrlc.log'
        $watcher = Start-PowerdownLog $log $names[0]
        try {
            $rs = [runspacefactory]::CreateRunspace()
            $rs.Open()
            try {
                $ps = [powershell]::Create()
                $ps.Runspace = $rs
                $null = $ps.AddCommand('Import-Module').AddArgument($ModulePath).Invoke()
                $ps.Commands.Clear()
                $null = $ps.AddCommand('Stop-KvmVm').AddParameter('Connection', $SystemUri).AddParameter('Name', $names).AddParameter('ThrottleLimit', 3).AddParameter('TimeoutSec', 120)
                $async = $ps.BeginInvoke()
                # all three are waiting for their guests at once (-ThrottleLimit 3): each got its ACPI request
                $wait = [Diagnostics.Stopwatch]::StartNew()
                do {
                    Start-Sleep -Milliseconds 200
                    $pressed = @($names | Where-Object { (Get-Content $log -Raw -ErrorAction SilentlyContinue) -match "POWERDOWN for domain '$_'" })
                } while ($pressed.Count -lt 3 -and $wait.Elapsed.TotalSeconds -lt 30)
                $pressed | Should -HaveCount 3 -Because 'the three graceful stops run at the same time'
                $ps.InvocationStateInfo.State | Should -Be 'Running'
                $sw = [Diagnostics.Stopwatch]::StartNew()
                $ps.Stop()
                $sw.Stop()
                $stopError = $null
                try { $null = $ps.EndInvoke($async) } catch { $stopError = $_.Exception }
                $stopError.GetBaseException() | Should -BeOfType ([System.Management.Automation.PipelineStoppedException])
                $ps.InvocationStateInfo.State | Should -Be 'Stopped'
                $sw.Elapsed.TotalSeconds | Should -BeLessThan 10
                $ps.Dispose()
            }
            finally { $rs.Dispose() }
            foreach ($n in $names) {
                (& virsh -c qemu:///system domstate $n) -join '' | Should -Match 'running'
                (& virsh -c qemu:///system domjobinfo $n) -join ' ' | Should -Match 'Job type:\s+None'
            }
        }
        finally {
            Stop-Process -Id $watcher.Id -ErrorAction SilentlyContinue
            $names | ForEach-Object { Remove-SystemTestVm $_ }
        }
    }
}
