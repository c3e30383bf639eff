# Issue 13, points 2-4: one ownership model for every destructive or exclusive cmdlet (who uses which image, on the
# live and the persistent XML of every VM, through volume sources, whole backing chains, snapshots and any spelling of
# a path), and "local means proven local" (a daemon whose host UUID is not this machine's, or a forwarded socket).
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:ok = Test-SystemLibvirt
    $script:uri = 'qemu:///system'

    function Invoke-Virsh { $out = & virsh -c qemu:///system @args 2>&1; if ($LASTEXITCODE -ne 0) { throw "virsh $args failed: $out" }; $out }

    # A qcow2 volume in the test pool (optionally on a backing volume); returns its path.
    function New-TestVolume([string] $Name, [string] $Backing) {
        if ($Backing) { $null = Invoke-Virsh vol-create-as $pool $Name 16M --format qcow2 --backing-vol $Backing --backing-vol-format qcow2 }
        else { $null = Invoke-Virsh vol-create-as $pool $Name 16M --format qcow2 }
        (Invoke-Virsh vol-path $Name --pool $pool | Select-Object -First 1).Trim()
    }

    # Adds a disk to a VM's configuration (or, with -Live, to the running VM only) from device XML.
    function Add-TestDisk([string] $Vm, [string] $Xml, [switch] $Live) {
        $f = Join-Path $tmp "$([guid]::NewGuid().ToString('N')).xml"
        Set-Content -Path $f -Value $Xml
        if ($Live) { $null = Invoke-Virsh attach-device $Vm $f --live } else { $null = Invoke-Virsh attach-device $Vm $f --config }
        Remove-Item $f
    }

    function Get-FileDiskXml([string] $Path, [string] $Target) { "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$Path'/><target dev='$Target' bus='virtio'/></disk>" }
    function Get-VolumeDiskXml([string] $Volume, [string] $Target) { "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='$pool' volume='$Volume'/><target dev='$Target' bus='virtio'/></disk>" }

    function Test-Volume([string] $Name) { & virsh -c qemu:///system vol-info $Name --pool $pool *> $null; $LASTEXITCODE -eq 0 }
    function Test-Vm([string] $Name) { & virsh -c qemu:///system dominfo $Name *> $null; $LASTEXITCODE -eq 0 }

    # The -WhatIf text of a command (PowerShell writes it to the host, which a transcript records).
    function Get-WhatIfText([scriptblock] $Command) {
        $transcriptFile = Join-Path $tmp "$([guid]::NewGuid().ToString('N')).txt"
        $null = Start-Transcript -Path $transcriptFile
        try { & $Command } finally { $null = Stop-Transcript }
        $text = (Get-Content $transcriptFile -Raw) -replace '\r?\n', ' '
        Remove-Item $transcriptFile
        $text
    }

    if ($ok) {
        $script:p = New-TestName 'own'
        $script:tmp = (New-Item -ItemType Directory -Path ([IO.Path]::Combine([IO.Path]::GetTempPath(), $p))).FullName
        & chmod 0755 $tmp
        $script:poolDir = (New-Item -ItemType Directory -Path (Join-Path $tmp 'pool')).FullName
        $script:c = Connect-KvmHost -Uri $uri -NotDefault
        $script:pool = (New-KvmStoragePool -Connection $c -Name "$p-pool" -Type Dir -Path $poolDir -Start).Name
    }
}

AfterAll {
    if (-not $ok) { return }
    Remove-SystemTestObjects $p
    & virsh -c qemu:///system pool-destroy "$p-pool" *> $null
    & virsh -c qemu:///system pool-undefine "$p-pool" *> $null
    if ($c) { $c.Dispose() }
    Remove-Item $tmp -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Remove-KvmVm -RemoveStorage keeps what other VMs use' -Tag System {
    It 'keeps a volume VM B uses by pool and volume name (type=volume) and deletes only A''s own disk; -WhatIf names both, with the reason' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $shared = New-TestVolume "$p-shared.qcow2"
        $own = New-TestVolume "$p-a.qcow2"
        $a = New-SystemTestVm -Name "$p-h1a"
        $b = New-SystemTestVm -Name "$p-h1b"
        Add-TestDisk $a (Get-FileDiskXml $own 'vda')
        Add-TestDisk $a (Get-FileDiskXml $shared 'vdb')
        Add-TestDisk $b (Get-VolumeDiskXml "$p-shared.qcow2" 'vda')
        (Get-KvmVolume -Connection $c -Pool $pool -Name "$p-shared.qcow2").UsedBy | Should -Be @($a, $b)

        $text = Get-WhatIfText { Remove-KvmVm -Connection $c -Name $a -RemoveStorage -WhatIf }
        $text | Should -BeLike "*delete its disks: $own;*"
        $text | Should -BeLike "*kept: $shared (used by VM '$b')*"
        Test-Vm $a | Should -BeTrue

        Remove-KvmVm -Connection $c -Name $a -RemoveStorage -Confirm:$false -WarningVariable warn 3> $null
        Test-Vm $a | Should -BeFalse
        Test-Volume "$p-a.qcow2" | Should -BeFalse
        Test-Volume "$p-shared.qcow2" | Should -BeTrue
        ($warn -join ' ') | Should -BeLike "*Kept $shared*used by VM '$b'*"
    }

    It 'keeps a disk another running VM has attached live only (not in its configuration)' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $disk = New-TestVolume "$p-live.qcow2"
        $a = New-SystemTestVm -Name "$p-la"
        Add-TestDisk $a (Get-FileDiskXml $disk 'vda')
        $b = New-SystemTestVm -Name "$p-lb" -Start
        try {
            Add-TestDisk $b (Get-FileDiskXml $disk 'vdb') -Live
            (Invoke-Virsh dumpxml $b --inactive) -join '' | Should -Not -BeLike "*$disk*"
            $text = Get-WhatIfText { Remove-KvmVm -Connection $c -Name $a -RemoveStorage -WhatIf }
            $text | Should -BeLike "*kept: $disk (used by VM '$b')*"
            Remove-KvmVm -Connection $c -Name $a -RemoveStorage -Confirm:$false 3> $null
            Test-Vm $a | Should -BeFalse
            Test-Volume "$p-live.qcow2" | Should -BeTrue
        }
        finally { & virsh -c qemu:///system destroy $b *> $null }
    }

    It 'keeps a template two levels under another VM''s disk (template <- linked clone <- external snapshot overlay)' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $template = New-TestVolume "$p-template.qcow2"
        $clone = New-TestVolume "$p-clone.qcow2" -Backing $template
        $tpl = New-SystemTestVm -Name "$p-tpl"
        Add-TestDisk $tpl (Get-FileDiskXml $template 'vda')
        $lc = New-SystemTestVm -Name "$p-lc"
        Add-TestDisk $lc (Get-FileDiskXml $clone 'vda')
        $overlay = Join-Path $poolDir "$p-clone.s1"
        $null = Invoke-Virsh snapshot-create-as $lc s1 --disk-only --diskspec "vda,snapshot=external,file=$overlay"
        # The VM is shut off: its XML names the overlay only; the clone and the template are found through the chain.
        (Invoke-Virsh dumpxml $lc --inactive) -join '' | Should -BeLike "*$overlay*"

        $text = Get-WhatIfText { Remove-KvmVm -Connection $c -Name $tpl -RemoveStorage -WhatIf }
        $text | Should -BeLike "*kept: $template (used by VM '$lc' (backing file of vda))*"
        Remove-KvmVm -Connection $c -Name $tpl -RemoveStorage -Confirm:$false 3> $null
        Test-Volume "$p-template.qcow2" | Should -BeTrue

        # The linked clone's own files (the overlay and the disk it was taken from) go; the template it reads stays.
        Remove-KvmVm -Connection $c -Name $lc -RemoveStorage -Confirm:$false 3> $null
        Test-Path $overlay | Should -BeFalse
        Test-Volume "$p-clone.qcow2" | Should -BeFalse
        Test-Volume "$p-template.qcow2" | Should -BeTrue
    }

    It 'keeps a base three images down a chain of volumes (no snapshot involved)' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $base = New-TestVolume "$p-c0.qcow2"
        $mid = New-TestVolume "$p-c1.qcow2" -Backing $base
        $top = New-TestVolume "$p-c2.qcow2" -Backing $mid
        $owner = New-SystemTestVm -Name "$p-c0"
        Add-TestDisk $owner (Get-FileDiskXml $base 'vda')
        $deep = New-SystemTestVm -Name "$p-c2"
        Add-TestDisk $deep (Get-FileDiskXml $top 'vdb')
        $text = Get-WhatIfText { Remove-KvmVm -Connection $c -Name $owner -RemoveStorage -WhatIf }
        $text | Should -BeLike "*kept: $base (used by VM '$deep' (backing file of vdb))*"
        Remove-KvmVm -Connection $c -Name $owner -RemoveStorage -Confirm:$false 3> $null
        Test-Volume "$p-c0.qcow2" | Should -BeTrue
    }

    It 'keeps the base of an overlay that lies outside every pool' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $base = New-TestVolume "$p-obase.qcow2"
        $outside = New-Item -ItemType Directory -Path (Join-Path $tmp 'outside') -Force
        $overlay = Join-Path $outside 'overlay.qcow2'
        & qemu-img create -q -f qcow2 -b $base -F qcow2 $overlay
        $LASTEXITCODE | Should -Be 0
        $a = New-SystemTestVm -Name "$p-oa"
        Add-TestDisk $a (Get-FileDiskXml $base 'vda')
        $o = New-SystemTestVm -Name "$p-oo"
        Add-TestDisk $o (Get-FileDiskXml $overlay 'vda')

        Remove-KvmVm -Connection $c -Name $a -RemoveStorage -Confirm:$false -WarningVariable warn 3> $null
        Test-Volume "$p-obase.qcow2" | Should -BeTrue
        ($warn -join ' ') | Should -BeLike "*used by VM '$o' (backing file of vda)*"

        # Removing the overlay's VM deletes the overlay (a file in no pool, on a proven-local daemon), not the base.
        $c.IsProvenLocal | Should -BeTrue
        Remove-KvmVm -Connection $c -Name $o -RemoveStorage -Confirm:$false 3> $null
        Test-Path $overlay | Should -BeFalse
        Test-Volume "$p-obase.qcow2" | Should -BeTrue
    }

    It 'recognises the same image spelled with // and through a symbolic link' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $disk = New-TestVolume "$p-spell.qcow2"
        $a = New-SystemTestVm -Name "$p-sa"
        Add-TestDisk $a (Get-FileDiskXml $disk 'vda')
        $slashes = $disk -replace '/pool/', '//pool//'
        $link = Join-Path $tmp 'link.qcow2'
        $null = New-Item -ItemType SymbolicLink -Path $link -Target $disk
        $s1 = New-SystemTestVm -Name "$p-s1"
        Add-TestDisk $s1 (Get-FileDiskXml $slashes 'vda')
        $s2 = New-SystemTestVm -Name "$p-s2"
        Add-TestDisk $s2 (Get-FileDiskXml $link 'vda')
        (Invoke-Virsh dumpxml $s1 --inactive) -join '' | Should -BeLike "*$slashes*"

        $text = Get-WhatIfText { Remove-KvmVm -Connection $c -Name $a -RemoveStorage -WhatIf }
        $text | Should -BeLike "*kept: $disk (used by VM '$s1', VM '$s2')*"
        Remove-KvmVm -Connection $c -Name $a -RemoveStorage -Confirm:$false 3> $null
        Test-Volume "$p-spell.qcow2" | Should -BeTrue
        (Get-KvmVolume -Connection $c -Pool $pool -Name "$p-spell.qcow2").UsedBy | Should -Be @($s1, $s2)
    }
}

