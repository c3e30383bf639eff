# Issue 15: Move-KvmVm and Copy-KvmVm between two libvirt hosts on this machine: the shared daemon (qemu:///system)
# and the peer daemon in its own mount namespace (.ci/peer-libvirtd; its pool `default` is the same path with other
# files behind it, and $SharedDir is the same directory on both). Every object has this file's prefix and is removed
# on both hosts afterwards. The suite runs once per backend (KVMPS_BACKEND), so every move here runs on both.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:p = New-TestName 'mig'
    $script:peerUri = Get-PeerUri
    $script:src = Connect-KvmHost qemu:///system -NotDefault
    $script:dst = Connect-KvmHost $peerUri -NotDefault
    # the migration stream stays on this machine
    $script:addr = '127.0.0.1'
    # a pool over one shared directory on both hosts: the same volume at the same path on each
    $script:sharedPool = "$p-sh"
    $script:sharedDir = Join-Path $SharedDir $p
    $null = New-Item -ItemType Directory -Force $sharedDir
    foreach ($u in 'qemu:///system', $peerUri) {
        $out = & virsh -c $u pool-create-as $sharedPool dir --target $sharedDir 2>&1
        if ($LASTEXITCODE -ne 0) { throw "pool-create-as on $u failed: $out" }
    }
    function Get-Names([string] $Uri) { @(& virsh -c $Uri list --all --name | ForEach-Object Trim | Where-Object { $_ -like "$p*" }) }
    function Get-State([string] $Uri, [string] $Name) { ((& virsh -c $Uri domstate $Name 2>&1) -join '').Trim() }
    function Get-Volumes([string] $Uri, [string] $Pool = 'default') {
        & virsh -c $Uri pool-refresh $Pool *> $null
        @(& virsh -c $Uri vol-list $Pool | Select-Object -Skip 2 | ForEach-Object { ($_.Trim() -split '\s+')[0] } | Where-Object { $_ -like "$p*" })
    }
    function Write-Pattern([string] $Image, [string] $Pattern) {
        $out = & qemu-io -f qcow2 -c "write -P $Pattern 0 1M" $Image 2>&1
        if ($LASTEXITCODE -ne 0) { throw "qemu-io write failed: $out" }
    }
    function Stop-On([string] $Uri, [string] $Name) { & virsh -c $Uri destroy $Name *> $null }
    # A local (not shared) test VM in the host's pool default, holding a pattern, and refreshed so the pool lists it.
    function New-LocalVm([string] $Suffix, [string] $Pattern = '0x5a', [switch] $Start) {
        $name = "$p-$Suffix"
        $path = "/var/lib/libvirt/images/$name.qcow2"
        & qemu-img create -q -f qcow2 $path 64M
        Write-Pattern $path $Pattern
        & virsh -c qemu:///system pool-refresh default *> $null
        $null = New-MigratableTestVm -Name $name -Local -DiskPath $path -Start:$Start
        $name
    }
}

