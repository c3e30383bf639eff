BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')

    # True when any file under $Path (a file or folder) holds the marker bytes.
    function Test-Marker([string[]] $Path, [string] $Marker) {
        foreach ($f in Get-ChildItem -LiteralPath $Path -Recurse -File -Force) {
            $text = [Text.Encoding]::Latin1.GetString([IO.File]::ReadAllBytes($f.FullName))
            if ($text.Contains($Marker, [StringComparison]::Ordinal)) { return $true }
        }
        $false
    }

    function Get-Mode([string] $Path) { (& stat -c '%a' $Path).Trim() }

    # A raw "guest disk" whose first bytes are a qcow2 header naming $Backing as its raw backing file.
    function New-HostileDisk([string] $Path, [string] $Backing) {
        $out = & qemu-img create -q -f qcow2 -b $Backing -F raw $Path 4M 2>&1
        if ($LASTEXITCODE -ne 0) { throw "qemu-img create failed: $out" }
        $fs = [IO.File]::Open($Path, 'Open', 'ReadWrite')
        try { $fs.SetLength(4MB) } finally { $fs.Dispose() }
    }

    # Runs a command line in a child pwsh (same module and backend) and returns everything it printed, WhatIf included.
    function Invoke-Child([string] $Command) {
        [string[]] $exe = if (Test-Path (Join-Path $PSHOME 'pwsh')) { @(Join-Path $PSHOME 'pwsh') } else { @('dotnet', (Join-Path $PSHOME 'pwsh.dll')) }
        $script = "Import-Module '$script:ModulePath'; $Command"
        $rest = @($exe | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-Command', $script)
        (& $exe[0] @rest 2>&1) -join "`n"
    }
}

