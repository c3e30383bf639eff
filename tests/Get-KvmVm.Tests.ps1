BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'Get-KvmVm on test:///default' -Tag TestDriver {
    It 'returns the test VM with its real resources' {
        $vm = Get-KvmVm -Connection test:///default -Name test
        $vm | Should -HaveCount 1
        $vm | Should -BeOfType ([KvmPS.Core.KvmVm])
        $vm.State | Should -Be ([KvmPS.Core.KvmVmState]::Running)
        $vm.CpuCount | Should -Be 2
        $vm.MemoryBytes | Should -Be 2GB
        $vm.MaxMemoryBytes | Should -Be 8GB
        $vm.Id | Should -Be 1
        $vm.Uuid | Should -Not -Be ([guid]::Empty)
        $vm.Connection.Uri | Should -Be 'test:///default'
        $vm.Accelerator | Should -Be 'Other'
        $vm.Persistent | Should -BeTrue
    }

    It 'lists all VMs without -Name' {
        (Get-KvmVm -Connection test:///default).Name | Should -Contain 'test'
    }

    It 'finds a VM by Uuid and by Id' {
        $vm = Get-KvmVm -Connection test:///default -Name test
        (Get-KvmVm -Connection test:///default -Uuid $vm.Uuid).Name | Should -Be 'test'
        (Get-KvmVm -Connection test:///default -Id 1).Name | Should -Be 'test'
    }

    It 'formats as a table with Name, State, CPUs, Memory and Host' {
        $text = Get-KvmVm -Connection test:///default -Name test | Out-String
        $text | Should -Match 'Name\s+State\s+CPUs\s+Memory\s+MaxMemory\s+Host'
        $text | Should -Match 'test\s+Running\s+2\s+2 GiB\s+8 GiB'
    }
}

Describe 'Get-KvmVm on a fixture host' -Tag TestDriver {
    It 'matches wildcards case-insensitively' {
        (Get-KvmVm -Connection $FixtureUri -Name 'WEB*').Name | Sort-Object | Should -Be @('web1', 'web2')
    }

    It 'is silent for an unmatched wildcard' {
        $r = Get-KvmVm -Connection $FixtureUri -Name 'nomatch*' -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err | Should -BeNullOrEmpty
    }

    It 'writes a non-terminating VmNotFound for a missing exact name and goes on' {
        $r = Get-KvmVm -Connection $FixtureUri -Name 'missing-vm', 'web1' -ErrorAction SilentlyContinue -ErrorVariable err
        $r.Name | Should -Be 'web1'
        $err | Should -HaveCount 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmNotFound,*'
        $err[0].TargetObject | Should -Be 'missing-vm'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'treats names with quotes and XML markup literally' {
        $r = Get-KvmVm -Connection $FixtureUri -Name "x'</name><name>web1" -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmNotFound,*'
        (Get-KvmVm -Connection $FixtureUri -Name "odd 'quoted' vm").State | Should -Be 'ShutOff'
    }

    It 'reports a bad wildcard as InvalidWildcard' {
        $null = Get-KvmVm -Connection $FixtureUri -Name 'web[' -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidWildcard,*'
        $err[0].TargetObject | Should -Be 'web['
    }

    It 'filters by state' {
        (Get-KvmVm -Connection $FixtureUri -State Paused).Name | Should -Be 'batch1'
        (Get-KvmVm -Connection $FixtureUri -State ShutOff).Name | Sort-Object | Should -Be @('db1', "odd 'quoted' vm", 'saved1')
    }

    It 'reads current and maximum memory, transient and managed-save flags' {
        $vms = Get-KvmVm -Connection $FixtureUri
        $web1 = $vms | Where-Object Name -eq 'web1'
        $web1.MemoryBytes | Should -Be 1GB
        $web1.MaxMemoryBytes | Should -Be 2GB
        $web1.CpuCount | Should -Be 2
        ($vms | Where-Object Name -eq 'tmp1').Persistent | Should -BeFalse
        ($vms | Where-Object Name -eq 'saved1').HasManagedSave | Should -BeTrue
        ($vms | Where-Object Name -eq 'db1').Id | Should -BeNullOrEmpty
        ($vms | Where-Object Name -eq 'db1').HasManagedSave | Should -BeFalse
    }

    It 'reads title, description, disks and network adapters from the XML when asked' {
        $web1 = Get-KvmVm -Connection $FixtureUri -Name web1
        $web1.Title | Should -Be 'Front end 1'
        $web1.Description | Should -Be 'Serves the shop'
        $web1.Disks | Should -HaveCount 2
        $web1.Disks[0].Target | Should -Be 'vda'
        $web1.Disks[0].Path | Should -Be '/var/lib/libvirt/images/web1.qcow2'
        $web1.Disks[0].Format | Should -Be 'qcow2'
        $web1.Disks[0].Bus | Should -Be 'virtio'
        $web1.Disks[1].Device | Should -Be 'cdrom'
        $web1.Disks[1].ReadOnly | Should -BeTrue
        $web1.NetworkAdapters[0].MacAddress | Should -Be '52:54:00:00:00:01'
        $web1.NetworkAdapters[0].Source | Should -Be 'lan'
        $web1.NetworkAdapters[0].Model | Should -Be 'virtio'
        $web1.Firmware | Should -Be 'Bios'
    }

    It 'takes names from the pipeline by value' {
        ('web1', 'db1' | Get-KvmVm -Connection $FixtureUri).Name | Should -Be @('web1', 'db1')
    }

    It 'takes Name and Connection from the pipeline by property name' {
        $rows = @(
            [pscustomobject]@{ VMName = 'web2'; Connection = $FixtureUri }
            [pscustomobject]@{ VMName = 'test'; Connection = 'test:///default' }
        )
        $vms = $rows | Get-KvmVm
        $vms.Name | Should -Be @('web2', 'test')
        $vms[1].Connection.Uri | Should -Be 'test:///default'
    }

    It 'takes KvmVm objects from the pipeline and finds them again' {
        $again = Get-KvmVm -Connection $FixtureUri -Name 'web*' | Get-KvmVm
        $again.Name | Sort-Object | Should -Be @('web1', 'web2')
    }

    It 'merges two connections and each VM names its own host' {
        $vms = Get-KvmVm -Connection test:///default, $FixtureUri
        ($vms | Where-Object Name -eq 'test').Connection.Uri | Should -Be 'test:///default'
        ($vms | Where-Object Name -eq 'web1').Connection.Uri | Should -Be $FixtureUri
        $vms.Count | Should -BeGreaterOrEqual 8
    }

    It 'gives one error for an unreachable host while the other still answers' {
        $dead = 'test+unix:///default?socket=/nonexistent/kvmps-dead.sock'
        $vms = Get-KvmVm -Connection $dead, $FixtureUri -Name web1 -ErrorAction SilentlyContinue -ErrorVariable err
        $vms.Name | Should -Be 'web1'
        $err | Should -HaveCount 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
        $err[0].TargetObject | Should -Be $dead
        $err[0].CategoryInfo.Category | Should -Be 'ConnectionError'
    }

    It 'reports a URI no driver understands as KvmConnectionFailed' {
        $null = Get-KvmVm -Connection 'nosuchdriver:///x' -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
        $err[0].Exception.Message | Should -Not -BeNullOrEmpty
    }

    It 'rejects a -Connection value that is neither a connection nor a URI' {
        { Get-KvmVm -Connection (Get-Date) } | Should -Throw -ErrorId 'ParameterArgumentTransformationError,KvmPS.Commands.GetKvmVmCommand'
    }

    It 'completes -Name from the open connection, quoting names with spaces' {
        $null = Get-KvmVm -Connection $FixtureUri
        $names = (Complete "Get-KvmVm -Connection '$FixtureUri' -Name we").CompletionText
        $names | Should -Be @('web1', 'web2')
        (Complete "Get-KvmVm -Connection '$FixtureUri' -Name od").CompletionText | Should -Be @("'odd ''quoted'' vm'")
    }

    It 'never opens a connection to complete' {
        $uri = "test://$([IO.Path]::Combine($PSScriptRoot, 'fixtures', 'never-opened.xml'))"
        (Complete "Get-KvmVm -Connection '$uri' -Name ").CompletionText | Should -BeNullOrEmpty
        (Get-KvmConnection -All).Uri | Should -Not -Contain $uri
    }
}

Describe 'Get-KvmVm on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        if (-not $skip) {
            $script:running = New-SystemTestVm -Name (New-TestName 'run') -MemoryMiB 64 -CurrentMemoryMiB 64 -Cpus 2 -Start
            $script:stopped = New-SystemTestVm -Name (New-TestName 'off') -MemoryMiB 128 -CurrentMemoryMiB 96 -Cpus 1
        }
    }
    AfterAll {
        if (-not $skip) { Remove-SystemTestVm $running; Remove-SystemTestVm $stopped }
    }

    It 'shows a running firmware-only guest with its accelerator and resources' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = Get-KvmVm -Connection qemu:///system -Name $running
        $vm.State | Should -Be 'Running'
        $vm.StateReason | Should -Be 'Booted'
        $vm.CpuCount | Should -Be 2
        $vm.MaxMemoryBytes | Should -Be 64MB
        $vm.Id | Should -BeGreaterThan 0
        $vm.Accelerator | Should -Be (Get-ExpectedAccelerator)
        $vm.Title | Should -Be "KvmPS test $running"
        $vm.NetworkAdapters | Should -BeNullOrEmpty
    }

    It 'shows a shut-off guest with current and maximum memory in the bulk listing' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = Get-KvmVm -Connection qemu:///system | Where-Object Name -eq $stopped
        $vm.State | Should -Be 'ShutOff'
        $vm.Id | Should -BeNullOrEmpty
        $vm.MemoryBytes | Should -Be 96MB
        $vm.MaxMemoryBytes | Should -Be 128MB
        $vm.Persistent | Should -BeTrue
    }

    It 'sees a state change made by another client' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        & virsh -c qemu:///system destroy $running *> $null
        $vm = Get-KvmVm -Connection qemu:///system -Name $running
        $vm.State | Should -Be 'ShutOff'
        $vm.StateReason | Should -Be 'Destroyed'
    }
}

