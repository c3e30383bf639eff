# -AsJob and -ThrottleLimit on Backup, Suspend, Resume, Restart, Wait and Remove, and Stop-Job, on the real daemon.
# Overlap is proven, not assumed: the QEMU process of the FIRST VM is frozen (SIGSTOP) so that libvirt's call for
# it blocks; the other VMs are done while it is still blocked only if they run at the same time (one after
# the other, in order, they would wait behind the first). Those tests use a managed-backend connection: through
# the native backend (libvirt's own client library), one connection's calls wait for a blocked call on it,
# whatever KvmPS does (the same two power-offs take 25 s there and 13 s through the managed backend).
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:skip = -not (Test-SystemLibvirt)
    $script:c = 'qemu:///system'
    $script:p = New-TestName 'jb'

    function Get-QemuPid([string] $Name) { [int](Get-Content "/run/libvirt/qemu/$Name.pid" -Raw).Trim() }

    function Get-State([string] $Name) { ((& virsh -c qemu:///system domstate $Name 2>$null) -join '').Trim() }

    # Freezes the first VM's QEMU, runs $Body, and always thaws it again.
    function Invoke-WithFrozen([string] $Name, [scriptblock] $Body) {
        $qemu = Get-QemuPid $Name
        & kill -STOP $qemu
        try { & $Body }
        finally { & kill -CONT $qemu }
    }

    if (-not $skip) {
        $script:m = Connect-KvmHost -Uri qemu:///system -Backend Managed -NotDefault
        $script:vms = 1..3 | ForEach-Object { New-SystemTestVm -Name "$p-$_" -Start }
    }
}

AfterAll {
    if (-not $skip) {
        Get-Job | Where-Object PSJobTypeName -eq 'KvmPSJob' | Remove-Job -Force -ErrorAction SilentlyContinue
        Remove-SystemTestObjects $p
        if ($m) { $m.Dispose() }
    }
}

Describe 'Suspend-KvmVm and Resume-KvmVm in parallel' -Tag System {
    It 'suspends as a job with -ThrottleLimit: the other VMs are paused while the first one is still blocked' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Invoke-WithFrozen $vms[0] {
            $script:job = Suspend-KvmVm -Connection $m -Name $vms -ThrottleLimit 3 -AsJob -Passthru
            $job | Should -BeOfType ([KvmPS.Jobs.KvmPSJob])
            Wait-Until { (Get-State $vms[1]) -eq 'paused' -and (Get-State $vms[2]) -eq 'paused' } | Should -BeTrue -Because 'VMs 2 and 3 did not wait for VM 1'
            Get-State $vms[0] | Should -Be 'running' -Because 'its suspend is blocked in the frozen QEMU'
            $job.State | Should -Be 'Running'
            @($job.Output.Name | Sort-Object) | Should -Be @($vms[1], $vms[2]) -Because 'finished VMs are written as they finish'
        }
        $null = Wait-Job $job -Timeout 60
        $job.State | Should -Be 'Completed'
        $out = @(Receive-Job $job)
        @($out.Name | Sort-Object) | Should -Be @($vms | Sort-Object)
        @($out | Where-Object State -EQ 'Paused').Count | Should -Be 3
        $vms | ForEach-Object { Get-State $_ | Should -Be 'paused' }
        Remove-Job $job
    }

    It 'resumes with -ThrottleLimit (no job): the others resume while the first is blocked' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $seen = Join-Path $TestDrive 'resume-seen'
        $qemu = Get-QemuPid $vms[0]
        & kill -STOP $qemu
        try {
            # 4 s into the command, record the three states, then thaw the first VM's QEMU
            $proc = Start-Bash "sleep 4; for v in $($vms -join ' '); do virsh -c qemu:///system domstate `$v | head -n1; done > '$seen'; kill -CONT $qemu"
            $out = Resume-KvmVm -Connection $m -Name $vms -ThrottleLimit 3 -Passthru
        }
        finally { & kill -CONT $qemu }
        $proc.WaitForExit(20000) | Should -BeTrue
        $states = @(Get-Content $seen | ForEach-Object Trim)
        $states | Should -Be @('paused', 'running', 'running') -Because 'VMs 2 and 3 were resumed while VM 1 was blocked'
        @($out | Where-Object State -EQ 'Running').Count | Should -Be 3
        $vms | ForEach-Object { Get-State $_ | Should -Be 'running' }
    }
}

