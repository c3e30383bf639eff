# Issue 15's test set-up: a second libvirt host on this machine (.ci/peer-libvirtd) that the shared daemon migrates VMs
# to and from. Proven with virsh only (Move-KvmVm's tests build on it): live with shared storage (managed and
# peer-to-peer, both directions), live with --copy-storage-all (NBD, both directions, disk contents identical), offline.
# The options that work, and why each is there, are in .ci/peer-libvirtd.md. The peer is shared by both backend passes
# and left running; every object here has this file's prefix and is removed from both daemons in AfterAll.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:p = New-TestName 'peer'
    $script:main = 'qemu:///system'
    $script:peer = Get-PeerUri
    # the host daemon as the peer's own namespace sees it (peer-to-peer back)
    $script:mainFromPeer = Get-PeerMainUri
    # per migration: QEMU's stream to 127.0.0.1, the target listening on 127.0.0.1 (a migration_address in qemu.conf
    # is refused); libvirt's own port range of each daemon
    $script:net = @('--migrateuri', 'tcp://127.0.0.1', '--listen-address', '127.0.0.1')
    $script:timings = [Collections.Generic.List[string]]::new()

    # virsh with its exit code and all output (stdout and stderr) as one string
    function script:Invoke-Virsh([string] $Uri) {
        $out = & virsh -c $Uri @args 2>&1 | Out-String
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = $out.Trim() }
    }
    # a migration through virsh, timed; throws with libvirt's message when it fails
    function script:Invoke-Migration([string] $Label, [string] $From, [string] $Vm, [string] $To, [string[]] $Options) {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $r = Invoke-Virsh $From migrate @Options $Vm $To @net
        $sw.Stop()
        $script:timings.Add(('{0}: {1:N1} s' -f $Label, $sw.Elapsed.TotalSeconds))
        if ($r.ExitCode -ne 0) { throw "virsh migrate ($Label) failed: $($r.Output)" }
    }
    # 'running', 'shut off', ... or $null when the daemon has no such domain
    function script:Get-DomState([string] $Uri, [string] $Vm) {
        $r = Invoke-Virsh $Uri domstate $Vm
        if ($r.ExitCode -ne 0) { return $null }
        ($r.Output -split "`n")[0].Trim()
    }
    function script:Test-Persistent([string] $Uri, [string] $Vm) {
        (Invoke-Virsh $Uri dominfo $Vm).Output -match '(?m)^Persistent:\s+yes'
    }
}

AfterAll {
    Get-KvmConnection | Where-Object { "$($_.RequestedUri)" -like '*kvmps-peer*' } | Disconnect-KvmHost -ErrorAction SilentlyContinue
    Remove-PeerTestObjects $p
    Remove-SystemTestObjects $p
    Get-ChildItem $SharedDir -Filter "$p*" -ErrorAction SilentlyContinue | Remove-Item -Force -ErrorAction SilentlyContinue
    if ($timings.Count) { Write-Host "Migration times ($env:KVMPS_BACKEND pass): $($timings -join '; ')" }
}