Describe 'A VM with more statistics fields than early daemons put in one bulk record (qemu:///system)' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        if ($skip) { return }
        $script:p = New-TestName 'bulk'
        $script:dir = New-Item -ItemType Directory -Path ([IO.Path]::Combine([IO.Path]::GetTempPath(), $p))
        $disk = Join-Path $dir 'small.qcow2'
        & qemu-img create -q -f qcow2 $disk 1M
        # 900 disks on one virtio-scsi controller: about 4,500 block fields for this shut-off VM, more than the
        # 4,096 typed parameters per record of early daemons (and of KvmPS's managed decoder before).
        function Get-ScsiName([int] $i) { $s = ''; $i++; while ($i -gt 0) { $i--; $s = [char](97 + $i % 26) + $s; $i = [math]::Floor($i / 26) }; "sd$s" }
        $disks = foreach ($i in 0..899) { "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$disk'/><target dev='$(Get-ScsiName $i)' bus='scsi'/></disk>" }
        $script:big = "$p-big"
        $type = if (Test-Path /dev/kvm) { 'kvm' } else { 'qemu' }
        $xml = Join-Path $dir 'big.xml'
        Set-Content -Path $xml -Value "<domain type='$type'><name>$big</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices><controller type='scsi' model='virtio-scsi'/>$($disks -join '')</devices></domain>"
        & virsh -c qemu:///system define $xml *> $null
        $script:small = New-SystemTestVm -Name "$p-small" -Start
    }

    AfterAll {
        if ($skip) { return }
        Remove-SystemTestObjects $p
        Remove-Item $dir -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'has more than 4,096 statistics fields (virsh domstats)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $fields = (& virsh -c qemu:///system domstats --block $big) | Where-Object { $_ -match '=' }
        $fields.Count | Should -BeGreaterThan 4096
    }

    It 'lists it with Get-KvmVm beside the other VMs' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vms = Get-KvmVm -Connection qemu:///system -ErrorVariable err
        $err | Should -BeNullOrEmpty
        $vms.Name | Should -Contain $big
        $vms.Name | Should -Contain $small
        ($vms | Where-Object Name -eq $big).State | Should -Be 'ShutOff'
        ($vms | Where-Object Name -eq $small).State | Should -Be 'Running'
        (Get-KvmVm -Connection qemu:///system -Name $big).Disks | Should -HaveCount 900
    }

    It 'does not stop Measure-KvmVm for the other VMs of the host' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $m = Measure-KvmVm -Connection qemu:///system -Name $small -SampleIntervalSec 1 -ErrorVariable err
        $err | Should -BeNullOrEmpty
        $m.VMName | Should -Be $small
        $m.State | Should -Be 'Running'
        $m.CpuUsagePercent | Should -Not -BeNullOrEmpty
    }
}