Describe 'Other destructive cmdlets ask the same model' -Tag System {
    It 'Remove-KvmVmDisk -DeleteVolume detaches the disk but keeps a volume another VM uses as a volume source' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $disk = New-TestVolume "$p-dd.qcow2"
        $x = New-SystemTestVm -Name "$p-dx"
        Add-TestDisk $x (Get-FileDiskXml $disk 'vdb')
        $y = New-SystemTestVm -Name "$p-dy"
        Add-TestDisk $y (Get-VolumeDiskXml "$p-dd.qcow2" 'vdb')

        $text = Get-WhatIfText { Remove-KvmVmDisk -Connection $c -VMName $x -Target vdb -DeleteVolume -WhatIf }
        $text | Should -BeLike "*kept: $disk (used by VM '$y')*"
        Remove-KvmVmDisk -Connection $c -VMName $x -Target vdb -DeleteVolume -Force -Confirm:$false -WarningVariable warn 3> $null
        (Invoke-Virsh dumpxml $x --inactive) -join '' | Should -Not -BeLike "*$disk*"
        Test-Volume "$p-dd.qcow2" | Should -BeTrue
        ($warn -join ' ') | Should -BeLike "*used by VM '$y'*"
    }

    It 'Remove-KvmVolume refuses a volume used only as another VM''s backing file' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $base = New-TestVolume "$p-rb.qcow2"
        $top = New-TestVolume "$p-rt.qcow2" -Backing $base
        $v = New-SystemTestVm -Name "$p-rv"
        Add-TestDisk $v (Get-FileDiskXml $top 'vda')
        Remove-KvmVolume -Connection $c -Pool $pool -Name "$p-rb.qcow2" -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeInUse*'
        $err[0].Exception.Message | Should -BeLike "*VM '$v' (backing file of vda)*"
        Test-Volume "$p-rb.qcow2" | Should -BeTrue
    }

    It 'Remove-KvmStoragePool -DeleteContents refuses a pool whose volume a VM uses' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $dir2 = (New-Item -ItemType Directory -Path (Join-Path $tmp 'pool2')).FullName
        $pool2 = (New-KvmStoragePool -Connection $c -Name "$p-pool2" -Type Dir -Path $dir2 -Start).Name
        try {
            $null = Invoke-Virsh vol-create-as $pool2 "$p-pv.qcow2" 16M --format qcow2
            $vol = (Invoke-Virsh vol-path "$p-pv.qcow2" --pool $pool2 | Select-Object -First 1).Trim()
            $v = New-SystemTestVm -Name "$p-pv"
            Add-TestDisk $v "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='$pool2' volume='$p-pv.qcow2'/><target dev='vda' bus='virtio'/></disk>"
            $text = Get-WhatIfText { Remove-KvmStoragePool -Connection $c -Name $pool2 -DeleteContents -WhatIf }
            $text | Should -BeLike "*in use, so nothing is deleted*$p-pv.qcow2 (used by VM '$v'*"
            Remove-KvmStoragePool -Connection $c -Name $pool2 -DeleteContents -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeInUse*'
            $err[0].Exception.Message | Should -BeLike "*$p-pv.qcow2 by VM '$v'*"
            Test-Path $vol | Should -BeTrue
        }
        finally {
            & virsh -c qemu:///system pool-destroy $pool2 *> $null
            & virsh -c qemu:///system pool-undefine $pool2 *> $null
        }
    }

    It 'Remove-KvmSnapshot deletes a memory file nobody else uses and keeps one another VM uses, saying which' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # libvirt 9.0 deletes external snapshots only with disks: A has one, and each snapshot an overlay and a memory file
        $a = New-SystemTestVm -Name "$p-sa"
        Add-TestDisk $a (Get-FileDiskXml (New-TestVolume "$p-sa.qcow2") 'vda')
        $null = Invoke-Virsh start $a
        $mem1 = Join-Path $tmp "$p-sa-1.mem"
        $mem2 = Join-Path $tmp "$p-sa-2.mem"
        $null = Invoke-Virsh snapshot-create-as $a s1 --memspec "file=$mem1,snapshot=external" --diskspec "vda,snapshot=external,file=$tmp/$p-sa-1.qcow2"
        $null = Invoke-Virsh snapshot-create-as $a s2 --memspec "file=$mem2,snapshot=external" --diskspec "vda,snapshot=external,file=$tmp/$p-sa-2.qcow2"
        $mem1 | Should -Exist
        $mem2 | Should -Exist
        $b = New-SystemTestVm -Name "$p-sb"
        Add-TestDisk $b "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$mem1'/><target dev='vdb' bus='virtio'/><readonly/></disk>"

        Remove-KvmSnapshot -Connection $c -VMName $a -Name s2 -Confirm:$false -WarningVariable warn2 -WarningAction SilentlyContinue
        $mem2 | Should -Not -Exist -Because 'no VM uses it'
        $warn2 | Should -BeNullOrEmpty

        Remove-KvmSnapshot -Connection $c -VMName $a -Name s1 -Confirm:$false -WarningVariable warn1 -WarningAction SilentlyContinue
        @(Get-KvmSnapshot -Connection $c -VMName $a).Count | Should -Be 0
        $mem1 | Should -Exist -Because "VM $b has it as a disk"
        ($warn1 -join ' ') | Should -BeLike "*Kept the memory file $mem1*VM '$b'*"
    }
}

