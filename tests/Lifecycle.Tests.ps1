# Lifecycle behaviours on the real daemon (qemu:///system) that need no guest OS: Rename-KvmVm, and
# Wait-KvmVm woken by a libvirt event rather than by its slow safety-net poll.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:skip = -not (Test-SystemLibvirt)
    $script:c = 'qemu:///system'
    $script:p = New-TestName 'lc'

    function Get-DomInfo([string] $Name) {
        $h = @{}
        foreach ($line in (& virsh -c qemu:///system dominfo $Name 2>$null)) {
            if ($line -match '^([^:]+):\s*(.*)$') { $h[$Matches[1].Trim()] = $Matches[2].Trim() }
        }
        $h
    }
}

AfterAll { if (-not $skip) { Remove-SystemTestObjects $p } }

Describe 'Rename-KvmVm on qemu:///system' -Tag System {
    It 'renames a shut-off VM in the daemon, keeping its UUID, and refuses a running one' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $old = New-SystemTestVm -Name "$p-ren-a"
        $uuid = (Get-DomInfo $old)['UUID']
        $r = Rename-KvmVm -Connection $c -Name $old -NewName "$p-ren-b" -Passthru
        $r.Name | Should -Be "$p-ren-b"
        $r.Uuid | Should -Be ([guid]$uuid)
        (Get-DomInfo "$p-ren-b")['UUID'] | Should -Be $uuid -Because 'the daemon knows the VM by its new name'
        & virsh -c $c dominfo $old *> $null
        $LASTEXITCODE | Should -Not -Be 0 -Because 'the old name is gone from the daemon'
        (& virsh -c $c list --all --name) -contains $old | Should -BeFalse

        # a running VM keeps its name, with the state error
        $run = New-SystemTestVm -Name "$p-ren-r" -Start
        $null = Rename-KvmVm -Connection $c -Name $run -NewName "$p-ren-x" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmStateInvalid,*'
        $err[0].TargetObject | Should -Be $run
        (Get-DomInfo $run)['State'] | Should -Be 'running'
        & virsh -c $c dominfo "$p-ren-x" *> $null
        $LASTEXITCODE | Should -Not -Be 0
    }
}

Describe 'Stop-KvmVm -Save on qemu:///system' -Tag System {
    It 'saves the VM with a managed save that Start-KvmVm restores' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $name = New-SystemTestVm -Name "$p-save" -Start
        $saved = Stop-KvmVm -Connection $c -Name $name -Save -Passthru
        $saved.State | Should -Be 'ShutOff'
        $info = Get-DomInfo $name
        $info['State'] | Should -Be 'shut off'
        $info['Managed save'] | Should -Be 'yes'
        $started = Start-KvmVm -Connection $c -Name $name -Passthru
        $started.State | Should -Be 'Running'
        $info = Get-DomInfo $name
        $info['State'] | Should -Be 'running'
        $info['Managed save'] | Should -Be 'no' -Because 'the start consumed the saved image'
        # the domain log records the incoming migration that a restore is (a cold boot has none)
        (Get-Content "/var/log/libvirt/qemu/$name.log" -Raw) | Should -Match '-incoming'
    }
}

Describe 'Wait-KvmVm on qemu:///system' -Tag System {
    It 'returns as soon as the state changes (a libvirt event), not at its next re-check' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $name = New-SystemTestVm -Name "$p-wait" -Start
        # Four changes made from outside, each a moment after the wait began; a file gets the time virsh
        # returned. With an event subscription the wait re-checks the state only every 5 s, so a wait that
        # missed the events would return up to 5 s after each change (all four within 1.5 s: about 1 in 100);
        # one woken by the events returns at once every time.
        $steps = @(
            @{ Virsh = 'destroy'; State = 'ShutOff' }
            @{ Virsh = 'start'; State = 'Running' }
            @{ Virsh = 'suspend'; State = 'Paused' }
            @{ Virsh = 'resume'; State = 'Running' }
        )
        $i = 0
        foreach ($step in $steps) {
            $i++
            $stamp = Join-Path $TestDrive "changed-$i"
            $delay = 1.5 + $i * 0.7
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $proc = Start-Bash "sleep $delay; virsh -c qemu:///system $($step.Virsh) '$name' >/dev/null 2>&1; date +%s.%N > '$stamp'"
            $vm = Wait-KvmVm -Connection $c -Name $name -For State -State $step.State -TimeoutSec 60 -Passthru
            $returned = [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds() / 1000.0
            $sw.Stop()
            $proc.WaitForExit(30000) | Should -BeTrue
            $vm.State | Should -Be $step.State
            $changedAt = [double]::Parse((Get-Content $stamp -Raw).Trim(), [cultureinfo]::InvariantCulture)
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 30 -Because 'the wait returned long before its 60 s timeout'
            $sw.Elapsed.TotalSeconds | Should -BeGreaterThan 1 -Because 'it waited for the change'
            ($returned - $changedAt) | Should -BeLessThan 1.5 -Because "the lifecycle event woke the wait ($($step.Virsh))"
        }
        (Get-DomInfo $name)['State'] | Should -Be 'running'
    }

    It 'times out with WaitTimeout naming the VM when the state never comes' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $name = New-SystemTestVm -Name "$p-wait2" -Start
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $null = Wait-KvmVm -Connection $c -Name $name -For State -State Paused -TimeoutSec 2 -ErrorAction SilentlyContinue -ErrorVariable err
        $sw.Stop()
        $err[0].FullyQualifiedErrorId | Should -BeLike 'WaitTimeout,*'
        $err[0].TargetObject | Should -Be $name
        $sw.Elapsed.TotalSeconds | Should -BeGreaterThan 1.8
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 30 -Because 'it gave up at its timeout (a loaded machine adds a few seconds)'
    }
}