Describe 'Images KvmPS did not make: formats are never probed, backing files never followed' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:p = New-TestName 'ut'
        $script:c = 'qemu:///system'
        # The host file a guest would like to read: its content (not its path) is what must never be copied.
        $script:secret = "HOST-SECRET-$([guid]::NewGuid().ToString('N'))"
        $script:marker = "/tmp/$p-marker.raw"
        $script:images = '/var/lib/libvirt/images'
        $script:work = Join-Path ([IO.Path]::GetTempPath()) "$p-work"
        $script:set = Join-Path ([IO.Path]::GetTempPath()) "$p-set"
        if (-not $skip) {
            $null = New-Item -ItemType Directory -Path $work -Force
            [IO.File]::WriteAllText($marker, ($secret + "`n") * 2000)
            $script:evil = Join-Path $images "$p-evil.img"
            New-HostileDisk $evil $marker
            $script:evil2 = Join-Path $images "$p-evil2.img"
            New-HostileDisk $evil2 $marker
            $script:evilLocal = Join-Path $work 'download.qcow2'
            New-HostileDisk $evilLocal $marker
            & virsh -c $c pool-refresh default *> $null
        }
    }
    AfterAll {
        if (-not $skip) { Remove-SystemTestObjects $p }
        Remove-Item $marker, $work, $set, "$set-*" -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'New-KvmVm -DiskPath attaches the hostile disk as raw (with a warning), and refuses it as qcow2' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = New-KvmVm -Connection $c -Name "$p-vm" -MemoryBytes 64MB -NoNetwork -DiskPath $evil -WarningVariable warn -WarningAction SilentlyContinue
        $vm.Disks[0].Format | Should -Be 'raw'
        ([xml](& virsh -c $c dumpxml --inactive "$p-vm")).domain.devices.disk.driver.type | Should -Be 'raw'
        ($warn -join "`n") | Should -Match 'qcow2 header'

        $null = New-KvmVm -Connection $c -Name "$p-q" -MemoryBytes 64MB -NoNetwork -DiskPath $evil2 -Format qcow2 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'
        $err[0].Exception.Message | Should -Match ([regex]::Escape($marker))
        $err[0].TargetObject | Should -Be $evil2
        Get-KvmVm -Connection $c -Name "$p-q" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'New-KvmVm -BaseImage uses the hostile image as a raw base, and refuses it as a qcow2 base' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmVm -Connection $c -Name "$p-b" -MemoryBytes 64MB -NoNetwork -BaseImage $evil2 -Format qcow2 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'
        Get-KvmVm -Connection $c -Name "$p-b" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty

        $vm = New-KvmVm -Connection $c -Name "$p-b" -MemoryBytes 64MB -NoNetwork -BaseImage $evil2 -WarningAction SilentlyContinue
        $info = & qemu-img info -U --output=json $vm.Disks[0].Path | ConvertFrom-Json
        $info.'backing-filename' | Should -Be $evil2
        $info.'backing-filename-format' | Should -Be 'raw'
        $info.'virtual-size' | Should -Be 4MB -Because 'a raw base is as large as its file, whatever its header claims'
    }

    It 'Add-KvmVmDisk -Path attaches it as raw; -Format qcow2 and a -Volume that libvirt reads as qcow2 are refused' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmVm -Connection $c -Name "$p-a" -MemoryBytes 64MB -NoNetwork
        $copy = Join-Path $images "$p-evil3.img"
        New-HostileDisk $copy $marker
        & virsh -c $c pool-refresh default *> $null

        $null = Add-KvmVmDisk -Connection $c -VMName "$p-a" -Path $copy -Format qcow2 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'
        $err[0].Exception.Message | Should -Match ([regex]::Escape($marker))
        $null = Add-KvmVmDisk -Connection $c -VMName "$p-a" -Volume "default/$p-evil3.img" -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'
        (Get-KvmVmDisk -Connection $c -VMName "$p-a" | Where-Object Path -eq $copy) | Should -BeNullOrEmpty

        $disk = Add-KvmVmDisk -Connection $c -VMName "$p-a" -Path $copy -Passthru -WarningAction SilentlyContinue
        $disk.Format | Should -Be 'raw'
        ([xml](& virsh -c $c dumpxml --inactive "$p-a")).domain.devices.disk | Where-Object { $_.source.file -eq $copy } |
            ForEach-Object { $_.driver.type } | Should -Be 'raw'
    }

    It 'Import-KvmVolume refuses a qcow2 file with a backing file, and imports it byte for byte only as -Format raw' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Import-KvmVolume -Connection $c -Path $evilLocal -Pool default -Name "$p-imp.img" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'
        $err[0].Exception.Message | Should -Match ([regex]::Escape($marker))
        $null = Import-KvmVolume -Connection $c -Path $evilLocal -Pool default -Name "$p-imp.img" -Format qcow2 -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'
        Join-Path $images "$p-imp.img" | Should -Not -Exist

        $vol = Import-KvmVolume -Connection $c -Path $evilLocal -Pool default -Name "$p-imp.img" -Format raw -WarningVariable warn -WarningAction SilentlyContinue
        ($warn -join "`n") | Should -Match 'qcow2 header'
        (Get-FileHash $vol.Path).Hash | Should -Be (Get-FileHash $evilLocal).Hash
        Test-Marker $vol.Path $secret | Should -BeFalse
    }

    It 'Copy-KvmVolume refuses a volume libvirt reads as qcow2 with a backing file outside the pools' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        (Get-KvmVolume -Connection $c -Pool default -Name "$p-evil2.img").Format | Should -Be 'qcow2' -Because 'libvirt reads the format from the bytes'
        $null = Copy-KvmVolume -Connection $c -Pool default -Name "$p-evil2.img" -Destination "$p-copy.img" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'
        $err[0].Exception.Message | Should -Match ([regex]::Escape($marker))
        Join-Path $images "$p-copy.img" | Should -Not -Exist
    }

    It 'backs up the shut-off VM as the raw bytes of its disk, never the marker; set folders 0700, files 0600' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $b = Backup-KvmVm -Connection $c -Name "$p-vm" -Destination $set -WarningAction SilentlyContinue
        $file = $b.Disks[0].File
        & qemu-img compare -q -f raw -F qcow2 $evil $file
        $LASTEXITCODE | Should -Be 0 -Because 'the backup holds exactly the raw disk the VM sees'
        Test-Marker $set $secret | Should -BeFalse
        Test-Marker $marker $secret | Should -BeTrue -Because 'the check can fail'

        Get-Mode $set | Should -Be '700'
        Get-Mode $b.Path | Should -Be '700'
        foreach ($f in Get-ChildItem $set -Recurse -File) { Get-Mode $f.FullName | Should -Be '600' -Because $f.Name }
        $manifest = Get-Content (Join-Path $b.Path 'manifest.json') | ConvertFrom-Json
        $manifest.disks[0].sha256 | Should -Be (Get-FileHash $file -Algorithm SHA256).Hash.ToLowerInvariant()
        $manifest.domainSha256 | Should -Be (Get-FileHash (Join-Path $b.Path 'domain.xml') -Algorithm SHA256).Hash.ToLowerInvariant()
    }

    It 'restores it without the marker, as a 0600 qcow2 disk with the raw disk''s bytes' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = Restore-KvmBackup -Connection $c -Path $set -Name "$p-r" -WarningAction SilentlyContinue
        $disk = $vm.Disks[0].Path
        Get-Mode $disk | Should -Be '600'
        Test-Marker $disk $secret | Should -BeFalse
        & qemu-img compare -q -f raw -F qcow2 $evil $disk
        $LASTEXITCODE | Should -Be 0
        (& qemu-img info -U --output=json -f qcow2 $disk | ConvertFrom-Json).'backing-filename' | Should -BeNullOrEmpty
    }

    It 'exports a volume as a 0600 file' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $dest = Join-Path $work 'export.img'
        Export-KvmVolume -Connection $c -Pool default -Name "$p-imp.img" -Destination $dest
        Get-Mode $dest | Should -Be '600'
        Test-Marker $dest $secret | Should -BeFalse
    }

    Context 'Tampered backup sets' {
        BeforeEach {
            if ($skip) { return }
            $script:t = "$set-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
            Copy-Item $set $t -Recurse
            $script:setJson = Join-Path $t 'kvmps-backup.json'
            $script:m = Get-Content $setJson -Raw | ConvertFrom-Json
            $script:bdir = Join-Path $t $m.backups[0].name
        }

        It 'refuses a manifest naming an absolute disk file: <Name>' -TestCases @(
            @{ Name = 'absolute'; File = '/tmp/x.qcow2' }
            @{ Name = 'dot-dot'; File = '../../outside.qcow2' }
            @{ Name = 'folder'; File = 'sub/vda.qcow2' }
        ) {
            param($Name, $File)
            if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
            $m.backups[0].disks[0].file = if ($Name -eq 'absolute') { $marker } else { $File }
            $m | ConvertTo-Json -Depth 10 | Set-Content $setJson
            $null = Restore-KvmBackup -Connection $c -Path $t -Name "$p-x" -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'BackupSetInvalid,*'
            $err[0].CategoryInfo.Category | Should -Be 'InvalidData'
            Get-KvmVm -Connection $c -Name "$p-x" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            Get-ChildItem $images -Filter "$p-x*" | Should -BeNullOrEmpty
        }

        It 'refuses a backup name that leaves the set' {
            if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
            $m.backups[0].name = '../..' + $bdir
            $m | ConvertTo-Json -Depth 10 | Set-Content $setJson
            $null = Restore-KvmBackup -Connection $c -Path $t -Name "$p-x" -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'BackupSetInvalid,*'
            $null = Get-KvmBackup -Path $t -ErrorAction SilentlyContinue -ErrorVariable err2
            $err2[0].FullyQualifiedErrorId | Should -BeLike 'BackupSetInvalid,*'
        }

        It 'refuses a disk file that is a symbolic link out of the set' {
            if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
            $target = Join-Path $work 'outside.qcow2'
            Copy-Item (Join-Path $bdir 'vda.qcow2') $target
            Remove-Item (Join-Path $bdir 'vda.qcow2')
            $null = New-Item -ItemType SymbolicLink -Path (Join-Path $bdir 'vda.qcow2') -Target $target
            $null = Restore-KvmBackup -Connection $c -Path $t -Name "$p-x" -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'BackupSetInvalid,*'
        }

        It 'refuses a disk file whose checksum does not match (BackupSetCorrupt)' {
            if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
            $f = Join-Path $bdir 'vda.qcow2'
            $fs = [IO.File]::Open($f, 'Open', 'ReadWrite')
            try { $fs.Seek(-1, 'End') | Out-Null; $b = $fs.ReadByte(); $fs.Seek(-1, 'End') | Out-Null; $fs.WriteByte(($b + 1) % 256) } finally { $fs.Dispose() }
            $null = Restore-KvmBackup -Connection $c -Path $t -Name "$p-x" -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'BackupSetCorrupt,*'
            Get-ChildItem $images -Filter "$p-x*" | Should -BeNullOrEmpty
        }

        It 'refuses a disk file that is a qcow2 image with a backing file' {
            if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
            $f = Join-Path $bdir 'vda.qcow2'
            Remove-Item $f
            $out = & qemu-img create -q -f qcow2 -b $marker -F raw $f 4M 2>&1
            $LASTEXITCODE | Should -Be 0 -Because "$out"
            $m.backups[0].disks[0].sha256 = $null
            $m | ConvertTo-Json -Depth 10 | Set-Content $setJson
            $null = Restore-KvmBackup -Connection $c -Path $t -Name "$p-x" -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'ImageBackingRefused,*'
            $err[0].Exception.Message | Should -Match ([regex]::Escape($marker))
            Get-ChildItem $images -Filter "$p-x*" | Should -BeNullOrEmpty
        }

        It 'drops qemu:commandline, hostdev, filesystem and host CD-ROMs from domain.xml, with a warning and in -WhatIf' {
            if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
            $domFile = Join-Path $bdir 'domain.xml'
            $x = [System.Xml.Linq.XElement]::Parse((Get-Content $domFile -Raw))
            $q = [System.Xml.Linq.XNamespace]::Get('http://libvirt.org/schemas/domain/qemu/1.0')
            $x.Add([System.Xml.Linq.XAttribute]::new([System.Xml.Linq.XNamespace]::Xmlns + 'qemu', $q.NamespaceName))
            $x.Add([System.Xml.Linq.XElement]::new($q + 'commandline',
                [System.Xml.Linq.XElement]::new($q + 'arg', [System.Xml.Linq.XAttribute]::new('value', '-drive')),
                [System.Xml.Linq.XElement]::new($q + 'arg', [System.Xml.Linq.XAttribute]::new('value', "file=$marker,if=virtio,format=raw"))))
            $dev = $x.Element('devices')
            $dev.Add([System.Xml.Linq.XElement]::Parse("<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x00' slot='0x1f' function='0x7'/></source></hostdev>"))
            $dev.Add([System.Xml.Linq.XElement]::Parse("<filesystem type='mount' accessmode='passthrough'><source dir='/etc'/><target dir='hostetc'/></filesystem>"))
            $dev.Add([System.Xml.Linq.XElement]::Parse("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='$marker'/><target dev='sdz' bus='sata'/><readonly/></disk>"))
            $x.ToString() | Set-Content $domFile
            $m.backups[0].domainSha256 = (Get-FileHash $domFile -Algorithm SHA256).Hash.ToLowerInvariant()
            $m | ConvertTo-Json -Depth 10 | Set-Content $setJson

            $whatIf = Invoke-Child "Restore-KvmBackup -Connection $c -Path '$t' -Name '$p-w' -WhatIf"
            $whatIf | Should -Match 'What if'
            $whatIf | Should -Match 'qemu:commandline'
            $whatIf | Should -Match 'hostdev'
            $whatIf | Should -Match 'filesystem'
            Get-KvmVm -Connection $c -Name "$p-w" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty

            $vm = Restore-KvmBackup -Connection $c -Path $t -Name "$p-w" -WarningVariable warn -WarningAction SilentlyContinue
            $vm.Name | Should -Be "$p-w"
            $w = $warn -join "`n"
            $w | Should -Match 'qemu:commandline'
            $w | Should -Match 'hostdev'
            $w | Should -Match 'filesystem'
            $w | Should -Match ([regex]::Escape($marker)) -Because 'the CD-ROM medium is named as dropped'
            $defined = (& virsh -c $c dumpxml --inactive "$p-w") -join "`n"
            $defined | Should -Not -Match 'commandline'
            $defined | Should -Not -Match '<hostdev'
            $defined | Should -Not -Match '<filesystem'
            $defined | Should -Not -Match ([regex]::Escape($marker))
            $defined | Should -Match "dev='sdz'" -Because 'the CD-ROM drive stays, empty'
        }
    }
}