Describe 'Attaching an image another VM writes is refused' -Tag System {
    BeforeAll {
        if (-not $ok) { return }
        $script:wdisk = New-TestVolume "$p-w.qcow2"
        $script:w = New-SystemTestVm -Name "$p-w"
        Add-TestDisk $w (Get-FileDiskXml $wdisk 'vda')
    }

    It 'New-KvmVm -DiskPath on a disk in use writes DiskInUse naming the VM and creates nothing' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmVm -Connection $c -Name "$p-nv" -MemoryBytes 64MB -NoNetwork -DiskPath $wdisk -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskInUse*'
        $err[0].Exception.Message | Should -BeLike "*VM '$w'*"
        Test-Vm "$p-nv" | Should -BeFalse
    }

    It 'Add-KvmVmDisk -Path refuses the image spelled through a symbolic link' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $link = Join-Path $tmp 'wlink.qcow2'
        $null = New-Item -ItemType SymbolicLink -Path $link -Target $wdisk -Force
        $other = New-SystemTestVm -Name "$p-ao"
        Add-KvmVmDisk -Connection $c -VMName $other -Path $link -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskInUse*'
        $err[0].Exception.Message | Should -BeLike "*VM '$w'*"
        (Invoke-Virsh dumpxml $other --inactive) -join '' | Should -Not -BeLike '*wlink*'
    }

    It 'Import-KvmVm of an exported VM whose disk the original still uses is refused, and works with -CopyStorage' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $yaml = Join-Path $tmp 'w.yaml'
        $xml = Join-Path $tmp 'w.xml'
        Export-KvmVm -Connection $c -Name $w -Path $yaml
        Export-KvmVm -Connection $c -Name $w -Path $xml

        $null = Import-KvmVm -Connection $c -Path $yaml -Name "$p-wy" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskInUse*'
        $err[0].Exception.Message | Should -BeLike "*VM '$w'*"
        Test-Vm "$p-wy" | Should -BeFalse
        $null = Import-KvmVm -Connection $c -Path $xml -Name "$p-wx" -GenerateNewId -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'DiskInUse*'
        Test-Vm "$p-wx" | Should -BeFalse

        $copy = Import-KvmVm -Connection $c -Path $xml -Name "$p-wc" -GenerateNewId -CopyStorage
        $copy.Name | Should -Be "$p-wc"
        $copyDisk = ($copy | Get-KvmVmDisk | Where-Object Target -eq 'vda').Path
        $copyDisk | Should -Not -Be $wdisk
        $copyDisk | Should -BeLike "$poolDir/$p-wc-vda*"
        Test-Path $copyDisk | Should -BeTrue
        $copyY = Import-KvmVm -Connection $c -Path $yaml -Name "$p-wyc" -CopyStorage
        ($copyY | Get-KvmVmDisk | Where-Object Device -eq 'disk').Path | Should -BeLike "$poolDir/$p-wyc-*"
    }
}