Describe 'Restart-KvmVm in parallel and as a job' -Tag System {
    It 'resets VMs as a job with -ThrottleLimit, the others finishing while the first is blocked' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # libvirt's reboot events show that each VM really was reset
        $events = Join-Path $TestDrive 'reboot-events'
        $listener = Start-Process -FilePath stdbuf -PassThru -RedirectStandardOutput $events -ArgumentList '-oL', 'virsh', '-c', 'qemu:///system', 'event', '--event', 'reboot', '--loop', '--timeout', '120'
        try {
            Start-Sleep -Seconds 1
            Invoke-WithFrozen $vms[0] {
                $script:job = Restart-KvmVm -Connection $m -Name $vms -Force -ThrottleLimit 3 -AsJob -Passthru
                Wait-Until { $job.Output.Count -ge 2 } | Should -BeTrue -Because 'VMs 2 and 3 did not wait for VM 1'
                @($job.Output.Name | Sort-Object) | Should -Be @($vms[1], $vms[2])
                $job.State | Should -Be 'Running'
            }
            $null = Wait-Job $job -Timeout 60
            $job.State | Should -Be 'Completed'
            $out = @(Receive-Job $job)
            @($out.Name | Sort-Object) | Should -Be @($vms | Sort-Object)
            @($out | Where-Object State -EQ 'Running').Count | Should -Be 3
            $vms | ForEach-Object { Get-State $_ | Should -Be 'running' }
            Wait-Until { $t = Get-Content $events -Raw -ErrorAction SilentlyContinue; $t -and @($vms | Where-Object { $t -match [regex]::Escape("'$_'") }).Count -eq 3 } 10 | Should -BeTrue -Because "each VM sends a reboot event: $(Get-Content $events -Raw -ErrorAction SilentlyContinue)"
        }
        finally { $listener | Stop-Process -Force -ErrorAction SilentlyContinue }
        Remove-Job $job
    }
}

Describe 'Wait-KvmVm in parallel, as a job, and Stop-Job' -Tag System {
    It 'waits for several VMs at once: three 3-second timeouts take about 3 s, not 9 s' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $null = Wait-KvmVm -Connection $c -Name $vms -For State -State Paused -TimeoutSec 3 -ThrottleLimit 3 -ErrorAction SilentlyContinue -ErrorVariable err
        $sw.Stop()
        $err.Count | Should -Be 3
        @($err | Where-Object FullyQualifiedErrorId -Like 'WaitTimeout,*').Count | Should -Be 3
        @($err.TargetObject | Sort-Object) | Should -Be @($vms | Sort-Object)
        $sw.Elapsed.TotalSeconds | Should -BeGreaterThan 2.8
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 7 -Because 'the three waits overlapped'
    }

    It 'waits as a job and writes each VM when its state comes' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $job = Wait-KvmVm -Connection $c -Name $vms -For State -State Paused -TimeoutSec 60 -ThrottleLimit 3 -AsJob -Passthru
        Start-Sleep -Seconds 1
        $job.State | Should -Be 'Running'
        $job.Output.Count | Should -Be 0
        & virsh -c $c suspend $vms[2] *> $null
        Wait-Until { $job.Output.Count -ge 1 } 20 | Should -BeTrue
        $job.Output[0].Name | Should -Be $vms[2] -Because 'the VM that changed is written first, while the others still wait'
        $job.State | Should -Be 'Running'
        & virsh -c $c suspend $vms[0] *> $null
        & virsh -c $c suspend $vms[1] *> $null
        $null = Wait-Job $job -Timeout 30
        $job.State | Should -Be 'Completed'
        $out = @(Receive-Job $job)
        @($out | Where-Object State -EQ 'Paused').Count | Should -Be 3
        Remove-Job $job
        $vms | ForEach-Object { & virsh -c $c resume $_ *> $null }
    }

    It 'Stop-Job stops a waiting job promptly, leaving the VMs as they were' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $job = Wait-KvmVm -Connection $c -Name $vms -For State -State ShutOff -TimeoutSec 300 -ThrottleLimit 3 -AsJob
        Start-Sleep -Seconds 1
        $job.State | Should -Be 'Running'
        $sw = [Diagnostics.Stopwatch]::StartNew()
        Stop-Job $job
        $null = Wait-Job $job -Timeout 20
        $sw.Stop()
        $job.State | Should -Be 'Stopped'
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 10
        $vms | ForEach-Object { Get-State $_ | Should -Be 'running' }
        Remove-Job $job
    }

    It 'Stop-Job stops a graceful shutdown job that would wait for minutes; no libvirt job is left behind' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # firmware-only guests never answer ACPI: the shutdown would wait its whole timeout
        $job = Stop-KvmVm -Connection $c -Name $vms -TimeoutSec 300 -ThrottleLimit 3 -AsJob
        Start-Sleep -Seconds 2
        $job.State | Should -Be 'Running'
        $sw = [Diagnostics.Stopwatch]::StartNew()
        Stop-Job $job
        $null = Wait-Job $job -Timeout 20
        $sw.Stop()
        $job.State | Should -Be 'Stopped'
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 10
        foreach ($n in $vms) {
            Get-State $n | Should -Be 'running'
            (& virsh -c $c domjobinfo $n) -join ' ' | Should -Match 'Job type:\s+None'
        }
        Remove-Job $job
    }
}