Describe 'The cloud-init seed holds no clear-text password' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:p = New-TestName 'seed'
        $script:c = 'qemu:///system'
    }
    AfterAll {
        if (-not $skip) { Remove-SystemTestObjects $p }
    }

    It 'writes the password only as a salted SHA-512 crypt hash' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $plain = "Pw-$([guid]::NewGuid().ToString('N'))"
        $pw = ConvertTo-SecureString $plain -AsPlainText -Force
        $vm = New-KvmVm -Connection $c -Name "$p-vm" -MemoryBytes 64MB -NoNetwork -CloudInit -User ops -Password $pw
        $iso = ($vm.Disks | Where-Object Device -eq 'cdrom').Path
        $iso | Should -Exist
        Test-Marker $iso $plain | Should -BeFalse
        $dir = Join-Path $TestDrive 'seed'
        $null = New-Item -ItemType Directory $dir
        $out = & xorriso -osirrox on -indev $iso -extract /user-data (Join-Path $dir 'user-data') 2>&1
        $LASTEXITCODE | Should -Be 0 -Because "$out"
        $userData = Get-Content (Join-Path $dir 'user-data') -Raw
        $userData | Should -Not -Match 'plain_text_passwd'
        $userData -match 'hashed_passwd: "(\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86})"' | Should -BeTrue -Because $userData
        $hash = $Matches[1]
        $salt = $hash.Split('$')[2]
        (& openssl passwd -6 -salt $salt $plain) | Should -Be $hash -Because 'the hash is of the given password'
        Test-Marker (Join-Path $dir 'user-data') $plain | Should -BeFalse
    }
}