Describe 'Local means proven local' -Tag System {
    BeforeAll {
        if (-not $ok) { return }
        $script:ci = '/var/lib/kvmps-ci'
        $script:key = "$ci/ssh/id_ed25519"
        $script:known = "$ci/ssh/known_hosts"
        $script:sshReady = (Test-Path "$ci/ssh.ready") -and (Test-Path $key)
        $script:canDaemon = [bool](Get-Command libvirtd -ErrorAction SilentlyContinue) -and [bool](Get-Command setpriv -ErrorAction SilentlyContinue) -and ((id -u) -eq '0') -and [bool](Get-Command python3 -ErrorAction SilentlyContinue)
        if (-not $canDaemon) { return }

        # A private libvirtd (session mode, as nobody) whose host UUID is set in its config to one that is not this machine's.
        $script:dir = (New-Item -ItemType Directory -Path (Join-Path $tmp 'daemon')).FullName
        $script:foreignUuid = [guid]::NewGuid().ToString()
        $null = Start-PrivateLibvirtd $dir -Config "host_uuid = `"$foreignUuid`""

        # A socket forwarder (what ssh -L or socat would be): any process that is not a libvirt daemon; also usable as
        # the "netcat" libvirt runs at the far end of an SSH connection.
        $script:bridge = Join-Path $dir 'bridge'
        Set-Content -Path $bridge -Value @'
#!/usr/bin/env python3
import os, socket, sys, threading
def pump(src, dst):
    try:
        while True:
            b = src.recv(65536) if hasattr(src, 'recv') else os.read(src, 65536)
            if not b: break
            dst.sendall(b) if hasattr(dst, 'sendall') else os.write(dst, b)
    except OSError: pass
    finally:
        try: dst.shutdown(socket.SHUT_WR) if hasattr(dst, 'shutdown') else os.close(dst)
        except OSError: pass
args = sys.argv[1:]
if args[:1] == ['listen']:
    srv = socket.socket(socket.AF_UNIX); srv.bind(args[1]); srv.listen(8)
    while True:
        a, _ = srv.accept(); b = socket.socket(socket.AF_UNIX); b.connect(args[2])
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
        threading.Thread(target=pump, args=(b, a), daemon=True).start()
if '-U' not in args: sys.exit(0)
s = socket.socket(socket.AF_UNIX); s.connect(args[args.index('-U') + 1])
t = threading.Thread(target=pump, args=(s, 1)); t.start(); pump(0, s); t.join()
'@
        & chmod 0755 $bridge
        $script:fwd = "$dir/fwd.sock"
        $script:bridgeProcess = Start-Process -FilePath $bridge -ArgumentList 'listen', $fwd, "$dir/run/libvirt-sock" -PassThru
        $sw = [Diagnostics.Stopwatch]::StartNew()
        while (-not (Test-Path $fwd) -and $sw.Elapsed.TotalSeconds -lt 10) { Start-Sleep -Milliseconds 50 }
    }

    AfterAll {
        if (-not $ok -or -not $canDaemon) { return }
        Get-KvmConnection | Where-Object { $_.RequestedUri -like "*$dir*" } | Disconnect-KvmHost -ErrorAction SilentlyContinue
        if ($bridgeProcess) { Stop-Process -Id $bridgeProcess.Id -ErrorAction SilentlyContinue }
        Stop-PrivateLibvirtd $dir -Kill
    }

    It 'proves the local daemon local through its socket''s peer (qemu:///system)' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $c.IsProvenLocal | Should -BeTrue
        $c.LocalityDetail | Should -Match 'served by (libvirtd|virtqemud|virtproxyd)|this machine'
    }

    It 'proves qemu+ssh://127.0.0.1:2222 to the same daemon local by its host UUID' {
        # (SSH through the Managed backend on either run: the Native backend runs the ssh program, which ignores known_hosts=.)
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        if (-not $sshReady) { Set-ItResult -Skipped -Because 'no provisioned sshd on 127.0.0.1:2222 (.ci/provision-remote)'; return }
        $s = Connect-KvmHost -Uri "qemu+ssh://root@127.0.0.1:2222/system?keyfile=$key&known_hosts=$known" -Backend Managed -NotDefault
        try {
            $s.IsProvenLocal | Should -BeTrue
            $s.LocalityDetail | Should -BeLike '*local libvirt daemon*'
        }
        finally { $s.Dispose() }
    }

    It 'treats a forwarded socket to a daemon with another host UUID as remote' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        if (-not $canDaemon) { Set-ItResult -Skipped -Because 'needs root, libvirtd, setpriv and python3 for a private daemon'; return }
        $f = Connect-KvmHost -Uri "qemu:///session?socket=$fwd" -NotDefault
        (& virsh -c "qemu:///session?socket=$dir/run/libvirt-sock" capabilities 2>$null) -join '' | Should -BeLike "*<uuid>$foreignUuid</uuid>*"
        try {
            $f.IsProvenLocal | Should -BeFalse
            $f.LocalityDetail | Should -BeLike '*not served by a libvirt daemon*'
        }
        finally { $f.Dispose() }
        # The same daemon through its own socket IS on this machine.
        $d = Connect-KvmHost -Uri "qemu:///session?socket=$dir/run/libvirt-sock" -NotDefault
        try { $d.IsProvenLocal | Should -BeTrue } finally { $d.Dispose() }
    }

    It 'treats qemu+ssh://127.0.0.1:2222 to a daemon with another host UUID as remote' {
        if (-not $ok) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        if (-not $canDaemon) { Set-ItResult -Skipped -Because 'needs root, libvirtd, setpriv and python3 for a private daemon'; return }
        if (-not $sshReady) { Set-ItResult -Skipped -Because 'no provisioned sshd on 127.0.0.1:2222 (.ci/provision-remote)'; return }
        $s = Connect-KvmHost -Uri "qemu+ssh://root@127.0.0.1:2222/session?socket=$dir/run/libvirt-sock&netcat=$bridge&keyfile=$key&known_hosts=$known" -Backend Managed -NotDefault
        try {
            $s.IsProvenLocal | Should -BeFalse
            $s.LocalityDetail | Should -BeLike "*$foreignUuid*neither this machine's nor a local libvirt daemon's*"
            # and what that means: a file that exists here is not probed as if it were on that host
            $image = Join-Path $tmp 'here-only.qcow2'
            & qemu-img create -q -f qcow2 $image 1M
            $null = New-KvmVm -Connection $s -Name "$p-remote" -MemoryBytes 64MB -NoNetwork -DiskPath $image -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskNotFound*'
        }
        finally { $s.Dispose() }
    }
}