Describe 'A second libvirt host on this machine (.ci/peer-libvirtd)' -Tag System, Peer {
    It 'is another host: its own host UUID, pool default at the same path with other files, answers on this backend' {
        $uuidOf = { param($u) ((Invoke-Virsh $u capabilities).Output | Select-String '<uuid>([^<]+)</uuid>').Matches[0].Groups[1].Value }
        $peerUuid = & $uuidOf $peer
        $peerUuid | Should -Match '^[0-9a-f-]{36}$'
        $peerUuid | Should -Not -Be (& $uuidOf $main)
        (Invoke-Virsh $peer pool-dumpxml default).Output | Should -Match '<path>/var/lib/libvirt/images</path>'
        # a file in the host's /var/lib/libvirt/images is not in the peer's (its path there is another directory)
        $probe = "/var/lib/libvirt/images/$p-probe.qcow2"
        & qemu-img create -q -f qcow2 $probe 1M
        & virsh -c $peer pool-refresh default *> $null
        (Invoke-Virsh $peer vol-list default).Output | Should -Not -Match "$p-probe"
        Remove-Item -Force $probe
        # the host daemon's URI for the peer's namespace answers here too, as the host daemon
        & $uuidOf $mainFromPeer | Should -Be (& $uuidOf $main)
        $c = Connect-KvmHost $peer
        $c.Backend | Should -Be $(if ($env:KVMPS_BACKEND) { $env:KVMPS_BACKEND } else { 'Native' })
        (Get-KvmHost -Connection $c).LibvirtVersion | Should -Not -BeNullOrEmpty
        @(Get-KvmVm -Connection $c | Where-Object Name -like "$p*").Count | Should -Be 0
    }

    It 'refuses a shared-path live migration without --unsafe (a local ext4 path is not shared storage to libvirt)' {
        $vm = New-MigratableTestVm -Name "$p-unsafe" -Shared -Start
        $r = Invoke-Virsh $main migrate --live --persistent --undefinesource $vm $peer @net
        $r.ExitCode | Should -Not -Be 0
        $r.Output | Should -Match 'Unsafe migration: Migration without shared storage is unsafe'
        Get-DomState $main $vm | Should -Be 'running'
        Get-DomState $peer $vm | Should -BeNullOrEmpty
    }

    It 'live, shared storage, managed (client-driven): host → peer and back; the image stays the qemu user''s' {
        $vm = New-MigratableTestVm -Name "$p-shm" -Shared -Start
        $disk = "$SharedDir/$vm.qcow2"
        Write-DiskPattern $vm 0x5a 0 64k
        Invoke-Migration 'live shared managed host→peer' $main $vm $peer @('--live', '--persistent', '--undefinesource', '--unsafe')
        Get-DomState $peer $vm | Should -Be 'running'
        Test-Persistent $peer $vm | Should -BeTrue
        Get-DomState $main $vm | Should -BeNullOrEmpty
        (& stat -c %U $disk) | Should -Be (Get-QemuUser)
        # the guest on the peer runs on the same file: what it writes there is in the shared image
        Write-DiskPattern $vm 0x6b 64k 64k -Uri $peer
        Test-DiskPattern $disk 0x6b 64k 64k | Should -BeTrue

        Invoke-Migration 'live shared managed peer→host' $peer $vm $main @('--live', '--persistent', '--undefinesource', '--unsafe')
        Get-DomState $main $vm | Should -Be 'running'
        Test-Persistent $main $vm | Should -BeTrue
        Get-DomState $peer $vm | Should -BeNullOrEmpty
        (& stat -c %U $disk) | Should -Be (Get-QemuUser)
        Test-DiskPattern $disk 0x5a 0 64k | Should -BeTrue
        $c = Connect-KvmHost $main
        (Get-KvmVm -Connection $c -Name $vm).State | Should -Be 'Running'
    }

    It 'live, shared storage, peer-to-peer: host → peer and back (the peer names the host by its socket in its namespace)' {
        $vm = New-MigratableTestVm -Name "$p-shp" -Shared -Start
        Invoke-Migration 'live shared p2p host→peer' $main $vm $peer @('--live', '--p2p', '--persistent', '--undefinesource', '--unsafe')
        Get-DomState $peer $vm | Should -Be 'running'
        Get-DomState $main $vm | Should -BeNullOrEmpty
        $c = Connect-KvmHost $peer
        (Get-KvmVm -Connection $c -Name $vm).State | Should -Be 'Running'

        # the source daemon opens the destination URI itself: qemu:///system inside the peer is the peer
        $r = Invoke-Virsh $peer migrate --live --p2p --persistent --undefinesource --unsafe $vm 'qemu:///system' @net
        $r.ExitCode | Should -Not -Be 0
        $r.Output | Should -Match 'Attempt to migrate guest to the same host'
        Get-DomState $peer $vm | Should -Be 'running'

        Invoke-Migration 'live shared p2p peer→host' $peer $vm $mainFromPeer @('--live', '--p2p', '--persistent', '--undefinesource', '--unsafe')
        Get-DomState $main $vm | Should -Be 'running'
        Test-Persistent $main $vm | Should -BeTrue
        Get-DomState $peer $vm | Should -BeNullOrEmpty
    }

    It 'live with --copy-storage-all (NBD): host → peer and back, the disk identical on the other side' {
        $vm = "$p-copy"
        $src = "/var/lib/libvirt/images/$vm.qcow2"
        $dst = Get-PeerImagePath "$vm.qcow2"
        & qemu-img create -q -f qcow2 $src 64M
        & qemu-io -f qcow2 -c 'write -P 0xab 0 1M' $src *> $null
        $null = New-MigratableTestVm -Name $vm -Local -Start
        Write-DiskPattern $vm 0xcd 2M 1M
        Test-Path $dst | Should -BeFalse

        Invoke-Migration 'live copy-storage-all host→peer' $main $vm $peer @('--live', '--persistent', '--undefinesource', '--copy-storage-all')
        Get-DomState $peer $vm | Should -Be 'running'
        Test-Persistent $peer $vm | Should -BeTrue
        Get-DomState $main $vm | Should -BeNullOrEmpty
        # libvirt created the target file in the peer's pool default (same path, other file); the source stays
        Test-Path $dst | Should -BeTrue
        (& stat -c %i $dst) | Should -Not -Be (& stat -c %i $src)
        (& qemu-img compare -U -f qcow2 -F qcow2 $src $dst 2>&1 | Out-String) | Should -Match 'Images are identical'
        $LASTEXITCODE | Should -Be 0
        Test-DiskPattern $dst 0xab 0 1M | Should -BeTrue
        Test-DiskPattern $dst 0xcd 2M 1M | Should -BeTrue

        # back, as a move would leave it: the host's old copy removed first, the guest's new write must arrive
        Remove-Item -Force $src
        & virsh -c $main pool-refresh default *> $null
        Write-DiskPattern $vm 0xef 4M 1M -Uri $peer
        Invoke-Migration 'live copy-storage-all peer→host' $peer $vm $main @('--live', '--persistent', '--undefinesource', '--copy-storage-all')
        Get-DomState $main $vm | Should -Be 'running'
        Get-DomState $peer $vm | Should -BeNullOrEmpty
        (& qemu-img compare -U -f qcow2 -F qcow2 $dst $src 2>&1 | Out-String) | Should -Match 'Images are identical'
        Test-DiskPattern $src 0xab 0 1M | Should -BeTrue
        Test-DiskPattern $src 0xef 4M 1M | Should -BeTrue
    }

    It 'offline (--offline --persistent --undefinesource): the definition moves host → peer and back; storage copy refused' {
        $vm = New-MigratableTestVm -Name "$p-off" -Shared
        Invoke-Migration 'offline host→peer' $main $vm $peer @('--offline', '--persistent', '--undefinesource')
        Get-DomState $peer $vm | Should -Be 'shut off'
        Test-Persistent $peer $vm | Should -BeTrue
        Get-DomState $main $vm | Should -BeNullOrEmpty
        # it starts there on the shared image
        (Invoke-Virsh $peer start $vm).ExitCode | Should -Be 0
        Get-DomState $peer $vm | Should -Be 'running'
        (Invoke-Virsh $peer destroy $vm).ExitCode | Should -Be 0

        Invoke-Migration 'offline peer→host' $peer $vm $main @('--offline', '--persistent', '--undefinesource')
        Get-DomState $main $vm | Should -Be 'shut off'
        Get-DomState $peer $vm | Should -BeNullOrEmpty
        # libvirt 9 copies no storage offline: a shut-off VM's disks need volume streams (Move-KvmVm -IncludeStorage)
        $r = Invoke-Virsh $main migrate --offline --persistent --copy-storage-all $vm $peer
        $r.ExitCode | Should -Not -Be 0
        $r.Output | Should -Match 'offline migration cannot handle non-shared storage'
        Get-DomState $peer $vm | Should -BeNullOrEmpty
    }
}