AfterAll {
    foreach ($c in $src, $dst) { if ($c) { Disconnect-KvmHost $c -ErrorAction SilentlyContinue } }
    Remove-SystemTestObjects $p
    Remove-PeerTestObjects $p
    foreach ($u in 'qemu:///system', $peerUri) { & virsh -c $u pool-destroy $sharedPool *> $null }
    Get-ChildItem /var/lib/libvirt/images -Filter "$p*" -ErrorAction SilentlyContinue | Remove-Item -Force -ErrorAction SilentlyContinue
    Remove-Item $sharedDir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Move-KvmVm between two hosts' -Tag System, Migration {
    It 'moves a running VM live with its disk copied, and back, the data intact and nothing left behind' {
        $name = New-LocalVm 'live' -Start
        $moved = Move-KvmVm -Connection $src -Name $name -DestinationConnection $dst -IncludeStorage -MigrationAddress $addr -Passthru
        $moved.Name | Should -Be $name
        $moved.State | Should -Be 'Running'
        $moved.Connection.Uri | Should -Be $dst.Uri
        Get-State $peerUri $name | Should -Be 'running'
        Get-Names 'qemu:///system' | Should -Not -Contain $name -Because 'the source definition is removed'
        Get-Volumes 'qemu:///system' | Should -Not -Contain "$name.qcow2" -Because 'the source disk went with the VM'
        Get-Volumes $peerUri | Should -Contain "$name.qcow2"
        (& virsh -c $peerUri dominfo $name) -join ' ' | Should -Match 'Persistent:\s+yes'

        # and back, piped (the object is the VM on the peer), with the tuning options libvirt must accept
        $all = @(Get-KvmVm -Connection $dst -Name $name | Move-KvmVm -DestinationConnection $src -IncludeStorage -MigrationAddress $addr -Passthru `
            -BandwidthMiBps 200 -MaxDowntimeMs 500 -AutoConverge -Compressed -Verbose 4>&1)
        $back = $all | Where-Object { $_ -is [KvmPS.Core.KvmVm] }
        $verbose = @($all | Where-Object { $_ -is [Management.Automation.VerboseRecord] } | ForEach-Object Message)
        ($verbose -join ' ') | Should -Match 'AutoConverge' -Because 'the flags reach libvirt'
        ($verbose -join ' ') | Should -Match 'Compressed'
        ($verbose -join ' ') | Should -Match 'bandwidth=200'
        $back.Connection.Uri | Should -Be $src.Uri
        Get-State 'qemu:///system' $name | Should -Be 'running'
        Get-Names $peerUri | Should -Not -Contain $name
        Get-Volumes $peerUri | Should -Not -Contain "$name.qcow2"
        Stop-On 'qemu:///system' $name
        Test-DiskPattern "/var/lib/libvirt/images/$name.qcow2" '0x5a' 0 1M | Should -BeTrue -Because 'the disk crossed twice and kept its data'
    }

    It 'moves a shut-off VM offline with its disk streamed, the data intact' {
        $name = New-LocalVm 'off' -Pattern '0x3c'
        Move-KvmVm -Connection $src -Name $name -DestinationConnection $dst -IncludeStorage
        Get-State $peerUri $name | Should -Be 'shut off'
        Get-Names 'qemu:///system' | Should -Not -Contain $name
        Test-DiskPattern (Get-PeerImagePath "$name.qcow2") '0x3c' 0 1M | Should -BeTrue
        Test-DiskPattern (Get-PeerImagePath "$name.qcow2") '0x5a' 0 1M | Should -BeFalse -Because 'the check itself can fail'
        # and back
        Move-KvmVm -Connection $dst -Name $name -DestinationConnection $src -IncludeStorage
        Get-State 'qemu:///system' $name | Should -Be 'shut off'
        Get-Names $peerUri | Should -Not -Contain $name
        Test-Path (Get-PeerImagePath "$name.qcow2") | Should -BeFalse
        Test-DiskPattern "/var/lib/libvirt/images/$name.qcow2" '0x3c' 0 1M | Should -BeTrue
    }

    It 'moves a running VM on shared storage: refused as unsafe without -AllowUnsafe, then moved with it, the disk not copied' {
        $name = "$p-sh"
        $disk = Join-Path $sharedDir "$name.qcow2"
        $null = New-MigratableTestVm -Name $name -Shared -DiskPath $disk -Start
        foreach ($u in 'qemu:///system', $peerUri) { & virsh -c $u pool-refresh $sharedPool *> $null }
        Move-KvmVm -Connection $src -Name $name -DestinationConnection $dst -MigrationAddress $addr -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'MigrationUnsafe,*'
        Get-State 'qemu:///system' $name | Should -Be 'running' -Because 'a refused move leaves the VM where it was'
        Get-Names $peerUri | Should -Not -Contain $name

        $moved = Move-KvmVm -Connection $src -Name $name -DestinationConnection $dst -MigrationAddress $addr -AllowUnsafe -Passthru
        $moved.Disks[0].Path | Should -Be $disk
        Get-State $peerUri $name | Should -Be 'running'
        Test-Path $disk | Should -BeTrue -Because 'shared storage stays where it is'
        @(Get-ChildItem $sharedDir -Filter "$name*").Count | Should -Be 1 -Because 'nothing was copied'
        # and back
        $back = Move-KvmVm -Connection $dst -Name $name -DestinationConnection $src -MigrationAddress $addr -AllowUnsafe -Passthru
        $back.Disks[0].Path | Should -Be $disk
        Get-State 'qemu:///system' $name | Should -Be 'running'
        Get-Names $peerUri | Should -Not -Contain $name
        Stop-On 'qemu:///system' $name
    }

    It 'moves to the host Find-KvmHost picks (a placement object stands for its connection)' {
        $name = New-LocalVm 'fh'
        $target = Find-KvmHost -Connection $dst -CpuCount 1 -MemoryBytes 64MB -DiskSizeBytes 64MB | Select-Object -First 1
        $target.Connection.Uri | Should -Be $dst.Uri
        $moved = Get-KvmVm -Connection $src -Name $name | Move-KvmVm -DestinationConnection $target -IncludeStorage -Passthru
        $moved.Connection.Uri | Should -Be $dst.Uri
        Get-State $peerUri $name | Should -Be 'shut off'
    }

    It 'keeps the source definition with -KeepSource' {
        $name = New-LocalVm 'keep'
        Move-KvmVm -Connection $src -Name $name -DestinationConnection $dst -IncludeStorage -KeepSource
        Get-State $peerUri $name | Should -Be 'shut off'
        Get-State 'qemu:///system' $name | Should -Be 'shut off'
        Get-Volumes 'qemu:///system' | Should -Contain "$name.qcow2" -Because 'a copy-style move keeps the source disk'
    }

    It 'shows its checks and plan with -WhatIf and changes nothing' {
        $name = New-LocalVm 'wi'
        $out = Move-KvmVm -Connection $src -Name $name -DestinationConnection $dst -IncludeStorage -WhatIf -Verbose 4>&1 | Out-String
        # (the What-if line itself goes to the host) every check is written as it is made
        $out | Should -Match 'State: ok \(shut off: offline move\)'
        $out | Should -Match 'Memory: ok'
        $out | Should -Match 'Pool default: ok'
        Get-Names $peerUri | Should -Not -Contain $name
        Get-Volumes $peerUri | Should -Not -Contain "$name.qcow2"
    }
}

Describe 'Move-KvmVm checks before anything changes' -Tag System, Migration {
    BeforeAll {
        $script:vmName = New-LocalVm 'chk'
        function Assert-Unchanged {
            Get-State 'qemu:///system' $vmName | Should -Be 'shut off'
            Get-Names $peerUri | Should -Not -Contain $vmName
            Get-Volumes $peerUri | Should -Not -Contain "$vmName.qcow2"
        }
    }

    It 'names a disk that is not shared when -IncludeStorage is missing (StorageNotShared)' {
        Move-KvmVm -Connection $src -Name $vmName -DestinationConnection $dst -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'StorageNotShared,*'
        $err[0].TargetObject | Should -Be $vmName
        $err[0].Exception.Message | Should -Match 'vda'
        Assert-Unchanged
    }

    It 'refuses a destination that has a VM of that name (VmExistsOnDestination)' {
        $null = New-MigratableTestVm -Name $vmName -Uri $peerUri -Local -DiskPath (Join-Path $sharedDir "$vmName-other.qcow2")
        try {
            Move-KvmVm -Connection $src -Name $vmName -DestinationConnection $dst -IncludeStorage -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'VmExistsOnDestination,*'
            $err[0].CategoryInfo.Category | Should -Be 'ResourceExists'
            Get-State 'qemu:///system' $vmName | Should -Be 'shut off'
        }
        finally { & virsh -c $peerUri undefine $vmName *> $null }
        Get-Volumes $peerUri | Should -Not -Contain "$vmName.qcow2"
    }

    It 'refuses a network the destination does not have (NetworkMissing)' {
        $net = "$p-net"
        $netXml = "<network><name>$net</name><bridge name='kv$($p.Substring(8, 6))'/></network>"
        $f = Join-Path $TestDrive 'net.xml'; Set-Content $f $netXml
        & virsh -c qemu:///system net-create $f *> $null
        $name = "$p-nic"
        $null = New-MigratableTestVm -Name $name -Local -DiskPath "/var/lib/libvirt/images/$name.qcow2"
        & virsh -c qemu:///system pool-refresh default *> $null
        & virsh -c qemu:///system attach-interface $name network $net --config *> $null
        Move-KvmVm -Connection $src -Name $name -DestinationConnection $dst -IncludeStorage -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkMissing,*'
        $err[0].Exception.Message | Should -Match ([regex]::Escape($net))
        Get-Names $peerUri | Should -Not -Contain $name
        & virsh -c qemu:///system net-destroy $net *> $null
    }

    It 'refuses a VM with snapshots (VmHasSnapshots), a pool that does not exist (StoragePoolMissing) and its own host (SameHost)' {
        Move-KvmVm -Connection $src -Name $vmName -DestinationConnection $dst -IncludeStorage -DestinationStoragePool "$p-nosuch" -ErrorAction SilentlyContinue -ErrorVariable err1
        $err1[0].FullyQualifiedErrorId | Should -BeLike 'StoragePoolMissing,*'
        Move-KvmVm -Connection $src -Name $vmName -DestinationConnection qemu:///system -IncludeStorage -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'SameHost,*'
        & virsh -c qemu:///system snapshot-create-as $vmName s1 *> $null
        try {
            Move-KvmVm -Connection $src -Name $vmName -DestinationConnection $dst -IncludeStorage -ErrorAction SilentlyContinue -ErrorVariable err3
            $err3[0].FullyQualifiedErrorId | Should -BeLike 'VmHasSnapshots,*'
        }
        finally { & virsh -c qemu:///system snapshot-delete $vmName s1 *> $null }
        Assert-Unchanged
    }

    It 'refuses a VM that needs more memory than the destination has (InsufficientMemory)' {
        $name = "$p-big"
        $null = New-MigratableTestVm -Name $name -Local -DiskPath "/var/lib/libvirt/images/$name.qcow2" -MemoryMiB (4TB / 1MB)
        & virsh -c qemu:///system pool-refresh default *> $null
        Move-KvmVm -Connection $src -Name $name -DestinationConnection $dst -IncludeStorage -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InsufficientMemory,*'
        Get-Names $peerUri | Should -Not -Contain $name
    }
}

Describe 'Move-KvmVm stopped on the way' -Tag System, Migration {
    BeforeEach {
        # 48 MiB of data to copy at 1 MiB/s: the move takes long enough to be stopped
        $script:slow = "$p-slow$(Get-Random -Maximum 9999)"
        $path = "/var/lib/libvirt/images/$slow.qcow2"
        & qemu-img create -q -f qcow2 $path 64M
        $null = & qemu-io -f qcow2 -c 'write -P 0x11 0 48M' $path
        & virsh -c qemu:///system pool-refresh default *> $null
        $null = New-MigratableTestVm -Name $slow -Local -DiskPath $path -Start
    }

    It 'ends in MigrationTimeout with the VM still running on the source and nothing on the destination' {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        Move-KvmVm -Connection $src -Name $slow -DestinationConnection $dst -IncludeStorage -MigrationAddress $addr -BandwidthMiBps 1 -TimeoutSec 4 -ErrorAction SilentlyContinue -ErrorVariable err
        $sw.Stop()
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'MigrationTimeout,*'
        $err[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 40
        Get-State 'qemu:///system' $slow | Should -Be 'running'
        Get-Names $peerUri | Should -Not -Contain $slow
        Get-Volumes $peerUri | Should -Not -Contain "$slow.qcow2" -Because 'the volume made for the copy is removed'
        (& virsh -c qemu:///system domjobinfo $slow) -join ' ' | Should -Match 'Job type:\s+None'
    }

    It 'aborts on Ctrl+C with the VM still running on the source and nothing on the destination' {
        $rs = [runspacefactory]::CreateRunspace()
        $rs.Open()
        try {
            $ps = [powershell]::Create()
            $ps.Runspace = $rs
            $null = $ps.AddCommand('Import-Module').AddArgument($ModulePath).Invoke()
            $ps.Commands.Clear()
            $null = $ps.AddCommand('Move-KvmVm').AddParameter('Connection', 'qemu:///system').AddParameter('Name', $slow).
                AddParameter('DestinationConnection', $peerUri).AddParameter('IncludeStorage').AddParameter('MigrationAddress', $addr).AddParameter('BandwidthMiBps', [uint64]1)
            $async = $ps.BeginInvoke()
            Wait-Until { ((& virsh -c qemu:///system domjobinfo $slow) -join ' ') -match 'Job type:\s+Unbounded' } 30 | Should -BeTrue -Because 'the migration job runs'
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $sw.Stop()
            try { $null = $ps.EndInvoke($async) } catch { $null = $_ }
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 30
            $ps.Dispose()
        }
        finally { $rs.Dispose() }
        Get-State 'qemu:///system' $slow | Should -Be 'running'
        Get-Names $peerUri | Should -Not -Contain $slow
        Get-Volumes $peerUri | Should -Not -Contain "$slow.qcow2"
    }
}

Describe 'Copy-KvmVm' -Tag System, Migration {
    It 'makes a full copy with a new identity whose disk holds the same data' {
        $name = New-LocalVm 'cp' -Pattern '0x77'
        & virsh -c qemu:///system attach-interface $name network default --config --mac 52:54:00:aa:bb:cc *> $null
        $orig = Get-KvmVm -Connection $src -Name $name
        $copy = Copy-KvmVm -Connection $src -Name $name -NewName "$name-full"
        $copy.Name | Should -Be "$name-full"
        $copy.Uuid | Should -Not -Be $orig.Uuid
        $copy.NetworkAdapters[0].MacAddress | Should -Not -Be '52:54:00:aa:bb:cc'
        $copy.Disks[0].Path | Should -Not -Be $orig.Disks[0].Path
        Test-DiskPattern $copy.Disks[0].Path '0x77' 0 1M | Should -BeTrue
        (& qemu-img info -U $copy.Disks[0].Path) -join ' ' | Should -Not -Match 'backing file' -Because 'a full copy stands alone'
    }

    It 'makes a linked copy: an overlay on the source disk, with a warning' {
        $name = New-LocalVm 'ln' -Pattern '0x66'
        $copy = Copy-KvmVm -Connection $src -Name $name -NewName "$name-lnk" -Linked -WarningVariable warn -WarningAction SilentlyContinue
        $warn | Should -Not -BeNullOrEmpty
        (& qemu-img info -U $copy.Disks[0].Path) -join ' ' | Should -Match ([regex]::Escape("backing file: /var/lib/libvirt/images/$name.qcow2"))
        Test-DiskPattern $copy.Disks[0].Path '0x66' 0 1M | Should -BeTrue
    }

    It 'copies to another host through volume streams' {
        $name = New-LocalVm 'xh' -Pattern '0x44'
        $copy = Get-KvmVm -Connection $src -Name $name | Copy-KvmVm -NewName "$name-far" -DestinationConnection $dst
        $copy.Connection.Uri | Should -Be $dst.Uri
        Get-State $peerUri "$name-far" | Should -Be 'shut off'
        Get-State 'qemu:///system' $name | Should -Be 'shut off' -Because 'the source stays'
        Test-DiskPattern (Get-PeerImagePath "$name-far-vda.qcow2") '0x44' 0 1M | Should -BeTrue
    }

    It 'refuses a running source (VmStateInvalid) and a taken name (VmExists), leaving nothing' {
        $name = New-LocalVm 'rn' -Start
        Copy-KvmVm -Connection $src -Name $name -NewName "$name-x" -ErrorAction SilentlyContinue -ErrorVariable err1
        $err1[0].FullyQualifiedErrorId | Should -BeLike 'VmStateInvalid,*'
        Stop-On 'qemu:///system' $name
        Copy-KvmVm -Connection $src -Name $name -NewName $name -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'VmExists,*'
        Get-Volumes 'qemu:///system' | Where-Object { $_ -like "$name-*" } | Should -BeNullOrEmpty
    }
}

Describe 'Move-KvmVmStorage' -Tag System, Migration {
    BeforeAll {
        $script:pool2 = "$p-p2"
        $script:pool2Dir = "/var/lib/libvirt/$p-p2"
        $null = New-Item -ItemType Directory -Force $pool2Dir
        $out = & virsh -c qemu:///system pool-create-as $pool2 dir --target $pool2Dir 2>&1
        if ($LASTEXITCODE -ne 0) { throw "pool-create-as failed: $out" }
    }
    AfterAll {
        & virsh -c qemu:///system pool-refresh $pool2 *> $null
        foreach ($line in @(& virsh -c qemu:///system vol-list $pool2 2>$null | Select-Object -Skip 2)) {
            $vol = ($line.Trim() -split '\s+')[0]; if ($vol) { & virsh -c qemu:///system vol-delete --pool $pool2 $vol *> $null }
        }
        & virsh -c qemu:///system pool-destroy $pool2 *> $null
        Remove-Item $pool2Dir -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'moves the disk of a running VM to another pool while it runs: data intact, definition updated, thin, old image gone' {
        $name = "$p-st"
        $path = "/var/lib/libvirt/images/$name.qcow2"
        & qemu-img create -q -f qcow2 $path 256M
        $null = & qemu-io -f qcow2 -c 'write -P 0x21 0 8M' $path
        & virsh -c qemu:///system pool-refresh default *> $null
        $null = New-MigratableTestVm -Name $name -Local -DiskPath $path -Start
        $vm = Move-KvmVmStorage -Connection $src -Name $name -DestinationStoragePool $pool2 -Passthru
        $newPath = "$pool2Dir/$name.qcow2"
        $vm.Disks[0].Path | Should -Be $newPath
        $vm.State | Should -Be 'Running' -Because 'the guest ran through the move'
        ((& virsh -c qemu:///system dumpxml $name --inactive) -join ' ') | Should -Match ([regex]::Escape("source file='$newPath'")) -Because 'the next start uses the new image too'
        Test-Path $path | Should -BeFalse -Because 'no one else uses the old image'
        Stop-On 'qemu:///system' $name
        Test-DiskPattern $newPath '0x21' 0 8M | Should -BeTrue
        $info = (& qemu-img info -U --output json $newPath) | ConvertFrom-Json
        $info.format | Should -Be 'qcow2'
        $info.'actual-size' | Should -BeLessThan 64MB -Because 'a 256 MiB disk holding 8 MiB stays thin'
    }

    It 'refuses a shut-off VM (VmStateInvalid) and a disk already in the pool (DiskAlreadyInPool), changing nothing' {
        $name = New-LocalVm 'st2'
        Move-KvmVmStorage -Connection $src -Name $name -DestinationStoragePool $pool2 -ErrorAction SilentlyContinue -ErrorVariable err1
        $err1[0].FullyQualifiedErrorId | Should -BeLike 'VmStateInvalid,*'
        & virsh -c qemu:///system start $name *> $null
        Move-KvmVmStorage -Connection $src -Name $name -DestinationStoragePool default -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'DiskAlreadyInPool,*'
        Move-KvmVmStorage -Connection $src -Name $name -DestinationStoragePool $pool2 -Disk vdz -ErrorAction SilentlyContinue -ErrorVariable err3
        $err3[0].FullyQualifiedErrorId | Should -BeLike 'DiskNotFound,*'
        Get-Volumes 'qemu:///system' $pool2 | Should -Not -Contain "$name.qcow2"
        ((& virsh -c qemu:///system dumpxml $name) -join ' ') | Should -Match ([regex]::Escape("source file='/var/lib/libvirt/images/$name.qcow2'"))
        Stop-On 'qemu:///system' $name
    }
}

Describe 'Export-KvmVm -IncludeStorage and Import-KvmVm -Copy' -Tag System, Migration {
    It 'round trips a VM with its disk through a folder to another host, as a copy with a new identity' {
        $name = New-LocalVm 'ex' -Pattern '0x4e'
        & virsh -c qemu:///system attach-interface $name network default --config --mac 52:54:00:aa:bb:01 *> $null
        $folder = Join-Path $TestDrive 'export'
        $dir = Export-KvmVm -Connection $src -Name $name -Path $folder -IncludeStorage
        $dir | Should -BeOfType ([IO.DirectoryInfo])
        (Get-ChildItem $folder).Name | Sort-Object | Should -Be @('domain.xml', 'kvmps-export.json', 'vda.qcow2')
        ((Get-Item "$folder/vda.qcow2").UnixFileMode -band [IO.UnixFileMode]::OtherRead) | Should -Be 0 -Because 'an export is private'
        $copy = Import-KvmVm -Connection $dst -Path $folder -Copy -Name "$name-imp"
        $copy.Name | Should -Be "$name-imp"
        $copy.Connection.Uri | Should -Be $dst.Uri
        $orig = Get-KvmVm -Connection $src -Name $name
        $copy.Uuid | Should -Not -Be $orig.Uuid
        @($copy.NetworkAdapters.MacAddress) | Should -Not -Contain '52:54:00:aa:bb:01'
        Test-DiskPattern (Get-PeerImagePath "$name-imp-vda.qcow2") '0x4e' 0 1M | Should -BeTrue
        # a folder that is not empty is refused
        Export-KvmVm -Connection $src -Name $name -Path $folder -IncludeStorage -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DestinationNotEmpty,*'
    }

    It 'refuses a hostile export folder (a file outside it, a wrong checksum, a qcow2 with a backing file) and imports nothing' {
        $name = New-LocalVm 'hx' -Pattern '0x2f'
        $folder = Join-Path $TestDrive 'hostile'
        $null = Export-KvmVm -Connection $src -Name $name -Path $folder -IncludeStorage
        $manifestPath = "$folder/kvmps-export.json"
        $good = Get-Content $manifestPath -Raw

        $m = $good | ConvertFrom-Json; $m.disks[0].file = '../../etc/shadow'; $m | ConvertTo-Json -Depth 5 | Set-Content $manifestPath
        Import-KvmVm -Connection $dst -Path $folder -Name "$name-a" -ErrorAction SilentlyContinue -ErrorVariable e1
        $e1[0].FullyQualifiedErrorId | Should -BeLike 'ExportInvalid,*'

        $m = $good | ConvertFrom-Json; $m.disks[0].sha256 = ('0' * 64); $m | ConvertTo-Json -Depth 5 | Set-Content $manifestPath
        Import-KvmVm -Connection $dst -Path $folder -Name "$name-b" -ErrorAction SilentlyContinue -ErrorVariable e2
        $e2[0].FullyQualifiedErrorId | Should -BeLike 'ExportInvalid,*'
        $e2[0].Exception.Message | Should -Match 'SHA-256'

        Set-Content $manifestPath $good
        $disk = "$folder/vda.qcow2"
        Remove-Item $disk
        & qemu-img create -q -f qcow2 -F raw -b /etc/hostname $disk 64M
        $m = $good | ConvertFrom-Json; $m.disks[0].sizeBytes = (Get-Item $disk).Length; $m.disks[0].sha256 = $null; $m | ConvertTo-Json -Depth 5 | Set-Content $manifestPath
        Import-KvmVm -Connection $dst -Path $folder -Name "$name-c" -ErrorAction SilentlyContinue -ErrorVariable e3
        $e3[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'

        Get-Names $peerUri | Where-Object { $_ -like "$name-*" } | Should -BeNullOrEmpty
        Get-Volumes $peerUri | Where-Object { $_ -like "$name-*" } | Should -BeNullOrEmpty -Because 'nothing half-imported stays'
    }
}
