BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'Get-KvmHostCapability on test:///default' -Tag TestDriver {
    BeforeAll { $script:cap = Get-KvmHostCapability -Connection test:///default }

    It 'says what the test driver offers without pretending it is KVM' {
        $cap.KvmAvailable | Should -BeFalse
        $cap.Accelerators | Should -Be @('test')
        $cap.Arch | Should -Be 'i686'
        $cap.Firmware | Should -Be 'None'
        ($cap.Checks | Where-Object Name -eq 'KVM in libvirt').Result | Should -Be 'Fail'
        $cap.Overall | Should -Be 'Fail'
    }

    It 'skips the checks that read this machine' {
        $local = $cap.Checks | Where-Object IsLocal
        $local | Should -Not -BeNullOrEmpty
        $local.Result | Sort-Object -Unique | Should -Be 'Skipped'
        $local[0].Detail | Should -Match 'test driver'
    }

    It 'formats as a list with the checks' {
        ($cap | Out-String) | Should -Match 'KvmAvailable\s+:\s+False'
    }
}

Describe 'Get-KvmHostCapability on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        if (-not $skip) { $script:cap = Get-KvmHostCapability -Connection qemu:///system }
    }

    It 'reports KVM exactly when /dev/kvm is there, else what the host really offers (TCG)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $cap.Accelerators | Should -Contain 'qemu'
        if (Test-Path /dev/kvm) {
            $cap.KvmAvailable | Should -BeTrue
            $cap.Accelerators | Should -Contain 'kvm'
            ($cap.Checks | Where-Object Name -eq '/dev/kvm').Result | Should -Be 'Pass'
        }
        else {
            $cap.KvmAvailable | Should -BeFalse
            ($cap.Checks | Where-Object Name -eq '/dev/kvm').Result | Should -Be 'Fail'
        }
    }

    It 'knows the architecture, machine types and vCPU limit' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $cap.Arch | Should -Be 'x86_64'
        $cap.MachineTypes | Should -Contain 'pc'
        $cap.MachineTypes | Should -Contain 'q35'
        $cap.MaxCpuCount | Should -BeGreaterThan 1
        $cap.Firmware.HasFlag([KvmPS.Core.KvmFirmwareSupport]::Bios) | Should -BeTrue
    }

    It 'runs the local checks on a local connection' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $tun = $cap.Checks | Where-Object Name -eq '/dev/net/tun'
        $tun.Result | Should -Be $(if (Test-Path /dev/net/tun) { 'Pass' } else { 'Fail' })
        ($cap.Checks | Where-Object { $_.IsLocal -and $_.Name -ne 'Nested virtualization' }).Result | Should -Not -Contain 'Skipped'
        ($cap.Checks | Where-Object Name -eq '/dev/kvm permissions').Result | Should -Be $(if ((Test-Path /dev/kvm) -and (stat -c '%a %G' /dev/kvm) -match '^\d[67]\d kvm$') { 'Pass' } elseif (Test-Path /dev/kvm) { 'Warn' } else { 'Skipped' })
    }
}
