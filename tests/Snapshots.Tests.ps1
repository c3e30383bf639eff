BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')

    # The file a VM's disk vda runs on now, as libvirt reports it (virsh domblklist).
    function Get-ActiveDiskPath([string] $Vm) {
        foreach ($line in & virsh -c qemu:///system domblklist $Vm) {
            if ($line -match '^\s*vda\s+(\S+)') { return $Matches[1] }
        }
        throw "no vda in domblklist of $Vm"
    }

    # An image's direct backing file ('' when none), from qemu-img info.
    function Get-BackingFile([string] $Image) {
        $info = & qemu-img info -U --output=json $Image | ConvertFrom-Json
        "$($info.'backing-filename')"
    }
}

Describe 'Snapshots on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:p = "kvmps-s-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $script:c = 'test:///default'
        $script:vm = New-KvmVm -Connection $c -Name "$p-1" -MemoryBytes 64MB -NoNetwork -Start
        $script:other = New-KvmVm -Connection $c -Name "$p-2" -MemoryBytes 64MB -NoNetwork
    }
    AfterAll { Get-KvmVm -Connection $c -Name "$p*" | Remove-KvmVm -Force -Confirm:$false }

    It 'takes a snapshot with a timestamp name by default' {
        $s = $vm | Checkpoint-KvmVm -Passthru
        $s | Should -BeOfType ([KvmPS.Core.KvmSnapshot])
        $s.Name | Should -Match '^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}$'
        $s.VMName | Should -Be "$p-1"
        $s.HasMemory | Should -BeTrue
        $s.IsCurrent | Should -BeTrue
        $s | Remove-KvmSnapshot -Confirm:$false
    }

    It 'builds the tree: parent, children, current' {
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-1" -SnapshotName base -Description 'the base'
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-1" -SnapshotName mid
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-1" -SnapshotName top
        $all = Get-KvmSnapshot -Connection $c -VMName "$p-1"
        $all.Name | Should -Be @('base', 'mid', 'top')
        ($all | Where-Object Name -eq 'base').Description | Should -Be 'the base'
        ($all | Where-Object Name -eq 'mid').Parent | Should -Be 'base'
        ($all | Where-Object Name -eq 'base').Children | Should -Be @('mid')
        (Get-KvmSnapshot -Connection $c -VMName "$p-1" -Current).Name | Should -Be 'top'
        (Get-KvmSnapshot -Connection $c -VMName "$p-1" -ParentOf top).Name | Should -Be 'mid'
        (Get-KvmSnapshot -Connection $c -VMName "$p-1" -ChildOf base).Name | Should -Be 'mid'
        (Get-KvmSnapshot -Connection $c -VMName "$p-1" -Name 'M*').Name | Should -Be 'mid'
    }

    It 'refuses a duplicate name with SnapshotExists' {
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-1" -SnapshotName mid -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'SnapshotExists,*'
        @(Get-KvmSnapshot -Connection $c -VMName "$p-1" -Name mid).Count | Should -Be 1
    }

    It 'restores a snapshot and it becomes current' {
        $r = Get-KvmSnapshot -Connection $c -VMName "$p-1" -Name base | Restore-KvmSnapshot -Confirm:$false -Passthru
        $r.State | Should -Be 'Running'
        (Get-KvmSnapshot -Connection $c -VMName "$p-1" -Current).Name | Should -Be 'base'
    }

    It 'restores paused when asked' {
        $r = Restore-KvmSnapshot -Connection $c -VMName "$p-1" -Name mid -Paused -Confirm:$false -Passthru
        $r.State | Should -Be 'Paused'
        $null = Resume-KvmVm -Connection $c -Name "$p-1"
    }

    It 'does not restore a snapshot of another VM' {
        $null = Restore-KvmSnapshot -Connection $c -VMName "$p-2" -Name base -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'SnapshotNotFound,*'
        $err[0].TargetObject | Should -Be 'base'
    }

    It 'reports a missing VM as VmNotFound' {
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-none" -SnapshotName x -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmNotFound,*'
    }

    It 'removes a snapshot and re-parents its children' {
        Remove-KvmSnapshot -Connection $c -VMName "$p-1" -Name mid -Confirm:$false
        (Get-KvmSnapshot -Connection $c -VMName "$p-1" -Name top).Parent | Should -Be 'base'
    }

    It 'removes a snapshot with its children' {
        Get-KvmSnapshot -Connection $c -VMName "$p-1" -Name base | Remove-KvmSnapshot -IncludeChildren -Confirm:$false
        Get-KvmSnapshot -Connection $c -VMName "$p-1" | Should -BeNullOrEmpty
    }

    It 'formats like Hyper-V and completes snapshot names' {
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-1" -SnapshotName 'nightly 1'
        $text = Get-KvmSnapshot -Connection $c -VMName "$p-1" | Out-String
        $text | Should -Match 'VMName\s+Name\s+Kind\s+CreationTime\s+Parent'
        (Complete "Get-KvmSnapshot -Connection test:///default -VMName $p-1 -Name nigh").CompletionText | Should -Be @("'nightly 1'")
    }

    It 'refuses to rename an internal snapshot' {
        $null = Rename-KvmSnapshot -Connection $c -VMName "$p-1" -Name 'nightly 1' -NewName n2 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'SnapshotRenameUnsupported,*'
        (Get-KvmSnapshot -Connection $c -VMName "$p-1").Name | Should -Be @('nightly 1')
    }
}