Describe 'Remove-KvmVm in parallel and as a job' -Tag System {
    It 'removes VMs as a job with -ThrottleLimit: three blocked power-offs overlap' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $gone = { param($n) & virsh -c qemu:///system dominfo $n *> $null; $LASTEXITCODE -ne 0 }
        # libvirt powers a frozen QEMU off with SIGTERM and only after about 10 s with SIGKILL: each removal
        # takes that long, so three of them one after the other would take 30 s or more
        $pids = $vms | ForEach-Object { Get-QemuPid $_ }
        $pids | ForEach-Object { & kill -STOP $_ }
        try {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $job = Remove-KvmVm -Connection $m -Name $vms -Force -ThrottleLimit 3 -AsJob -Confirm:$false
            $job | Should -BeOfType ([KvmPS.Jobs.KvmPSJob])
            $null = Wait-Job $job -Timeout 90
            $sw.Stop()
        }
        finally { $pids | ForEach-Object { & kill -CONT $_ 2>$null } }
        $job.State | Should -Be 'Completed'
        $job.Error.Count | Should -Be 0
        $vms | ForEach-Object { & $gone $_ | Should -BeTrue }
        $sw.Elapsed.TotalSeconds | Should -BeGreaterThan 8 -Because 'each power-off really waited for the frozen QEMU'
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 25 -Because 'the three removals ran at the same time'
        Remove-Job $job
    }
}

Describe 'Backup-KvmVm as a job and with -ThrottleLimit' -Tag System {
    BeforeAll {
        if (-not $skip) {
            $script:bk = 1..2 | ForEach-Object { (New-KvmVm -Connection $c -Name "$p-bk$_" -MemoryBytes 128MB -DiskSizeBytes 16MB -NoNetwork -Start).Name }
            $script:root = Join-Path ([IO.Path]::GetTempPath()) "$p-backups"
        }
    }
    AfterAll { if ($root) { Remove-Item $root -Recurse -Force -ErrorAction SilentlyContinue } }

    It 'backs up as a job and writes the backup' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $dest = Join-Path $root 'job'
        $job = Backup-KvmVm -Connection $c -Name $bk[0] -Destination $dest -AsJob
        $job | Should -BeOfType ([KvmPS.Jobs.KvmPSJob])
        $null = Wait-Job $job -Timeout 120
        $job.State | Should -Be 'Completed'
        $b = @(Receive-Job $job)
        $b.Count | Should -Be 1
        $b[0] | Should -BeOfType ([KvmPS.Core.KvmBackup])
        $b[0].VMName | Should -Be $bk[0]
        $b[0].Kind | Should -Be 'Full'
        $b[0].Disks[0].File | Should -Exist
        (& qemu-img info --output=json $b[0].Disks[0].File | ConvertFrom-Json).'virtual-size' | Should -Be 16MB
        Join-Path $dest 'kvmps-backup.json' | Should -Exist
        (& virsh -c $c domjobinfo $bk[0]) -join ' ' | Should -Match 'Job type:\s+None'
        Remove-Job $job
    }

    It 'backs up two VMs at once, and never lets two VMs share one backup set' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $dest = Join-Path $root 'shared'
        $out = @(Backup-KvmVm -Connection $c -Name $bk -Destination $dest -ThrottleLimit 2 -ErrorAction SilentlyContinue -ErrorVariable err)
        # a set belongs to one VM: exactly one of the two gets it, the other is refused
        $out.Count | Should -Be 1
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DestinationNotEmpty,*'
        $err[0].TargetObject | Should -Not -BeNullOrEmpty
        $set = Get-Content (Join-Path $dest 'kvmps-backup.json') -Raw | ConvertFrom-Json
        $set.VmName | Should -Be $out[0].VMName
        @(Get-KvmBackup -Path $dest).Count | Should -Be 1
        $bk | ForEach-Object { (& virsh -c $c domjobinfo $_) -join ' ' | Should -Match 'Job type:\s+None' }

    }
}
