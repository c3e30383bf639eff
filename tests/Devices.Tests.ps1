BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')

    # A guest without an OS never answers an ACPI unplug request. This plays the guest OS's part on QEMU's
    # i440fx (PIIX4) ACPI PCI hot-plug interface: once a slot is flagged for removal (the 'down' register at
    # 0xae04), it writes the slot to the eject register (0xae08), as Linux or Windows would on _EJ0.
    # Runs in its own runspace so the cmdlet under test can wait meanwhile.
    function Start-GuestEject([string] $Vm) {
        $ps = [powershell]::Create()
        $null = $ps.AddScript({
                param($vm)
                $sw = [Diagnostics.Stopwatch]::StartNew()
                while ($sw.Elapsed.TotalSeconds -lt 90) {
                    $null = & virsh -c qemu:///system qemu-monitor-command $vm --hmp 'o /w 0xae10 0' 2>&1
                    $out = "$(& virsh -c qemu:///system qemu-monitor-command $vm --hmp 'i /w 0xae04' 2>&1)"
                    if ($out -match '=\s*0x([0-9a-fA-F]+)') {
                        $bits = [Convert]::ToUInt32($Matches[1], 16)
                        if ($bits -ne 0) {
                            $null = & virsh -c qemu:///system qemu-monitor-command $vm --hmp "o /w 0xae08 $bits" 2>&1
                            return $bits
                        }
                    }
                    Start-Sleep -Milliseconds 200
                }
                return 0
            }).AddArgument($Vm)
        [pscustomobject]@{ PowerShell = $ps; Handle = $ps.BeginInvoke() }
    }

    # The slot bits the helper ejected (0: it saw no unplug request). Stops it if it is still polling.
    function Wait-GuestEject($Job, [int] $Seconds = 10) {
        try {
            if ($Job.Handle.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds($Seconds))) { [uint32](@($Job.PowerShell.EndInvoke($Job.Handle))[0]) }
            else { $Job.PowerShell.Stop(); [uint32]0 }
        }
        finally { $Job.PowerShell.Dispose() }
    }

    function Get-LiveXml([string] $Vm) { [xml](& virsh -c qemu:///system dumpxml $Vm) }
    function Get-ConfigXml([string] $Vm) { [xml](& virsh -c qemu:///system dumpxml $Vm --inactive) }
}

Describe 'VM devices on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:p = "kvmps-d-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $script:c = 'test:///default'
        $null = New-KvmVm -Connection $c -Name "$p-1" -MemoryBytes 64MB -NoNetwork
    }
    AfterAll { Get-KvmVm -Connection $c -Name "$p*" | Remove-KvmVm -Force -Confirm:$false }

    It 'reads the disks and NICs of a VM, with the VM they belong to and the guest addresses' {
        $d = Get-KvmVmDisk -Connection $c -VMName test
        $d.Target | Should -Be 'vda'
        $d.Path | Should -Be '/guest/diskimage1'
        $d.Bus | Should -Be 'virtio'
        $d.VMName | Should -Be 'test'
        $d.Scope | Should -Be 'LiveAndConfig'
        $d.Connection.Uri | Should -Be $c
        $n = Get-KvmVm -Connection $c -Name test | Get-KvmVmNetworkAdapter
        $n.MacAddress | Should -Be 'aa:bb:cc:dd:ee:ff'
        $n.Source | Should -Be 'default'
        $n.LinkState | Should -Be 'Up'
        $n.IPAddresses | Should -Be @('192.168.122.3')
        $n.AddressSource | Should -Be 'Agent'
        (Get-KvmVmNetworkAdapter -Connection $c -VMName test -NoAddress).IPAddresses | Should -BeNullOrEmpty
        (Get-KvmVm -Connection $c -Name test).Disks[0].VMName | Should -Be 'test'
    }

    It 'removes the new volume again when the disk cannot be attached' {
        $null = Add-KvmVmDisk -Connection $c -VMName "$p-1" -SizeBytes 8MB -StoragePool default-pool -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskAttachFailed,*'
        $err[0].Exception.Message | Should -Match 'removed again'
        Get-KvmVolume -Connection $c -Pool default-pool | Where-Object Name -like "$p*" | Should -BeNullOrEmpty
        (Get-KvmVm -Connection $c -Name "$p-1").Disks | Should -BeNullOrEmpty
    }

    It 'refuses conflicting sources and bad MAC addresses before doing anything' {
        { Add-KvmVmDisk -Connection $c -VMName "$p-1" -SizeBytes 8MB -Path /tmp/x.qcow2 } | Should -Throw -ErrorId 'ConflictingParameters,*'
        { Add-KvmVmNetworkAdapter -Connection $c -VMName "$p-1" -Network default -MacAddress 'ff:ff:ff:ff:ff:ff' } | Should -Throw -ErrorId 'InvalidMacAddress,*'
        { Set-KvmVmDvdDrive -Connection $c -VMName "$p-1" } | Should -Throw -ErrorId 'ConflictingParameters,*'
        $null = Remove-KvmVmDisk -Connection $c -VMName "$p-1" -Target vdb -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskNotFound,*'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}

Describe 'VM devices on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:p = New-TestName 'dev'
        $script:c = 'qemu:///system'
        $script:run = "$p-run"
        $script:off = "$p-off"
        $script:net = "$p-net"
        $script:media = "/var/lib/libvirt/images/$p-media.iso"
        if (-not $skip) {
            try {
                $script:vm = New-KvmVm -Connection $c -Name $run -MemoryBytes 128MB -NoNetwork -Start -ErrorAction Stop
            }
            catch {
                # KVM can be unusable for QEMU on a host (for example /dev/kvm permissions); hot-plug works the same under TCG.
                Write-Warning "Starting a KVM guest failed ($_); using QEMU emulation for the device tests."
                $script:vm = New-KvmVm -Connection $c -Name $run -MemoryBytes 128MB -NoNetwork -Start -Accelerator Qemu
            }
            $null = New-KvmVm -Connection $c -Name $off -MemoryBytes 128MB -NoNetwork -Accelerator ([string]$vm.Accelerator)

            # An isolated network (no <forward>) on a random private subnet with its own short bridge name.
            foreach ($try in 1..5) {
                $x = Get-TestOctet 1 254
                $xml = [System.Xml.Linq.XElement]::new('network',
                    [System.Xml.Linq.XElement]::new('name', $net),
                    [System.Xml.Linq.XElement]::new('bridge', [System.Xml.Linq.XAttribute]::new('name', 'kt' + [guid]::NewGuid().ToString('N').Substring(0, 8))),
                    [System.Xml.Linq.XElement]::new('ip', [System.Xml.Linq.XAttribute]::new('address', "10.253.$x.1"), [System.Xml.Linq.XAttribute]::new('netmask', '255.255.255.0')))
                $file = [IO.Path]::GetTempFileName()
                try {
                    $xml.ToString() | Set-Content -Path $file
                    $out = & virsh -c $c net-create $file 2>&1
                    if ($LASTEXITCODE -eq 0) { break }
                    if ($try -eq 5) { throw "virsh net-create failed: $out" }
                }
                finally { Remove-Item $file -ErrorAction SilentlyContinue }
            }

            # Any small file serves as a CD medium: QEMU reads it as raw data.
            [IO.File]::WriteAllBytes($media, [byte[]]::new(64KB))
        }
    }
    AfterAll {
        if (-not $skip) {
            Remove-SystemTestObjects $p
            & virsh -c $c net-destroy $net *> $null
            Remove-Item $media -ErrorAction SilentlyContinue
        }
    }

    It 'hot-plugs a new virtio disk into the running VM, says so, and shows it on Get-KvmVm' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $verbose = Add-KvmVmDisk -Connection $c -VMName $run -SizeBytes 32MB -Passthru -Verbose 4>&1
        $d = $verbose | Where-Object { $_ -is [KvmPS.Core.KvmVmDisk] }
        $d.Target | Should -Be 'vda'
        $d.Bus | Should -Be 'virtio'
        $d.Format | Should -Be 'qcow2'
        $d.Scope | Should -Be 'LiveAndConfig'
        $d.CapacityBytes | Should -Be 32MB
        $d.VMName | Should -Be $run
        $d.Path | Should -BeLike "*/$run-vda.qcow2"
        ($verbose | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" | Should -Match 'hot-plug into the running VM'
        & qemu-img info -U --output=json $d.Path | ConvertFrom-Json | ForEach-Object { $_.'format-specific'.data.compat } | Should -Be '1.1'

        (Get-KvmVm -Connection $c -Name $run).Disks.Target | Should -Contain 'vda'
        (Get-LiveXml $run).domain.devices.disk.target.dev | Should -Contain 'vda'
        (Get-ConfigXml $run).domain.devices.disk.target.dev | Should -Contain 'vda'
    }

    It 'grows the disk of the running VM live and refuses to shrink it' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $r = Resize-KvmVmDisk -Connection $c -VMName $run -Target vda -SizeBytes 48MB -Passthru
        $r.CapacityBytes | Should -Be 48MB
        (& virsh -c $c domblkinfo $run vda) -join ' ' | Should -Match "Capacity:\s+$(48MB)\b"

        $null = Resize-KvmVmDisk -Connection $c -VMName $run -Target vda -SizeBytes 16MB -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskShrinkRefused,*'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        (Get-KvmVmDisk -Connection $c -VMName $run -Target vda).CapacityBytes | Should -Be 48MB
    }

    It 'adds a SATA disk to the running VM only in its configuration, with a warning, and removes it again' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $d = Add-KvmVmDisk -Connection $c -VMName $run -SizeBytes 8MB -Bus sata -Passthru -WarningVariable warn -WarningAction SilentlyContinue
        $d.Target | Should -Be 'sda'
        $d.Scope | Should -Be 'Config'
        "$warn" | Should -Match 'cannot be hot-plugged.*next start'
        (Get-LiveXml $run).domain.devices.disk.target.dev | Should -Not -Contain 'sda'
        (Get-ConfigXml $run).domain.devices.disk.target.dev | Should -Contain 'sda'

        Remove-KvmVmDisk -Connection $c -VMName $run -Target sda -DeleteVolume -Force -Confirm:$false
        (Get-ConfigXml $run).domain.devices.disk.target.dev | Should -Not -Contain 'sda'
        $d.Path | Should -Not -Exist
    }

    It 'hot-plugs a SCSI disk (adding a virtio-scsi controller) and unplugs it piped from Get-KvmVmDisk' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $d = Add-KvmVmDisk -Connection $c -VMName $run -SizeBytes 8MB -Bus scsi -Passthru
        $d.Target | Should -Be 'sda'
        $d.Scope | Should -Be 'LiveAndConfig'
        @((Get-LiveXml $run).domain.devices.controller | Where-Object type -eq 'scsi').model | Should -Be 'virtio-scsi'
        (Get-KvmVm -Connection $c -Name $run).Disks.Target | Should -Contain 'sda'

        Get-KvmVmDisk -Connection $c -VMName $run -Target sda | Remove-KvmVmDisk -DeleteVolume -Force -Confirm:$false
        (Get-KvmVm -Connection $c -Name $run).Disks.Target | Should -Not -Contain 'sda'
        (Get-LiveXml $run).domain.devices.disk.target.dev | Should -Not -Contain 'sda'
        $d.Path | Should -Not -Exist
    }

    It 'hot-plugs a NIC on an isolated network and shows it on Get-KvmVm' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $script:mac = '52:54:00:{0:x2}:{1:x2}:{2:x2}' -f (Get-Random -Maximum 256), (Get-Random -Maximum 256), (Get-Random -Maximum 256)
        $n = Add-KvmVmNetworkAdapter -Connection $c -VMName $run -Network $net -MacAddress $mac.ToUpperInvariant() -Passthru
        $n.MacAddress | Should -Be $mac
        $n.Type | Should -Be 'network'
        $n.Source | Should -Be $net
        $n.Model | Should -Be 'virtio'
        $n.LinkState | Should -Be 'Up'
        $n.Scope | Should -Be 'LiveAndConfig'
        $n.Target | Should -BeLike 'vnet*'

        (Get-KvmVm -Connection $c -Name $run).NetworkAdapters.MacAddress | Should -Contain $mac
        $g = Get-KvmVmNetworkAdapter -Connection $c -VMName $run
        $g.MacAddress | Should -Be $mac
        $g.IPAddresses | Should -BeNullOrEmpty -Because 'the guest has no OS to take an address'
        $g.AddressSource | Should -BeNullOrEmpty
        ($g | Out-String -Width 200) | Should -Match 'MacAddress\s+Type\s+Source\s+Model\s+Target\s+LinkState\s+IPAddresses'
    }

    It 'disconnects and reconnects the NIC (link down and up, live and in the configuration)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $n = Set-KvmVmNetworkAdapter -Connection $c -VMName $run -MacAddress $mac -Connected $false -Passthru
        $n.LinkState | Should -Be 'Down'
        (& virsh -c $c domif-getlink $run $mac) -join ' ' | Should -Match '\bdown\b'
        ((Get-ConfigXml $run).domain.devices.interface | Where-Object { $_.mac.address -eq $mac }).link.state | Should -Be 'down'

        Get-KvmVmNetworkAdapter -Connection $c -VMName $run | Set-KvmVmNetworkAdapter -Connected $true
        (Get-KvmVmNetworkAdapter -Connection $c -VMName $run).LinkState | Should -Be 'Up'
        (& virsh -c $c domif-getlink $run $mac) -join ' ' | Should -Match '\bup\b'
        ((Get-ConfigXml $run).domain.devices.interface | Where-Object { $_.mac.address -eq $mac }).link.state | Should -Be 'up'
    }

    It 'completes disk targets, MAC addresses, volumes and pools' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Get-KvmVmDisk -Connection $c -VMName $run
        $null = Get-KvmVmNetworkAdapter -Connection $c -VMName $run -NoAddress
        (Complete "Remove-KvmVmDisk -Connection $c -VMName $run -Target v").CompletionText | Should -Be @('vda')
        (Complete "Set-KvmVmNetworkAdapter -Connection $c -VMName $run -MacAddress 52").CompletionText | Should -Be @($mac)
        $null = Get-KvmStoragePool -Connection $c
        $null = Get-KvmVolume -Connection $c -Pool default
        (Complete "Add-KvmVmDisk -Connection $c -VMName $run -Volume default/$run").CompletionText | Should -Be @("default/$run-vda.qcow2")
        (Complete "Add-KvmVmDisk -Connection $c -VMName $run -StoragePool defa").CompletionText | Should -Contain 'default'
    }

    It 'refuses bad input with stable error ids: invalid MAC, missing network, missing disk or adapter' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        foreach ($bad in '01:00:5e:00:00:01', '52:54:00:12:34', 'not-a-mac') {
            $err = $null
            try { Add-KvmVmNetworkAdapter -Connection $c -VMName $run -Network $net -MacAddress $bad -Confirm:$false }
            catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -BeLike 'InvalidMacAddress,*' -Because "'$bad' is no unicast MAC"
            $err.TargetObject | Should -Be $bad
        }

        $null = Add-KvmVmNetworkAdapter -Connection $c -VMName $run -Network "$p-nonet" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotFound,*'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err[0].TargetObject | Should -Be "$p-nonet"

        Remove-KvmVmDisk -Connection $c -VMName $run -Target vdq -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'DiskNotFound,*'
        $err2[0].TargetObject | Should -Be 'vdq'

        Remove-KvmVmNetworkAdapter -Connection $c -VMName $run -MacAddress 52:54:00:00:00:01 -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err3
        $err3[0].FullyQualifiedErrorId | Should -BeLike 'NetworkAdapterNotFound,*'

        $null = Add-KvmVmDisk -Connection $c -VMName $run -Path "/var/lib/libvirt/images/$p-none.qcow2" -ErrorAction SilentlyContinue -ErrorVariable err4
        $err4[0].FullyQualifiedErrorId | Should -BeLike 'DiskNotFound,*'

        (Get-KvmVm -Connection $c -Name $run).Disks.Target | Should -Be @('vda') -Because 'nothing was added by the failures'
        @((Get-KvmVm -Connection $c -Name $run).NetworkAdapters).Count | Should -Be 1
    }

    It 'changes nothing with -WhatIf' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Add-KvmVmDisk -Connection $c -VMName $run -SizeBytes 8MB -WhatIf
        Remove-KvmVmDisk -Connection $c -VMName $run -Target vda -DeleteVolume -Force -WhatIf
        Remove-KvmVmNetworkAdapter -Connection $c -VMName $run -MacAddress $mac -WhatIf
        (Get-KvmVmDisk -Connection $c -VMName $run).Target | Should -Be @('vda')
        (Get-KvmVmNetworkAdapter -Connection $c -VMName $run -NoAddress).MacAddress | Should -Be @($mac)
        Get-ChildItem /var/lib/libvirt/images -Filter "$run-vdb*" | Should -BeNullOrEmpty
    }

    It 'unplugs the NIC from the running VM once the guest releases it' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        (Get-KvmVm -Connection $c -Name $run).MachineType | Should -BeLike 'pc-i440fx*' -Because 'the guest emulation speaks PIIX4 ACPI hot-plug'
        $guest = Start-GuestEject $run
        try { Get-KvmVmNetworkAdapter -Connection $c -VMName $run -NoAddress | Remove-KvmVmNetworkAdapter -Confirm:$false }
        finally { $bits = Wait-GuestEject $guest }
        $bits | Should -Not -Be 0 -Because 'libvirt asked the guest to release the adapter, and the cmdlet waited for it'
        (Get-KvmVm -Connection $c -Name $run).NetworkAdapters | Should -BeNullOrEmpty
        (Get-LiveXml $run).domain.devices.interface | Should -BeNullOrEmpty
        (Get-ConfigXml $run).domain.devices.interface | Should -BeNullOrEmpty
    }

    It 'unplugs the virtio disk from the running VM once the guest releases it, then deletes its volume' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $path = (Get-KvmVmDisk -Connection $c -VMName $run -Target vda).Path
        $guest = Start-GuestEject $run
        try { Remove-KvmVmDisk -Connection $c -VMName $run -Target vda -DeleteVolume -Force -Confirm:$false }
        finally { $bits = Wait-GuestEject $guest }
        $bits | Should -Not -Be 0 -Because 'libvirt asked the guest to release the disk, and the cmdlet waited for it'
        (Get-KvmVm -Connection $c -Name $run).Disks | Should -BeNullOrEmpty
        (Get-LiveXml $run).domain.devices.disk | Should -BeNullOrEmpty
        (Get-ConfigXml $run).domain.devices.disk | Should -BeNullOrEmpty
        $path | Should -Not -Exist
    }

    It 'reports DetachTimeout when the guest does not release a device, and keeps the volume' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $d = Add-KvmVmDisk -Connection $c -VMName $run -SizeBytes 8MB -Passthru
        Remove-KvmVmDisk -Connection $c -VMName $run -Target $d.Target -DeleteVolume -Force -TimeoutSec 1 -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DetachTimeout,*'
        $err[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $d.Path | Should -Exist -Because 'a disk the VM still uses is never deleted'
        (Get-KvmVmDisk -Connection $c -VMName $run -Target $d.Target).Scope | Should -Be 'Live' -Because 'it is gone from the configuration but still in the running VM'

        # The request stays pending: once the guest acknowledges it, the running VM drops the disk.
        Wait-GuestEject (Start-GuestEject $run) -Seconds 60 | Should -Not -Be 0
        $sw = [Diagnostics.Stopwatch]::StartNew()
        while ((Get-KvmVm -Connection $c -Name $run).Disks -and $sw.Elapsed.TotalSeconds -lt 30) { Start-Sleep -Milliseconds 200 }
        (Get-KvmVm -Connection $c -Name $run).Disks | Should -BeNullOrEmpty
    }

    It 'adds and removes a disk and a NIC of a shut-off VM in its configuration' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $verbose = Add-KvmVmDisk -Connection $c -VMName $off -SizeBytes 16MB -Passthru -Verbose 4>&1
        $d = $verbose | Where-Object { $_ -is [KvmPS.Core.KvmVmDisk] }
        $d.Target | Should -Be 'vda'
        $d.Scope | Should -Be 'Config'
        ($verbose | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" | Should -Match 'configuration only'
        $n = Get-KvmVm -Connection $c -Name $off | Add-KvmVmNetworkAdapter -Network $net -Model e1000 -Passthru
        $n.MacAddress | Should -Match '^52:54:00(:[0-9a-f]{2}){3}$'
        $n.Model | Should -Be 'e1000'
        $n.Scope | Should -Be 'Config'

        $r = Resize-KvmVmDisk -Connection $c -VMName $off -Target vda -SizeBytes 24MB -Passthru
        $r.CapacityBytes | Should -Be 24MB

        $vm = Get-KvmVm -Connection $c -Name $off
        $vm.Disks.Target | Should -Be @('vda')
        $vm.NetworkAdapters.MacAddress | Should -Be @($n.MacAddress)
        $vm.Disks[0] | Remove-KvmVmDisk -DeleteVolume -Force -Confirm:$false
        $vm.NetworkAdapters[0] | Remove-KvmVmNetworkAdapter -Confirm:$false
        $vm = Get-KvmVm -Connection $c -Name $off
        $vm.Disks | Should -BeNullOrEmpty
        $vm.NetworkAdapters | Should -BeNullOrEmpty
        $d.Path | Should -Not -Exist
    }

    It 'adds a DVD drive to the running VM for its next start, with a warning' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $dvd = Add-KvmVmDvdDrive -Connection $c -VMName $run -Path $media -Passthru -WarningVariable warn -WarningAction SilentlyContinue
        $dvd.Device | Should -Be 'cdrom'
        $dvd.Bus | Should -Be 'sata'
        $dvd.Scope | Should -Be 'Config'
        $dvd.Path | Should -Be $media
        "$warn" | Should -Match 'next start'
        Remove-KvmVmDisk -Connection $c -VMName $run -Target $dvd.Target -DeleteVolume -Force -Confirm:$false -WarningAction SilentlyContinue
        (Get-ConfigXml $run).domain.devices.disk | Should -BeNullOrEmpty
        $media | Should -Exist -Because 'a CD medium is never deleted'
    }

    It 'inserts and ejects DVD media: in the configuration when off, live when running' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $dvd = Add-KvmVmDvdDrive -Connection $c -VMName $off -Passthru
        $dvd.Target | Should -Be 'sda'
        $dvd.Path | Should -BeNullOrEmpty
        (Set-KvmVmDvdDrive -Connection $c -VMName $off -Path $media -Passthru).Path | Should -Be $media
        (Get-KvmVm -Connection $c -Name $off).Disks[0].Path | Should -Be $media

        Start-KvmVm -Connection $c -Name $off
        $e = Get-KvmVmDisk -Connection $c -VMName $off | Set-KvmVmDvdDrive -Eject -Passthru
        $e.Path | Should -BeNullOrEmpty
        $e.Scope | Should -Be 'LiveAndConfig'
        ((Get-LiveXml $off).domain.devices.disk | Where-Object device -eq 'cdrom').source.file | Should -BeNullOrEmpty
        ((Get-ConfigXml $off).domain.devices.disk | Where-Object device -eq 'cdrom').source.file | Should -BeNullOrEmpty

        $i = Set-KvmVmDvdDrive -Connection $c -VMName $off -Target sda -Path $media -Passthru
        $i.Path | Should -Be $media
        ((Get-LiveXml $off).domain.devices.disk | Where-Object device -eq 'cdrom').source.file | Should -Be $media

        $null = Set-KvmVmDvdDrive -Connection $c -VMName $off -Target sdz -Eject -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DvdDriveNotFound,*'
        $null = Set-KvmVmDvdDrive -Connection $c -VMName $off -Path "/var/lib/libvirt/images/$p-none.iso" -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'MediaNotFound,*'
        Stop-KvmVm -Connection $c -Name $off -TurnOff
    }
}
