# Issue 13, point 6: Ctrl+C or -OperationTimeoutSec during a create, a define, a backup begin or a restore leaves nothing:
# no VM, volume, checkpoint, libvirt job or partial file, even when libvirt finishes a call after the command gave up.
# The slow calls are made slow on purpose: a PRIVATE libvirtd (qemu session driver, run as 'nobody' on its own socket,
# never the shared daemon) is frozen with SIGSTOP at the moment the command writes the verbose line that precedes the
# call, so the call is certain to be in flight when the command is stopped or times out.
BeforeAll {
    . $PSScriptRoot/common.ps1

    # Acts when the command in $ps writes a verbose line containing $Text, on the command's own thread and before the
    # command goes on: freezes a process (SIGSTOP) and/or stops the command (Ctrl+C). A C# handler, because the command's
    # thread has no runspace to run a script block on.
    if (-not ('KvmPSTest.CancelHook' -as [type])) {
        Add-Type -TypeDefinition @'
using System;
using System.Diagnostics;
using System.Management.Automation;
using System.Threading;

namespace KvmPSTest
{
    public static class CancelHook
    {
        public static void On(PowerShell ps, string text, int freezePid, bool stop)
        {
            int fired = 0;
            ps.Streams.Verbose.DataAdded += (sender, e) =>
            {
                VerboseRecord r = ps.Streams.Verbose[e.Index];
                if (!r.Message.Contains(text) || Interlocked.Exchange(ref fired, 1) == 1)
                {
                    return;
                }

                if (freezePid > 0)
                {
                    Signal("-STOP", freezePid);
                }

                if (stop)
                {
                    ThreadPool.QueueUserWorkItem(_ => ps.BeginStop(null, null));
                    Thread.Sleep(500);   // the stop reaches the command before its next call
                }
            };
        }

        public static void Signal(string signal, int pid)
        {
            using Process p = Process.Start("kill", new[] { signal, pid.ToString() });
            p.WaitForExit();
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "umask")]
        public static extern uint Umask(uint mask);
    }
}
'@
    }

    function Invoke-Virsh {
        $out = & virsh -c $Uri @args 2>&1
        if ($LASTEXITCODE -ne 0) { throw "virsh $args failed: $out" }
        $out
    }

    # Runs one KvmPS command in its own runspace with the hook armed; returns the PowerShell and its async result.
    function Start-Hooked([string] $Command, [hashtable] $Parameters, [string] $Text, [int] $FreezePid, [switch] $Stop) {
        $rs = [runspacefactory]::CreateRunspace()
        $rs.Open()
        $ps = [powershell]::Create()
        $ps.Runspace = $rs
        $null = $ps.AddCommand('Import-Module').AddArgument($ModulePath).Invoke()
        $ps.Commands.Clear()
        $null = $ps.AddCommand($Command).AddParameters($Parameters).AddParameter('Verbose', $true)
        [KvmPSTest.CancelHook]::On($ps, $Text, $FreezePid, [bool]$Stop)
        [pscustomobject]@{ PS = $ps; Async = $ps.BeginInvoke(); Runspace = $rs }
    }

    # Waits (bounded) for the command to end; returns its error records.
    function Wait-Hooked($Run, [int] $Seconds = 90) {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        while (-not $Run.Async.IsCompleted -and $sw.Elapsed.TotalSeconds -lt $Seconds) { Start-Sleep -Milliseconds 100 }
        $Run.Async.IsCompleted | Should -BeTrue -Because "the command ends within $Seconds s after a cancel or timeout"
        try { $null = $Run.PS.EndInvoke($Run.Async) } catch { $null = $_ }
        $errors = @($Run.PS.Streams.Error)
        $Run.PS.Dispose()
        $Run.Runspace.Dispose()
        $errors
    }

    # Waits until every call queued while the daemon was frozen has been answered (a fresh round trip gets through
    # behind them), then gives a late clean-up a moment to land.
    function Wait-Settled {
        $null = Invoke-Virsh version
        Start-Sleep -Seconds 3
        $null = Invoke-Virsh version
    }

    function Resume-Daemon { [KvmPSTest.CancelHook]::Signal('-CONT', $DaemonPid) }

    $script:CanRun = [bool](Get-Command libvirtd -ErrorAction SilentlyContinue) -and [bool](Get-Command setpriv -ErrorAction SilentlyContinue) `
        -and [bool](Get-Command qemu-system-x86_64 -ErrorAction SilentlyContinue) -and ((id -u) -eq '0')
    $script:Prefix = New-TestName 'cx'
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) $Prefix
    $script:Uri = "qemu+unix:///session?socket=$Dir/run/libvirt-sock"
    $script:Pool = "$Prefix-pool"
    if ($CanRun) {
        $null = New-Item -ItemType Directory -Force -Path "$Dir/pool"   # made writable for the daemon's user with the rest of $Dir
        $script:DaemonPid = Start-PrivateLibvirtd $Dir
        $null = Invoke-Virsh pool-define-as $Pool dir --target "$Dir/pool"
        $null = Invoke-Virsh pool-start $Pool
    }
}

AfterAll {
    if ($CanRun) {
        Get-KvmConnection -All | Where-Object { $_.RequestedUri -like "*$Dir*" } | Disconnect-KvmHost -ErrorAction SilentlyContinue
        if (Test-Path "$Dir/pid") {
            & kill -CONT ([int](Get-Content "$Dir/pid" -Raw)) 2>$null
            foreach ($vm in & virsh -c $Uri list --name 2>$null | Where-Object { $_ }) { & virsh -c $Uri destroy $vm *> $null }
        }
        Stop-PrivateLibvirtd $Dir
        Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
    }
}

Describe 'Cancellation leaves nothing' -Tag System {
    BeforeEach {
        if (-not $CanRun) { Set-ItResult -Skipped -Because 'needs root, libvirtd, setpriv and qemu to run a private daemon'; return }
    }
    AfterEach {
        if ($CanRun) { Resume-Daemon }
    }

    It 'New-KvmVolume given up by -OperationTimeoutSec: the volume is deleted when the create lands after all' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0 -OperationTimeoutSec 2
        $null = Get-KvmStoragePool -Connection $c -Name $Pool
        $name = "$Prefix-vol1"
        $run = Start-Hooked New-KvmVolume @{ Connection = $c; Pool = $Pool; Name = $name; SizeBytes = 1MB; Format = 'raw' } "volume '$name'" $DaemonPid
        $errors = Wait-Hooked $run
        Resume-Daemon
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'OperationTimeout,*'
        Wait-Settled
        $null = Invoke-Virsh pool-refresh $Pool
        (Invoke-Virsh vol-list $Pool) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        Test-Path "$Dir/pool/$name" | Should -BeFalse
        Disconnect-KvmHost $c
    }

    It 'New-KvmVolume stopped by Ctrl+C while the create is in flight leaves no volume' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0
        $null = Get-KvmStoragePool -Connection $c -Name $Pool
        $name = "$Prefix-vol2"
        $run = Start-Hooked New-KvmVolume @{ Connection = $c; Pool = $Pool; Name = $name; SizeBytes = 1MB; Format = 'raw' } "volume '$name'" $DaemonPid -Stop
        Start-Sleep -Seconds 4   # the command gave up on the create (2 s grace) and its rollback waits for the daemon
        Resume-Daemon
        $null = Wait-Hooked $run
        $run.PS.InvocationStateInfo.State | Should -Be 'Stopped'
        Wait-Settled
        $null = Invoke-Virsh pool-refresh $Pool
        (Invoke-Virsh vol-list $Pool) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        Test-Path "$Dir/pool/$name" | Should -BeFalse
        Disconnect-KvmHost $c
    }

    It 'Import-KvmVolume given up by -OperationTimeoutSec while the volume is created: no volume is left once it lands' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0 -OperationTimeoutSec 2
        $null = Get-KvmStoragePool -Connection $c -Name $Pool
        $name = "$Prefix-imported"
        $file = Join-Path $Dir 'upload.img'
        [IO.File]::WriteAllBytes($file, [byte[]]::new(1MB))
        $run = Start-Hooked Import-KvmVolume @{ Connection = $c; Path = $file; Pool = $Pool; Name = $name } "Creating volume '$name'" $DaemonPid
        $errors = Wait-Hooked $run
        Resume-Daemon
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'OperationTimeout,*'
        Wait-Settled
        $null = Invoke-Virsh pool-refresh $Pool
        (Invoke-Virsh vol-list $Pool) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        Test-Path "$Dir/pool/$name" | Should -BeFalse
        Disconnect-KvmHost $c
    }

    It 'Copy-KvmVolume given up by -OperationTimeoutSec during the clone: the copy is deleted once the clone lands' {
        $source = "$Prefix-source"
        $null = Invoke-Virsh vol-create-as $Pool $source 4M --format raw
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0 -OperationTimeoutSec 2
        $name = "$Prefix-copy"
        $run = Start-Hooked Copy-KvmVolume @{ Connection = $c; Pool = $Pool; Name = $source; Destination = $name } "to $Pool/$name" $DaemonPid
        $errors = Wait-Hooked $run
        Resume-Daemon
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'OperationTimeout,*'
        Wait-Settled
        $null = Invoke-Virsh pool-refresh $Pool
        $volumes = (Invoke-Virsh vol-list $Pool) -join "`n"
        $volumes | Should -Not -Match ([regex]::Escape($name))
        $volumes | Should -Match ([regex]::Escape($source))
        Test-Path "$Dir/pool/$name" | Should -BeFalse
        Disconnect-KvmHost $c
    }

    It 'New-KvmVm given up during the define (-OperationTimeoutSec): no VM is left once the define lands' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0 -OperationTimeoutSec 2
        $null = Get-KvmHost -Connection $c
        $name = "$Prefix-vm1"
        $run = Start-Hooked New-KvmVm @{ Connection = $c; Name = $name; MemoryBytes = 64MB; NoNetwork = $true } "Defining VM '$name'" $DaemonPid
        $errors = Wait-Hooked $run
        Resume-Daemon
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'VmCreateFailed,*'
        $errors[0].Exception.InnerException.Code | Should -Be 'OperationTimeout'
        Wait-Settled
        (Invoke-Virsh list --all --name) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        Disconnect-KvmHost $c
    }

    It 'New-KvmVm stopped by Ctrl+C during the define, with a new disk: no VM and no volume is left' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0
        $null = Get-KvmHost -Connection $c
        $name = "$Prefix-vm2"
        $run = Start-Hooked New-KvmVm @{ Connection = $c; Name = $name; MemoryBytes = 64MB; NoNetwork = $true; DiskSizeBytes = 16MB; StoragePool = $Pool } "Defining VM '$name'" $DaemonPid -Stop
        Start-Sleep -Seconds 4
        Resume-Daemon
        $null = Wait-Hooked $run
        $run.PS.InvocationStateInfo.State | Should -Be 'Stopped'
        Wait-Settled
        (Invoke-Virsh list --all --name) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        $null = Invoke-Virsh pool-refresh $Pool
        (Invoke-Virsh vol-list $Pool) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        Disconnect-KvmHost $c
    }

    It 'Import-KvmVm given up during the define (-OperationTimeoutSec): no VM is left once the define lands' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0 -OperationTimeoutSec 2
        $null = Get-KvmHost -Connection $c
        $name = "$Prefix-imp"
        $xml = Join-Path $Dir "$name.xml"
        "<domain type='qemu'><name>$name</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>" | Set-Content $xml
        $run = Start-Hooked Import-KvmVm @{ Connection = $c; Path = $xml } "Defining VM '$name'" $DaemonPid
        $errors = Wait-Hooked $run
        Resume-Daemon
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'OperationTimeout,*'
        Wait-Settled
        (Invoke-Virsh list --all --name) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        Disconnect-KvmHost $c
    }
}

