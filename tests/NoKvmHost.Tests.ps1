# Issue 12: the TCG-only host, proven on every machine. A private libvirtd in its own mount namespace cannot see
# /dev/kvm (.ci/nokvm-libvirtd), so on a machine with KVM this exercises exactly what a machine without /dev/kvm
# gives, and on one without KVM the same again. The capability report and New-KvmVm's accelerator choice must
# say what this host offers: qemu (TCG) only.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:p = New-TestName 'nokvm'
    $script:script = [IO.Path]::Combine($PSScriptRoot, '..', '.ci', 'nokvm-libvirtd')
    $script:dir = "/run/kvmps-nokvm-$($p.Substring(8, 8))"
    $env:KVMPS_NOKVM_DIR = $dir
    $sock = (& bash $script start 2>&1 | Select-Object -Last 1)
    if ($LASTEXITCODE -ne 0) { throw "could not start the no-KVM libvirtd: $sock" }
    $script:uri = "qemu:///system?socket=$sock"
    $script:virsh = { & virsh -c $uri @args }
}

AfterAll {
    Get-KvmConnection | Where-Object { "$($_.RequestedUri)$($_.Uri)" -like "*$dir*" } | Disconnect-KvmHost -ErrorAction SilentlyContinue
    $env:KVMPS_NOKVM_DIR = $dir
    & bash $script stop
    Remove-Item Env:KVMPS_NOKVM_DIR -ErrorAction SilentlyContinue
    Remove-Item $dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'A host without /dev/kvm' -Tag System, NoKvm {
    It 'is a daemon that really offers no kvm domain type' {
        $types = @(& $virsh capabilities | Select-String -Pattern "domain type='(\w+)'" -AllMatches | ForEach-Object { $_.Matches.Groups[1].Value } | Sort-Object -Unique)
        $types | Should -Be @('qemu')
    }

    It 'Get-KvmHostCapability says KvmAvailable False, offers TCG, and names the failing check' {
        $cap = Get-KvmHostCapability -Connection $uri
        $cap.KvmAvailable | Should -BeFalse
        $cap.Accelerators | Should -Be @('qemu')
        $kvm = $cap.Checks | Where-Object Name -eq 'KVM in libvirt'
        $kvm.Result | Should -Be 'Fail'
        $kvm.Detail | Should -Match 'only qemu'
        $cap.Overall | Should -Be 'Fail'
        # what the daemon reports for TCG is still read: machine types, vCPU limit, firmware
        $cap.MachineTypes | Should -Contain 'q35'
        $cap.MaxCpuCount | Should -BeGreaterThan 1
        ($cap.Checks | Where-Object Name -eq 'Domain capabilities').Result | Should -Be 'Pass'
        ($cap.Checks | Where-Object Name -eq 'Domain capabilities').Detail | Should -Match '^qemu on'
    }

    It 'New-KvmVm -Accelerator Auto picks TCG, and the VM runs' {
        $vm = New-KvmVm -Connection $uri -Name "$p-auto" -CpuCount 1 -MemoryBytes 64MB -NoNetwork -Start
        $vm.Accelerator | Should -Be 'Qemu'
        (& $virsh dumpxml "$p-auto") -join "`n" | Should -Match "<domain type='qemu'"
        (& $virsh domstate "$p-auto" | Select-Object -First 1).Trim() | Should -Be 'running'
        & $virsh destroy "$p-auto" *> $null
        & $virsh undefine "$p-auto" --nvram *> $null
    }

    It 'New-KvmVm -Accelerator Kvm stops with KvmUnavailable and creates nothing' {
        $vm = New-KvmVm -Connection $uri -Name "$p-kvm" -CpuCount 1 -MemoryBytes 64MB -NoNetwork -Accelerator Kvm -ErrorAction SilentlyContinue -ErrorVariable err
        $vm | Should -BeNullOrEmpty
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmUnavailable,*'
        $err[0].TargetObject | Should -Be "$p-kvm"
        $err[0].Exception.Message | Should -Match 'qemu'
        @(& $virsh list --all --name | Where-Object { $_ -like "$p*" }).Count | Should -Be 0
    }
}
