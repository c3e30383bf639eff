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
        # A simulated host: no check of a KVM host concerns it, so nothing reads as a failure.
        $cap.Overall | Should -Be 'NotApplicable'
    }

    It 'shows one NotApplicable check with the reason instead of hardware checks that do not concern it' {
        @($cap.Checks).Count | Should -Be 1
        $cap.Checks[0].Name | Should -Be 'Simulated host'
        $cap.Checks[0].Result | Should -Be 'NotApplicable'
        $cap.Checks[0].Detail | Should -Match 'test driver'
        @($cap.Checks | Where-Object Result -in 'Fail', 'Warn').Count | Should -Be 0
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

    It 'runs the local checks on a local connection, each with the result this machine warrants' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $kvmNode = Test-Path /dev/kvm
        $byName = @{}; foreach ($c in $cap.Checks) { $byName[$c.Name] = $c.Result.ToString() }
        $byName['/dev/net/tun'] | Should -Be $(if (Test-Path /dev/net/tun) { 'Pass' } else { 'Fail' })
        $byName['/dev/vhost-net'] | Should -Be $(if (Test-Path /dev/vhost-net) { 'Pass' } else { 'Warn' })
        $byName['/dev/kvm'] | Should -Be $(if ($kvmNode) { 'Pass' } else { 'Fail' })
        $byName['/dev/kvm permissions'] | Should -Be $(if (-not $kvmNode) { 'NotApplicable' } elseif ((stat -c '%a %G' /dev/kvm) -match '^\d[67]\d kvm$') { 'Pass' } else { 'Warn' })
        $nested = @('/sys/module/kvm_intel/parameters/nested', '/sys/module/kvm_amd/parameters/nested') | Where-Object { Test-Path $_ } | Select-Object -First 1
        $byName['Nested virtualization'] | Should -Be $(if ($nested) { if ((Get-Content $nested -Raw).Trim() -in 'Y', 'y', '1') { 'Pass' } else { 'Warn' } } elseif ($kvmNode) { 'Skipped' } else { 'NotApplicable' })
        # Without KVM the report says so with the failing checks, and Overall is Fail: a real failure of this host.
        if (-not $cap.KvmAvailable) {
            $byName['KVM in libvirt'] | Should -Be 'Fail'
            $cap.Overall | Should -Be 'Fail'
        }
    }
}