Describe 'Snapshots on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:p = New-TestName 'snap'
        $script:c = 'qemu:///system'
        if (-not $skip) {
            $script:libvirt = (Connect-KvmHost -Uri $c -NotDefault).LibvirtVersion
            $null = New-KvmVm -Connection $c -Name "$p-bios" -MemoryBytes 128MB -DiskSizeBytes 64MB -NoNetwork -Start
            $null = New-KvmVm -Connection $c -Name "$p-uefi" -MemoryBytes 128MB -DiskSizeBytes 64MB -NoNetwork -Firmware Uefi -Accelerator Qemu -Start
        }
    }
    AfterAll { if (-not $skip) { Remove-SystemTestObjects $p } }

    It 'takes, lists, restores and removes an internal snapshot with memory of a running KVM VM' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $s1 = Checkpoint-KvmVm -Connection $c -Name "$p-bios" -SnapshotName s1 -Passthru
        $s1.Kind | Should -Be 'Internal'
        $s1.HasMemory | Should -BeTrue
        $s1.VmState | Should -Be 'running'
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-bios" -SnapshotName s2
        (Get-KvmSnapshot -Connection $c -VMName "$p-bios" -Name s2).Parent | Should -Be 's1'
        Stop-KvmVm -Connection $c -Name "$p-bios" -TurnOff
        $r = Get-KvmSnapshot -Connection $c -VMName "$p-bios" -Name s1 | Restore-KvmSnapshot -Confirm:$false -Passthru
        $r.State | Should -Be 'Running' -Because 'a snapshot with memory resumes the VM'
        (Get-KvmSnapshot -Connection $c -VMName "$p-bios" -Current).Name | Should -Be 's1'
        Remove-KvmSnapshot -Connection $c -VMName "$p-bios" -Name s1 -Confirm:$false
        (Get-KvmSnapshot -Connection $c -VMName "$p-bios").Name | Should -Be @('s2')
        (Get-KvmSnapshot -Connection $c -VMName "$p-bios" -Name s2).Parent | Should -BeNullOrEmpty
        & qemu-img snapshot -U -l (Get-KvmVm -Connection $c -Name "$p-bios").Disks[0].Path | Should -Not -Match '\bs1\b'
    }

    It 'takes an external snapshot of a UEFI VM (the pflash trap) and says precisely what it cannot do' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $e1 = Checkpoint-KvmVm -Connection $c -Name "$p-uefi" -SnapshotName e1 -Passthru -Verbose 4>&1 | Where-Object { $_ -is [KvmPS.Core.KvmSnapshot] }
        $e1.Kind | Should -Be $(if ($libvirt -ge [version]'10.10.0') { 'Internal' } else { 'External' })
        if ($e1.Kind -eq 'External') {
            $e1.HasMemory | Should -BeTrue
            $e1.MemoryFile | Should -Exist
            (Get-KvmVm -Connection $c -Name "$p-uefi").Disks[0].Path | Should -Be $e1.Disks[0].File
            (Get-KvmVm -Connection $c -Name "$p-uefi").State | Should -Be 'Running' -Because 'a live external snapshot leaves the VM running'
            if ($libvirt -lt [version]'9.9.0') {
                $null = $e1 | Restore-KvmSnapshot -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
                $err[0].FullyQualifiedErrorId | Should -BeLike 'SnapshotUnsupported,*'
                $err[0].Exception.Message | Should -Match '9\.9\.0'
                (Get-KvmSnapshot -Connection $c -VMName "$p-uefi").Name | Should -Be @('e1') -Because 'nothing was lost'
            }
            ($e1 | Rename-KvmSnapshot -NewName e1-renamed -Passthru).Name | Should -Be 'e1-renamed'
        }
        else {
            # libvirt 10.10 and later snapshot UEFI VMs internally, NVRAM included
            & qemu-img snapshot -U -l (Get-ActiveDiskPath "$p-uefi") | Should -Match '\be1\b'
        }
    }

    It 'takes a disk-only snapshot: the VM runs on a new overlay over the old disk, which keeps the old data' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $base = Get-ActiveDiskPath "$p-bios"
        Write-DiskPattern "$p-bios" 0x11 0 64k
        $d = Checkpoint-KvmVm -Connection $c -Name "$p-bios" -SnapshotName d1 -DiskOnly -Passthru
        $d.Kind | Should -Be 'External'
        $d.HasMemory | Should -BeFalse
        $overlay = $d.Disks[0].File
        $overlay | Should -Exist
        $overlay | Should -Not -Be $base
        Get-ActiveDiskPath "$p-bios" | Should -Be $overlay -Because 'the running VM writes to the overlay now'
        (Get-KvmVm -Connection $c -Name "$p-bios").Disks[0].Path | Should -Be $overlay
        Get-BackingFile $overlay | Should -Be $base
        (Get-KvmVm -Connection $c -Name "$p-bios").State | Should -Be 'Running'

        Write-DiskPattern "$p-bios" 0x22 0 64k
        Test-DiskPattern $overlay 0x22 0 64k | Should -BeTrue -Because 'new writes land in the overlay'
        Test-DiskPattern $base 0x11 0 64k | Should -BeTrue -Because 'the snapshot keeps the old data'
        Test-DiskPattern $base 0x22 0 64k | Should -BeFalse -Because 'the check can fail'
    }

    It 'fails -Quiesce clearly when no guest agent answers, taking nothing' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-bios" -SnapshotName q1 -Quiesce -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'GuestAgentUnavailable,*'
        Get-KvmSnapshot -Connection $c -VMName "$p-bios" -Name q1 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'removes an external snapshot by merging it (libvirt 9.0 and later): the overlay goes, its data stays' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $before = Get-ActiveDiskPath "$p-uefi"
        $beforeBacking = Get-BackingFile $before
        $e2 = Checkpoint-KvmVm -Connection $c -Name "$p-uefi" -SnapshotName e2 -Passthru
        $e2.Kind | Should -Be $(if ($libvirt -ge [version]'10.10.0') { 'Internal' } else { 'External' })
        Write-DiskPattern "$p-uefi" 0x33 1M 64k
        if ($e2.Kind -eq 'External') {
            $overlay = $e2.Disks[0].File
            $overlay | Should -Exist
            Get-ActiveDiskPath "$p-uefi" | Should -Be $overlay
            Get-BackingFile $overlay | Should -Be $before
            Test-DiskPattern $before 0x33 1M 64k | Should -BeFalse -Because 'the write went to the overlay'
        }
        else {
            & qemu-img snapshot -U -l $before | Should -Match '\be2\b'
        }

        Remove-KvmSnapshot -Connection $c -VMName "$p-uefi" -Name e2 -Confirm:$false
        (Get-KvmSnapshot -Connection $c -VMName "$p-uefi").Name | Should -Not -Contain 'e2'
        (Get-KvmVm -Connection $c -Name "$p-uefi").State | Should -Be 'Running'
        Get-ActiveDiskPath "$p-uefi" | Should -Be $before -Because 'the VM runs on the disk it had before the snapshot'
        Get-BackingFile $before | Should -Be $beforeBacking
        Test-DiskPattern $before 0x33 1M 64k | Should -BeTrue -Because 'what was written after the snapshot is kept'
        if ($e2.Kind -eq 'External') {
            $overlay | Should -Not -Exist -Because 'the merged overlay is deleted'
        }
        else {
            & qemu-img snapshot -U -l $before | Should -Not -Match '\be2\b'
        }
    }

    It 'removes a VM with external snapshots and all of its files' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Remove-KvmVm -Connection $c -Name "$p-uefi" -Force -RemoveStorage -Confirm:$false
        Get-ChildItem /var/lib/libvirt/images -Filter "$p-uefi*" | Should -BeNullOrEmpty
    }
}