Describe 'Cancelling backups and restores leaves nothing' -Tag System {
    BeforeAll {
        if ($CanRun) {
            # a running VM whose qcow2 disk holds 256 MiB of data, so copies of it take a moment
            $script:Vm = "$Prefix-src"
            $disk = "$Dir/pool/$Vm.qcow2"
            & qemu-img create -q -f qcow2 $disk 512M
            & qemu-io -f qcow2 -c 'write -P 0x5a 0 256M' $disk *> $null
            & chmod 0666 $disk
            $null = Invoke-Virsh pool-refresh $Pool
            $xml = Join-Path $Dir "$Vm.xml"
            @"
<domain type='qemu'><name>$Vm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$disk'/><target dev='vda' bus='virtio'/></disk></devices></domain>
"@ | Set-Content $xml
            $null = Invoke-Virsh define $xml
            $null = Invoke-Virsh start $Vm
            # QEMU runs as 'nobody' here and writes the backup files itself: folders KvmPS makes must be writable for it
            $script:OldUmask = [KvmPSTest.CancelHook]::Umask(0)
        }
    }
    AfterAll {
        if ($CanRun) { $null = [KvmPSTest.CancelHook]::Umask($OldUmask) }
    }
    BeforeEach {
        if (-not $CanRun) { Set-ItResult -Skipped -Because 'needs root, libvirtd, setpriv and qemu to run a private daemon'; return }
    }
    AfterEach {
        if ($CanRun) { Resume-Daemon }
    }

    It 'Backup-KvmVm stopped by Ctrl+C while the backup begin is in flight: no job, checkpoint or backup folder is left' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0
        $null = Get-KvmVm -Connection $c -Name $Vm
        $set = Join-Path $Dir 'set-begin'
        $run = Start-Hooked Backup-KvmVm @{ Connection = $c; Name = $Vm; Destination = $set } 'backup job of VM' $DaemonPid -Stop
        Start-Sleep -Seconds 4   # gave up on the begin; the rollback waits for the frozen daemon
        Resume-Daemon
        $null = Wait-Hooked $run
        $run.PS.InvocationStateInfo.State | Should -Be 'Stopped'
        # the begin lands once the daemon runs again: the job it started and the checkpoint it made are taken back
        $sw = [Diagnostics.Stopwatch]::StartNew()
        do {
            Start-Sleep -Milliseconds 500
            $checkpoints = @(Invoke-Virsh checkpoint-list $Vm --name | Where-Object { $_.Trim() })
            $job = (Invoke-Virsh domjobinfo $Vm) -join "`n"
        } until (($checkpoints.Count -eq 0 -and $job -match 'Job type:\s+None' -and -not (Test-Path $set)) -or $sw.Elapsed.TotalSeconds -gt 30)
        $checkpoints | Should -BeNullOrEmpty
        $job | Should -Match 'Job type:\s+None'
        Test-Path $set | Should -BeFalse
        (Invoke-Virsh domstate $Vm) -join '' | Should -Match 'running'
        Disconnect-KvmHost $c
    }

    It 'Backup-KvmVm given up by -OperationTimeoutSec during the begin: no job, checkpoint or folder is left' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0 -OperationTimeoutSec 2
        $null = Get-KvmVm -Connection $c -Name $Vm
        $set = Join-Path $Dir 'set-timeout'
        $run = Start-Hooked Backup-KvmVm @{ Connection = $c; Name = $Vm; Destination = $set } 'backup job of VM' $DaemonPid
        $errors = Wait-Hooked $run
        Resume-Daemon
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'OperationTimeout,*'
        $sw = [Diagnostics.Stopwatch]::StartNew()
        do {
            Start-Sleep -Milliseconds 500
            $checkpoints = @(Invoke-Virsh checkpoint-list $Vm --name | Where-Object { $_.Trim() })
            $job = (Invoke-Virsh domjobinfo $Vm) -join "`n"
        } until (($checkpoints.Count -eq 0 -and $job -match 'Job type:\s+None' -and -not (Test-Path $set)) -or $sw.Elapsed.TotalSeconds -gt 30)
        $checkpoints | Should -BeNullOrEmpty
        $job | Should -Match 'Job type:\s+None'
        Test-Path $set | Should -BeFalse
        Disconnect-KvmHost $c
    }

    It 'Restore-KvmBackup stopped by Ctrl+C during the disk convert: no VM and no partial disk file is left' {
        $c = Connect-KvmHost $Uri -NotDefault -KeepAliveIntervalSec 0
        $set = Join-Path $Dir 'set-full'
        # an offline backup, written by KvmPS itself: this private daemon runs QEMU as 'nobody', which may not create
        # files in a backup set's private (0711, root-owned) folders
        $null = Invoke-Virsh destroy $Vm
        $backup = Backup-KvmVm -Connection $c -Name $Vm -Destination $set -NoCheckpoint
        $backup.Disks[0].SizeBytes | Should -BeGreaterThan 200MB
        $name = "$Prefix-restored"
        $tempBefore = @(Get-ChildItem ([IO.Path]::GetTempPath()) -Filter 'kvmps-restore-*' -Directory).FullName
        $run = Start-Hooked Restore-KvmBackup @{ Connection = $c; Path = $set; Name = $name; StoragePool = $Pool } 'Rebuilding disk' 0 -Stop
        $null = Wait-Hooked $run
        $run.PS.InvocationStateInfo.State | Should -Be 'Stopped'
        (Invoke-Virsh list --all --name) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        @(Get-ChildItem "$Dir/pool" -Filter "$name*") | Should -BeNullOrEmpty
        @(Get-ChildItem ([IO.Path]::GetTempPath()) -Filter 'kvmps-restore-*' -Directory | Where-Object FullName -NotIn $tempBefore) | Should -BeNullOrEmpty
        $null = Invoke-Virsh pool-refresh $Pool
        (Invoke-Virsh vol-list $Pool) -join "`n" | Should -Not -Match ([regex]::Escape($name))
        Disconnect-KvmHost $c
    }
}
