BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')   # Write-DiskPattern, Test-DiskPattern
}

Describe 'Backup-KvmVm and Restore-KvmBackup on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:p = New-TestName 'bk'
        $script:c = 'qemu:///system'
        $script:set = Join-Path ([IO.Path]::GetTempPath()) "$p-set"
        if (-not $skip) {
            $null = New-KvmVm -Connection $c -Name "$p-src" -MemoryBytes 128MB -DiskSizeBytes 64MB -NoNetwork -Start
        }
    }
    AfterAll {
        if (-not $skip) { Remove-SystemTestObjects $p }
        Remove-Item $set, "$set-*" -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'takes a full and an incremental backup of a running VM, and the restored copy has byte-identical data' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Write-DiskPattern "$p-src" 0xab 0 64k
        $full = Backup-KvmVm -Connection $c -Name "$p-src" -Destination $set
        $full | Should -BeOfType ([KvmPS.Core.KvmBackup])
        $full.Kind | Should -Be 'Full'
        $full.Checkpoint | Should -Not -BeNullOrEmpty
        $full.Disks[0].Target | Should -Be 'vda'
        $full.Disks[0].File | Should -Exist
        Join-Path $full.Path 'domain.xml' | Should -Exist
        Join-Path $set 'kvmps-backup.json' | Should -Exist

        Write-DiskPattern "$p-src" 0xcd 1M 64k
        $inc = Backup-KvmVm -Connection $c -Name "$p-src" -Destination $set -Incremental
        $inc.Kind | Should -Be 'Incremental'
        $inc.Parent | Should -Be $full.Name
        $inc.BytesWritten | Should -BeLessThan ($full.BytesWritten / 50) -Because 'only changed blocks are copied'

        (Get-KvmBackup -Path $set).Name | Should -Be @($full.Name, $inc.Name)

        $copy = Restore-KvmBackup -Connection $c -Path $set -Name "$p-copy"
        $copy.Name | Should -Be "$p-copy"
        $copy.Uuid | Should -Not -Be (Get-KvmVm -Connection $c -Name "$p-src").Uuid
        $image = $copy.Disks[0].Path
        Test-DiskPattern $image 0xab 0 64k | Should -BeTrue
        Test-DiskPattern $image 0xcd 1M 64k | Should -BeTrue
        Test-DiskPattern $image 0xcd 0 64k | Should -BeFalse -Because 'the check can fail'
    }

    It 'restores the full backup alone, without the later changes' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $first = Get-KvmBackup -Path $set | Select-Object -First 1
        $vm = $first | Restore-KvmBackup -Connection $c -Name "$p-first"
        Test-DiskPattern $vm.Disks[0].Path 0xab 0 64k | Should -BeTrue
        Test-DiskPattern $vm.Disks[0].Path 0xcd 1M 64k | Should -BeFalse
    }

    It 'refuses to restore over an existing VM' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Restore-KvmBackup -Connection $c -Path $set -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmExists,*'
    }

    It 'refuses a full backup into a non-empty folder and an unwritable one' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $before = (Get-ChildItem $set -Recurse).Count
        $null = Backup-KvmVm -Connection $c -Name "$p-src" -Destination $set -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DestinationNotEmpty,*'
        (Get-ChildItem $set -Recurse).Count | Should -Be $before -Because 'nothing is lost or added'
        $null = Backup-KvmVm -Connection $c -Name "$p-src" -Destination '/proc/kvmps-no-such/backup' -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'DestinationUnwritable,*'
    }

    It 'refuses an incremental backup without a full one' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Backup-KvmVm -Connection $c -Name "$p-src" -Destination "$set-empty" -Incremental -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NoFullBackup,*'
        "$set-empty" | Should -Not -Exist
    }

    It 'says precisely why snapshots and checkpoints do not mix, and -NoCheckpoint is the way out' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Checkpoint-KvmVm -Connection $c -Name "$p-src" -SnapshotName s1
        $null = Backup-KvmVm -Connection $c -Name "$p-src" -Destination "$set-snap" -ErrorAction SilentlyContinue -ErrorVariable err
        if ((Connect-KvmHost -Uri $c -NotDefault).LibvirtVersion -lt [version]'9.9.0') {
            $err[0].FullyQualifiedErrorId | Should -BeLike 'BackupCheckpointConflict,*'
            $err[0].ErrorDetails.RecommendedAction | Should -Match 'NoCheckpoint'
            "$set-snap" | Should -Not -Exist
        }
        else {
            # libvirt 9.9 and later allow both on one VM: the backup with its checkpoint simply works
            $err | Should -BeNullOrEmpty
            (Get-KvmBackup -Path "$set-snap").Kind | Should -Be 'Full'
        }
        Remove-Item "$set-snap" -Recurse -Force -ErrorAction SilentlyContinue
        $b = Backup-KvmVm -Connection $c -Name "$p-src" -Destination "$set-snap" -NoCheckpoint
        $b.Kind | Should -Be 'Full'
        $b.Checkpoint | Should -BeNullOrEmpty
        Remove-KvmSnapshot -Connection $c -VMName "$p-src" -Name s1 -Confirm:$false
    }

    It 'aborts the job on Ctrl+C and leaves no partial files, job or checkpoint' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmVm -Connection $c -Name "$p-big" -MemoryBytes 128MB -DiskSizeBytes 4GB -NoNetwork -Start
        Write-DiskPattern "$p-big" 0x11 0 1G
        Write-DiskPattern "$p-big" 0x22 1G 1G
        $before = @(& virsh -c $c checkpoint-list "$p-big" --name | Where-Object { $_.Trim() }).Count
        # One runspace: import first (its own invocation), then run the backup and stop it like Ctrl+C does.
        $rs = [runspacefactory]::CreateRunspace()
        $rs.Open()
        try {
            $ps = [powershell]::Create()
            $ps.Runspace = $rs
            $null = $ps.AddCommand('Import-Module').AddArgument($ModulePath).Invoke()
            $ps.Commands.Clear()
            $null = $ps.AddCommand('Backup-KvmVm').AddParameter('Connection', $c).AddParameter('Name', "$p-big").AddParameter('Destination', "$set-big")
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $async = $ps.BeginInvoke()
            # Stop only once libvirt reports the backup job running and copying (an independent view of it).
            $job = ''
            while ($job -notmatch 'Operation:\s+Backup' -and -not $async.IsCompleted -and $sw.Elapsed.TotalSeconds -lt 60) {
                Start-Sleep -Milliseconds 50
                $job = (& virsh -c $c domjobinfo "$p-big" 2>$null) -join "`n"
            }
            $ps.InvocationStateInfo.State | Should -Be 'Running' -Because "the backup must still run when stopped ($($ps.InvocationStateInfo.Reason))"
            $job | Should -Match 'Operation:\s+Backup' -Because 'libvirt shows the backup job before Ctrl+C'
            $job | Should -Not -Match 'Job type:\s+None'
            $ps.Stop()
            $stopError = $null
            try { $null = $ps.EndInvoke($async) } catch { $stopError = $_.Exception }
            $stopError | Should -Not -BeNullOrEmpty -Because 'a stopped pipeline ends with PipelineStoppedException'
            $stopError.GetBaseException() | Should -BeOfType ([System.Management.Automation.PipelineStoppedException])
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            @($ps.Streams.Error) | Should -HaveCount 0 -Because 'Ctrl+C is not an error'
            $ps.Dispose()
        }
        finally { $rs.Dispose() }
        "$set-big" | Should -Not -Exist
        Get-ChildItem (Split-Path $set) -Filter "$(Split-Path $set -Leaf)-big*" | Should -BeNullOrEmpty -Because 'no partial file is left beside it'
        (& virsh -c $c domjobinfo "$p-big") -join ' ' | Should -Match 'Job type:\s+None'
        @(& virsh -c $c checkpoint-list "$p-big" --name | Where-Object { $_.Trim() }).Count | Should -Be $before
    }

    It 'copies a shut-off VM consistently' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Stop-KvmVm -Connection $c -Name "$p-src" -TurnOff
        $b = Backup-KvmVm -Connection $c -Name "$p-src" -Destination "$set-off" -WarningAction SilentlyContinue
        $b.Kind | Should -Be 'Full'
        Test-DiskPattern $b.Disks[0].File 0xab 0 64k | Should -BeTrue
        $null = Backup-KvmVm -Connection $c -Name "$p-src" -Destination "$set-off" -Incremental -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmStateInvalid,*'
    }
}
