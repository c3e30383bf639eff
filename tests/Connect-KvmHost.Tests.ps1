BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'Connect-KvmHost, Get-KvmConnection, Disconnect-KvmHost' -Tag TestDriver {
    AfterEach { Get-KvmConnection | Disconnect-KvmHost -Confirm:$false }

    It 'returns a described connection and makes it the default' {
        $c = Connect-KvmHost -Uri $FixtureUri
        $c | Should -BeOfType ([KvmPS.Core.Services.KvmConnection])
        $c.Uri | Should -Be $FixtureUri
        $c.Hypervisor | Should -Be 'TEST'
        $c.LibvirtVersion | Should -BeOfType ([version])
        $c.IsAlive | Should -BeTrue
        $c.IsReadOnly | Should -BeFalse
        $c.Backend | Should -Be $(if ($env:KVMPS_BACKEND) { $env:KVMPS_BACKEND } else { 'Native' })
        (Get-KvmConnection).Uri | Should -Be @($FixtureUri)
        (Get-KvmVm -Name web1).Connection | Should -Be $c
    }

    It 'keeps -NotDefault connections out of the default list' {
        $c = Connect-KvmHost -Uri $FixtureUri -NotDefault
        $c.IsAlive | Should -BeTrue
        Get-KvmConnection | Should -BeNullOrEmpty
        (Get-KvmConnection -All).Uri | Should -Contain $FixtureUri
    }

    It 'acts on every default connection when -Connection is omitted' {
        $null = Connect-KvmHost test:///default, $FixtureUri
        $vms = Get-KvmVm
        $vms.Name | Should -Contain 'test'
        $vms.Name | Should -Contain 'web1'
        (Get-KvmConnection '*default*').Uri | Should -Be 'test:///default'
    }

    It 'opens read-only connections' {
        $c = Connect-KvmHost -Uri $FixtureUri -ReadOnly -NotDefault
        $c.IsReadOnly | Should -BeTrue
        (Get-KvmVm -Connection $c -Name web1).State | Should -Be 'Running'
    }

    It 'passes -Credential to libvirt authentication (the test driver in this process, native backend)' {
        # Only the native backend runs a driver in this process; the managed backend's -Credential goes to the
        # SSH login (ManagedTransports.Tests.ps1: right and wrong password) and to the next test's case.
        $good = [pscredential]::new('admin', (ConvertTo-SecureString 'secret' -AsPlainText -Force))
        $c = Connect-KvmHost -Uri $AuthFixtureUri -Credential $good -Backend Native -NotDefault
        $c.Backend | Should -Be 'Native'
        (Get-KvmVm -Connection $c).Name | Should -Be 'secure1'
        $c.Dispose()

        $bad = [pscredential]::new('admin', (ConvertTo-SecureString 'wrong' -AsPlainText -Force))
        $r = Connect-KvmHost -Uri $AuthFixtureUri -Credential $bad -Backend Native -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'LibvirtAuthFailed,*'
        $err[0].TargetObject | Should -Be $AuthFixtureUri
        $err[0].Exception.Message | Should -Not -Match 'wrong'
        Get-KvmConnection | Should -BeNullOrEmpty -Because 'a refused connection is not kept as a default'
    }

    It 'fails alike on both backends when the driver runs in the daemon, which cannot ask for -Credential' {
        # The managed backend always reaches test:// through the daemon, as the native one does for test+unix://.
        # libvirt has no way to hand a client's credentials to a driver the daemon opens: both fail the same way.
        $good = [pscredential]::new('admin', (ConvertTo-SecureString 'secret' -AsPlainText -Force))
        $daemonSide = "test+unix://$($AuthFixtureUri.Substring('test://'.Length))"
        $m = Connect-KvmHost -Uri $AuthFixtureUri -Credential $good -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable managedErr
        $n = Connect-KvmHost -Uri $daemonSide -Credential $good -Backend Native -NotDefault -ErrorAction SilentlyContinue -ErrorVariable nativeErr
        $m | Should -BeNullOrEmpty
        $n | Should -BeNullOrEmpty
        $managedErr | Should -HaveCount 1
        $nativeErr | Should -HaveCount 1
        $managedErr[0].Exception.Message | Should -Match 'Missing authentication credentials'
        $managedErr[0].TargetObject | Should -Be $AuthFixtureUri
        $nativeErr[0].TargetObject | Should -Be $daemonSide
        $managedErr[0].FullyQualifiedErrorId | Should -Be $nativeErr[0].FullyQualifiedErrorId
        $managedErr[0].Exception.Message | Should -Be $nativeErr[0].Exception.Message
    }

    It 'reports an unreachable daemon as KvmConnectionFailed with the URI as target' {
        $uri = 'qemu+unix:///system?socket=/nonexistent/libvirt-sock'
        $r = Connect-KvmHost -Uri $uri -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
        $err[0].TargetObject | Should -Be $uri
        $err[0].ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
        Get-KvmConnection | Should -BeNullOrEmpty
    }

    It 'uses $env:LIBVIRT_DEFAULT_URI when there is no default connection' {
        $old = $env:LIBVIRT_DEFAULT_URI
        try {
            $env:LIBVIRT_DEFAULT_URI = $FixtureUri
            (Get-KvmVm -Name web1).Connection.Uri | Should -Be $FixtureUri
        }
        finally { $env:LIBVIRT_DEFAULT_URI = $old }
    }

    It 'disconnects with -WhatIf leaving the connection in place, and for real without' {
        $c = Connect-KvmHost -Uri $FixtureUri
        Disconnect-KvmHost -Connection $c -WhatIf
        (Get-KvmConnection).Uri | Should -Be @($FixtureUri)
        $c | Disconnect-KvmHost -Confirm:$false
        Get-KvmConnection | Should -BeNullOrEmpty
        $c.IsAlive | Should -BeFalse
    }

    It 'formats connections as a table' {
        $text = Connect-KvmHost -Uri $FixtureUri | Out-String
        $text | Should -Match 'Uri\s+HostName\s+Hypervisor\s+Libvirt\s+IsAlive\s+Backend'
        $text | Should -Match 'TEST'
    }

    It 'completes -Connection with known URIs' {
        $null = Connect-KvmHost -Uri $FixtureUri
        (Complete 'Get-KvmVm -Connection test:').CompletionText | Should -Contain $FixtureUri
    }
}

Describe 'Connections on qemu:///system' -Tag System {
    BeforeAll { $script:skip = -not (Test-SystemLibvirt) }

    It 'connects to the local daemon and describes it' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $c = Connect-KvmHost -Uri qemu:///system -NotDefault
        $c.Hypervisor | Should -Be 'QEMU'
        $c.HypervisorVersion.Major | Should -BeGreaterOrEqual 5
        $c.HostName | Should -Not -BeNullOrEmpty
        $c.IsSecure | Should -BeTrue
        $c.IsAlive | Should -BeTrue
    }

    It 'talks to the test driver inside the daemon through test+unix' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = Get-KvmVm -Connection test+unix:///default -Name test
        $vm.State | Should -Be 'Running'
        $vm.MaxMemoryBytes | Should -Be 8GB
    }
}
