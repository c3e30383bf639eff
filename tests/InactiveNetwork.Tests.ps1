# Issue 12: a VM on a network that is defined but not started (libvirt's 'default' on hosts without systemd)
# gets NetworkNotActive naming the network and the command that fixes it; nothing is half-created.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:skip = -not (Test-SystemLibvirt)
    $script:p = New-TestName 'inet'
    $script:net = "$p-net"
    $script:c = $SystemUri
    if (-not $skip) {
        # isolated (no <forward>), defined but not started
        $n = New-KvmNetwork -Connection $c -Name $net -Mode Isolated -Subnet "10.251.$(Get-TestOctet 2 254).0/24"
        if ($n.Active) { throw 'the test network must start inactive' }
    }
}

AfterAll {
    if (-not $skip) {
        Remove-SystemTestObjects $p
        & virsh -c qemu:///system net-destroy $net *> $null
        & virsh -c qemu:///system net-undefine $net *> $null
    }
}

Describe 'A VM on an inactive network' -Tag System {
    It 'New-KvmVm -Start stops with NetworkNotActive before creating anything' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = New-KvmVm -Connection $c -Name "$p-a" -CpuCount 1 -MemoryBytes 64MB -DiskSizeBytes 16MB -Network $net -Start `
            -ErrorAction SilentlyContinue -ErrorVariable err
        $vm | Should -BeNullOrEmpty
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotActive,*'
        $err[0].CategoryInfo.Category | Should -Be 'ResourceUnavailable'
        $err[0].TargetObject | Should -Be $net
        $err[0].Exception.Message | Should -Match ([regex]::Escape("'$net'"))
        $err[0].ErrorDetails.RecommendedAction | Should -Match ([regex]::Escape("Start-KvmNetwork -Name $net"))
        (& virsh -c qemu:///system list --all --name) -contains "$p-a" | Should -BeFalse
        @(& virsh -c qemu:///system vol-list default 2>$null | Select-String -SimpleMatch "$p-a").Count | Should -Be 0
    }

    It 'Start-KvmVm of a defined VM says which network to start, and the VM stays off' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = New-KvmVm -Connection $c -Name "$p-b" -CpuCount 1 -MemoryBytes 64MB -DiskSizeBytes 16MB -Network $net
        $vm.State | Should -Be 'ShutOff'
        Start-KvmVm -VM $vm -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotActive,*'
        $err[0].TargetObject | Should -Be $net
        $err[0].ErrorDetails.RecommendedAction | Should -Match ([regex]::Escape("Start-KvmNetwork -Name $net"))
        (& virsh -c qemu:///system domstate "$p-b" | Select-Object -First 1).Trim() | Should -Be 'shut off'
    }

    It 'Add-KvmVmNetworkAdapter on a running VM refuses the inactive network' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $name = New-SystemTestVm -Name "$p-run" -Start
        $before = @(& virsh -c qemu:///system domiflist $name | Select-String -SimpleMatch $net).Count
        Add-KvmVmNetworkAdapter -VMName $name -Connection $c -Network $net -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotActive,*'
        $err[0].TargetObject | Should -Be $net
        @(& virsh -c qemu:///system domiflist $name | Select-String -SimpleMatch $net).Count | Should -Be $before
        @(& virsh -c qemu:///system domiflist $name --inactive | Select-String -SimpleMatch $net).Count | Should -Be 0
    }

    It 'starts once the network runs' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Start-KvmNetwork -Connection $c -Name $net
        Start-KvmVm -Connection $c -Name "$p-b"
        (& virsh -c qemu:///system domstate "$p-b" | Select-Object -First 1).Trim() | Should -Be 'running'
        & virsh -c qemu:///system destroy "$p-b" *> $null
    }
}
