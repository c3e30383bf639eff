BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'Guest agent cmdlets on test:///default' -Tag TestDriver {
    It 'waits for an IP address and returns the VM with it (the test driver fakes the agent)' {
        $vm = Wait-KvmVm -Connection test:///default -Name test -For IPAddress -TimeoutSec 5
        $vm.Name | Should -Be 'test'
        $vm.IPAddresses | Should -Contain '192.168.122.3'
    }

    It 'filters by address family' {
        { Wait-KvmVm -Connection test:///default -Name test -For IPAddress -AddressFamily IPv6 -TimeoutSec 1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'WaitTimeout,KvmPS.Commands.WaitKvmVmCommand'
    }

    It 'needs -State for -For State' {
        { Wait-KvmVm -Connection test:///default -Name test } | Should -Throw -ErrorId 'StateRequired,KvmPS.Commands.WaitKvmVmCommand'
    }
}

Describe 'Guest agent cmdlets on qemu:///system without an agent' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:p = New-TestName 'ga'
        if (-not $skip) { $null = New-KvmVm -Connection qemu:///system -Name "$p-1" -MemoryBytes 128MB -NoNetwork -Start }
    }
    AfterAll { if (-not $skip) { Remove-SystemTestObjects $p } }

    It 'says GuestAgentUnavailable when no agent answers' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Get-KvmVmGuestInfo -Connection qemu:///system -Name "$p-1" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'GuestAgentUnavailable,*'
        $err[0].TargetObject | Should -Be "$p-1"
        $null = Invoke-KvmVmGuestCommand -Connection qemu:///system -Name "$p-1" -Command 'true' -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'GuestAgentUnavailable,*'
    }

    It 'times out cleanly waiting for the agent or an address' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $null = Wait-KvmVm -Connection qemu:///system -Name "$p-1" -For GuestAgent -TimeoutSec 2 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'WaitTimeout,*'
        $null = Start-KvmVm -Connection qemu:///system -Name "$p-1" -ErrorAction SilentlyContinue
        $null = Wait-KvmVm -Connection qemu:///system -Name "$p-1" -For IPAddress -TimeoutSec 2 -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'WaitTimeout,*'
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 20
    }
}
