BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')

    # A file of random bytes (odd length, so that nothing rounds it) and its SHA-256.
    function New-RandomFile([string] $Path, [int] $Length) {
        $bytes = [byte[]]::new($Length)
        [Random]::Shared.NextBytes($bytes)
        [IO.File]::WriteAllBytes($Path, $bytes)
        (Get-FileHash -Algorithm SHA256 -LiteralPath $Path).Hash
    }

    function Get-Sha256([string] $Path) { (Get-FileHash -Algorithm SHA256 -LiteralPath $Path).Hash }

    # True when virsh knows a volume of that name in the pool (read past KvmPS, through libvirt itself).
    function Test-VirshVolume([string] $Uri, [string] $Pool, [string] $Name) {
        & virsh -c $Uri vol-info $Name --pool $Pool *> $null
        $LASTEXITCODE -eq 0
    }

    # Runs one KvmPS command in its own runspace and stops it (as Ctrl+C does) once $Until returns true.
    # Returns whether the command was still running when stopped. (No AddStatement batch: stopping a batch can crash the host.)
    function Stop-WhenReady([string] $Command, [hashtable] $Parameters, [scriptblock] $Until, [int] $TimeoutSec = 30) {
        $rs = [runspacefactory]::CreateRunspace()
        $rs.Open()
        try {
            $import = [powershell]::Create()
            $import.Runspace = $rs
            $null = $import.AddCommand('Import-Module').AddArgument($ModulePath).Invoke()
            $import.Dispose()
            $ps = [powershell]::Create()
            $ps.Runspace = $rs
            $null = $ps.AddCommand($Command).AddParameters($Parameters)
            $handle = $ps.BeginInvoke()
            $sw = [Diagnostics.Stopwatch]::StartNew()
            while (-not (& $Until) -and -not $handle.IsCompleted -and $sw.Elapsed.TotalSeconds -lt $TimeoutSec) { Start-Sleep -Milliseconds 10 }
            $running = -not $handle.IsCompleted
            $ps.Stop()
            $ps.Dispose()
            $running
        }
        finally { $rs.Dispose() }
    }
}

Describe 'Storage pools on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:c = 'test:///default'
        $script:p = "kvmps-sp-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
    }
    AfterAll {
        Get-KvmStoragePool -Connection $c -Name "$p*" | Remove-KvmStoragePool -DeleteContents -Force -Confirm:$false -ErrorAction SilentlyContinue
    }

    It 'lists the test driver''s pool with its type, state, path and sizes' {
        $pool = Get-KvmStoragePool -Connection $c -Name default-pool
        $pool | Should -BeOfType ([KvmPS.Core.KvmStoragePool])
        $pool.Type | Should -Be 'dir'
        $pool.State | Should -Be ([KvmPS.Core.KvmStoragePoolState]::Running)
        $pool.Path | Should -Be '/default-pool'
        $pool.CapacityBytes | Should -Be 100GB
        $pool.AvailableBytes | Should -BeGreaterThan 0
        $pool.Persistent | Should -BeTrue
        $pool.Uuid | Should -Not -Be ([guid]::Empty)
        $pool.Connection.Uri | Should -Be $c
        (Get-KvmStoragePool -Connection $c -Name 'DEFAULT-*').Name | Should -Be 'default-pool'
        Get-KvmStoragePool -Connection $c -Name 'no-such-*' | Should -BeNullOrEmpty
    }

    It 'writes StoragePoolNotFound for a missing exact name, with the name as target' {
        $null = Get-KvmStoragePool -Connection $c -Name "$p-missing" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'StoragePoolNotFound,*'
        $err[0].TargetObject | Should -Be "$p-missing"
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'defines, starts, stops, refreshes and removes a dir pool' {
        $pool = New-KvmStoragePool -Connection $c -Name "$p-a" -Type Dir -Path "/$p-a" -Start
        $pool.Name | Should -Be "$p-a"
        $pool.State | Should -Be 'Running'
        $pool.Path | Should -Be "/$p-a"
        $pool.Autostart | Should -BeFalse

        (Stop-KvmStoragePool -Connection $c -Name "$p-a" -Passthru).State | Should -Be 'Inactive'
        (Get-KvmStoragePool -Connection $c -Name "$p-a").State | Should -Be 'Inactive'
        Get-KvmStoragePool -Connection $c -Name "$p-a" | Start-KvmStoragePool
        (Get-KvmStoragePool -Connection $c -Name "$p-a").State | Should -Be 'Running'
        (Update-KvmStoragePool -Connection $c -Name "$p-a" -Passthru).State | Should -Be 'Running'

        Get-KvmStoragePool -Connection $c -Name "$p-a" | Remove-KvmStoragePool -Confirm:$false
        Get-KvmStoragePool -Connection $c -Name "$p-*" | Should -BeNullOrEmpty
    }

    It 'defines without starting, and turns on autostart' {
        $pool = New-KvmStoragePool -Connection $c -Name "$p-b" -Type Dir -Path "/$p-b" -Autostart
        $pool.State | Should -Be 'Inactive'
        $pool.Autostart | Should -BeTrue
        Remove-KvmStoragePool -Connection $c -Name "$p-b" -Confirm:$false
    }

    It 'builds the XML of each pool type with System.Xml.Linq' {
        $d = [KvmPS.Core.KvmStoragePoolDefinition]@{ Name = 'n1'; Type = 'Netfs'; Path = '/mnt/n1'; SourceHost = 'nas'; SourcePath = '/export/vm' }
        $x = [KvmPS.Core.Services.StorageService]::BuildPoolXml($d)
        $x.Attribute('type').Value | Should -Be 'netfs'
        $x.Element('source').Element('host').Attribute('name').Value | Should -Be 'nas'
        $x.Element('source').Element('dir').Attribute('path').Value | Should -Be '/export/vm'
        $x.Element('target').Element('path').Value | Should -Be '/mnt/n1'
        [KvmPS.Core.Services.StorageService]::DescribeSource($x) | Should -Be 'nas:/export/vm'

        $d = [KvmPS.Core.KvmStoragePoolDefinition]@{ Name = 'vg1'; Type = 'Logical'; SourceName = 'vg1'; SourceDevices = [string[]]@('/dev/sdb') }
        $x = [KvmPS.Core.Services.StorageService]::BuildPoolXml($d)
        $x.Element('target').Element('path').Value | Should -Be '/dev/vg1'
        [KvmPS.Core.Services.StorageService]::DescribeSource($x) | Should -Be 'vg1 (/dev/sdb)'

        $d = [KvmPS.Core.KvmStoragePoolDefinition]@{ Name = 'i1'; Type = 'Iscsi'; SourceHost = 'san'; SourceDevices = [string[]]@('iqn.2024-01.example:t1') }
        $x = [KvmPS.Core.Services.StorageService]::BuildPoolXml($d)
        $x.Element('source').Element('device').Attribute('path').Value | Should -Be 'iqn.2024-01.example:t1'
        $x.Element('target').Element('path').Value | Should -Be '/dev/disk/by-path'
    }

    It 'refuses definitions that miss or mix parameters, and duplicate names, defining nothing' {
        $null = New-KvmStoragePool -Connection $c -Name "$p-c" -Type Fs -Path "/$p-c" -ErrorAction SilentlyContinue -ErrorVariable e1
        $e1[0].FullyQualifiedErrorId | Should -BeLike 'InvalidPoolDefinition,*'
        $e1[0].Exception.Message | Should -Match '-SourceDevice'
        $null = New-KvmStoragePool -Connection $c -Name "$p-c" -Type Dir -Path "/$p-c" -SourceHost nas -ErrorAction SilentlyContinue -ErrorVariable e2
        $e2[0].FullyQualifiedErrorId | Should -BeLike 'InvalidPoolDefinition,*'
        $e2[0].Exception.Message | Should -Match '-SourceHost'
        $null = New-KvmStoragePool -Connection $c -Name "$p-c" -Type Dir -ErrorAction SilentlyContinue -ErrorVariable e3
        $e3[0].FullyQualifiedErrorId | Should -BeLike 'InvalidPoolDefinition,*'
        $null = New-KvmStoragePool -Connection $c -Name default-pool -Type Dir -Path /elsewhere -ErrorAction SilentlyContinue -ErrorVariable e4
        $e4[0].FullyQualifiedErrorId | Should -BeLike 'StoragePoolExists,*'
        $e4[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        Get-KvmStoragePool -Connection $c -Name "$p-*" | Should -BeNullOrEmpty
        (Get-KvmStoragePool -Connection $c -Name default-pool).Path | Should -Be '/default-pool'
    }

    It 'changes nothing with -WhatIf' {
        New-KvmStoragePool -Connection $c -Name "$p-w" -Type Dir -Path "/$p-w" -Start -WhatIf
        Get-KvmStoragePool -Connection $c -Name "$p-w" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Get-KvmStoragePool -Connection $c -Name default-pool | Stop-KvmStoragePool -WhatIf
        (Get-KvmStoragePool -Connection $c -Name default-pool).State | Should -Be 'Running'
    }

    It 'completes pool names from the last listing' {
        $null = Get-KvmStoragePool -Connection $c
        (Complete "Get-KvmStoragePool -Connection $c -Name defa").CompletionText | Should -Be @('default-pool')
        (Complete "Get-KvmVolume -Connection $c -Pool defa").CompletionText | Should -Be @('default-pool')
        (Complete "Start-KvmStoragePool -Connection $c -Name zz-none").CompletionText | Should -BeNullOrEmpty
    }

    It 'shows pools in a table' {
        $text = Get-KvmStoragePool -Connection $c -Name default-pool | Out-String
        $text | Should -Match 'Name\s+Type\s+State\s+Capacity\s+Available\s+Volumes\s+Path'
        $text | Should -Match 'default-pool\s+dir\s+Running\s+100 GiB'
    }
}

Describe 'Volumes on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:c = 'test:///default'
        $script:p = "kvmps-sv-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $script:pool = New-KvmStoragePool -Connection $c -Name "$p-pool" -Type Dir -Path "/$p-pool" -Start
    }
    AfterAll {
        Get-KvmVm -Connection $c -Name "$p*" | Remove-KvmVm -Force -Confirm:$false -ErrorAction SilentlyContinue
        Get-KvmVolume -Connection $c -Pool default-pool -Name "$p*" | Remove-KvmVolume -Force -Confirm:$false -ErrorAction SilentlyContinue
        Remove-KvmStoragePool -Connection $c -Name "$p-pool" -DeleteContents -Force -Confirm:$false -ErrorAction SilentlyContinue
    }

    It 'creates thin qcow2 (the default) and allocated raw volumes' {
        $q = New-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-a.qcow2" -SizeBytes 1GB
        $q | Should -BeOfType ([KvmPS.Core.KvmVolume])
        $q.Pool | Should -Be "$p-pool"
        $q.Format | Should -Be 'qcow2'
        $q.CapacityBytes | Should -Be 1GB
        $q.AllocationBytes | Should -Be 0
        $q.Path | Should -Be "/$p-pool/$p-a.qcow2"
        $q.Connection.Uri | Should -Be $c

        $r = New-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-b.raw" -SizeBytes '10MiB' -Format raw
        $r.Format | Should -Be 'raw'
        $r.CapacityBytes | Should -Be 10MB
        $r.AllocationBytes | Should -Be 10MB
    }

    It 'lists volumes by pool and name with wildcards, and pools from the pipeline' {
        (Get-KvmVolume -Connection $c -Pool "$p-pool").Name | Should -Be @("$p-a.qcow2", "$p-b.raw")
        (Get-KvmVolume -Connection $c -Pool "$p-p*" -Name '*.RAW').Name | Should -Be "$p-b.raw"
        (Get-KvmVolume -Connection $c -Name "$p-a*").Pool | Should -Be "$p-pool"
        (Get-KvmStoragePool -Connection $c -Name "$p-pool" | Get-KvmVolume).Count | Should -Be 2
        (Get-KvmStoragePool -Connection $c -Name "$p-pool").VolumeCount | Should -Be 2
    }

    It 'writes VolumeNotFound for a missing exact volume name' {
        $null = Get-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-zz" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeNotFound,*'
        $err[0].TargetObject | Should -Be "$p-zz"
        $null = Remove-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-zz" -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'VolumeNotFound,*'
    }

    It 'refuses a raw volume larger than the free space (VolumeTooLarge), but makes a thin qcow2 one with a warning' {
        $free = (Get-KvmStoragePool -Connection $c -Name "$p-pool").AvailableBytes
        $null = New-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-big.raw" -SizeBytes ($free + 1GB) -Format raw -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeTooLarge,*'
        $err[0].TargetObject | Should -Be "$p-big.raw"
        Get-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-big*" | Should -BeNullOrEmpty

        $thin = New-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-big.qcow2" -SizeBytes ($free + 1GB) -WarningVariable warn -WarningAction SilentlyContinue
        $thin.CapacityBytes | Should -Be ($free + 1GB)
        $warn[0] | Should -Match 'thin'
        $thin | Remove-KvmVolume -Confirm:$false
    }

    It 'refuses a duplicate volume (VolumeExists) and leaves the first one alone' {
        $null = New-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-a.qcow2" -SizeBytes 2GB -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeExists,*'
        (Get-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-a.qcow2").CapacityBytes | Should -Be 1GB
    }

    It 'refuses invalid names, a missing pool, and a missing size' {
        $null = New-KvmVolume -Connection $c -Pool "$p-pool" -Name 'a/b' -SizeBytes 1MB -ErrorAction SilentlyContinue -ErrorVariable e1
        $e1[0].FullyQualifiedErrorId | Should -BeLike 'InvalidName,*'
        $null = New-KvmVolume -Connection $c -Pool "$p-nopool" -Name x -SizeBytes 1MB -ErrorAction SilentlyContinue -ErrorVariable e2
        $e2[0].FullyQualifiedErrorId | Should -BeLike 'StoragePoolNotFound,*'
        $null = New-KvmVolume -Connection $c -Pool "$p-pool" -Name x -ErrorAction SilentlyContinue -ErrorVariable e3
        $e3[0].FullyQualifiedErrorId | Should -BeLike 'SizeRequired,*'
        { New-KvmVolume -Connection $c -Pool "$p-pool" -Name x -SizeBytes 'lots' } | Should -Throw -ErrorId 'ParameterArgumentTransformationError,*'
    }

    It 'clones a volume through the pipeline' {
        # (the test driver only clones within one pool; another -DestinationPool is tested on qemu:///system)
        $copy = Get-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-b.raw" | Copy-KvmVolume -Destination "$p-copy.raw"
        $copy.Pool | Should -Be "$p-pool"
        $copy.Name | Should -Be "$p-copy.raw"
        $copy.CapacityBytes | Should -Be 10MB
        (Get-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-copy.raw").Format | Should -Be 'raw'
        $copy | Remove-KvmVolume -Confirm:$false
        Get-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-copy*" | Should -BeNullOrEmpty
    }

    It 'reports the VMs that use a volume, and refuses to remove it without -Force' {
        $vol = New-KvmVolume -Connection $c -Pool default-pool -Name "$p-disk.qcow2" -SizeBytes 64MB
        $null = New-KvmVm -Connection $c -Name "$p-vm" -MemoryBytes 64MB -NoNetwork -DiskPath $vol.Path
        (Get-KvmVolume -Connection $c -Pool default-pool -Name "$p-disk.qcow2").UsedBy | Should -Be @("$p-vm")
        (Get-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-a.qcow2").UsedBy | Should -BeNullOrEmpty

        $vol | Remove-KvmVolume -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeInUse,*'
        $err[0].CategoryInfo.Category | Should -Be 'ResourceBusy'
        $err[0].Exception.Message | Should -Match "$p-vm"
        Get-KvmVolume -Connection $c -Pool default-pool -Name "$p-disk.qcow2" | Should -Not -BeNullOrEmpty

        $vol | Remove-KvmVolume -Force -Confirm:$false -WarningAction SilentlyContinue
        Get-KvmVolume -Connection $c -Pool default-pool -Name "$p-disk*" | Should -BeNullOrEmpty
    }

    It 'completes volume names of the pool given, without opening a connection' {
        $null = Get-KvmVolume -Connection $c -Pool "$p-pool"
        (Complete "Remove-KvmVolume -Connection $c -Pool $p-pool -Name $p-").CompletionText | Should -Be @("$p-a.qcow2", "$p-b.raw")
        (Complete "Get-KvmVolume -Connection $c -Pool default-pool -Name $p-a").CompletionText | Should -BeNullOrEmpty
        (Complete "Get-KvmVolume -Connection test:///never-opened -Name $p-").CompletionText | Should -BeNullOrEmpty
    }

    It 'shows volumes in a table' {
        $text = Get-KvmVolume -Connection $c -Pool "$p-pool" | Out-String -Width 200
        $text | Should -Match 'Pool\s+Name\s+Format\s+Capacity\s+Allocation\s+UsedBy'
        $text | Should -Match "$p-b\.raw\s+raw\s+10 MiB\s+10 MiB"
    }

    It 'binds pool and volume names by property name' {
        $null = New-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-csv.raw" -SizeBytes 1MB -Format raw
        [pscustomobject]@{ Pool = "$p-pool"; Name = "$p-csv.raw"; Connection = $c } | Remove-KvmVolume -Confirm:$false
        Get-KvmVolume -Connection $c -Pool "$p-pool" -Name "$p-csv*" | Should -BeNullOrEmpty
        [pscustomobject]@{ PoolName = "$p-pool"; Connection = $c } | Stop-KvmStoragePool
        (Get-KvmStoragePool -Connection $c -Name "$p-pool").State | Should -Be 'Inactive'
        [pscustomobject]@{ Name = "$p-pool"; Connection = $c } | Start-KvmStoragePool
        (Get-KvmStoragePool -Connection $c -Name "$p-pool").State | Should -Be 'Running'
    }

    It 'removes volumes piped by value, and with -DeleteContents the whole pool' {
        Get-KvmVolume -Connection $c -Pool "$p-pool" -Name '*.qcow2' | Remove-KvmVolume -Confirm:$false
        (Get-KvmVolume -Connection $c -Pool "$p-pool").Name | Should -Be @("$p-b.raw")
        Remove-KvmStoragePool -Connection $c -Name "$p-pool" -DeleteContents -Confirm:$false
        Get-KvmStoragePool -Connection $c -Name "$p-pool" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}

Describe 'Storage pools and volumes on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:c = 'qemu:///system'
        $script:p = New-TestName 'st'
        $script:tmp = Join-Path ([IO.Path]::GetTempPath()) $p
        $script:dir = Join-Path $tmp 'pool'
        $script:pool = "$p-pool"
        $null = New-Item -ItemType Directory -Force $tmp
        if (-not $skip) {
            $null = New-KvmStoragePool -Connection $c -Name $pool -Type Dir -Path $dir -Start
        }
    }
    AfterAll {
        if (-not $skip) {
            Remove-SystemTestObjects $p
            foreach ($name in (& virsh -c $c pool-list --all --name 2>$null) | ForEach-Object Trim | Where-Object { $_ -like "$p*" }) {
                & virsh -c $c pool-destroy $name *> $null
                & virsh -c $c pool-undefine $name *> $null
            }
        }
        Remove-Item $tmp -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'creates a dir pool in a temporary folder: built, running, with the folder' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $p1 = Get-KvmStoragePool -Connection $c -Name $pool
        $p1.State | Should -Be 'Running'
        $p1.Type | Should -Be 'dir'
        $p1.Path | Should -Be $dir
        $p1.CapacityBytes | Should -BeGreaterThan 0
        $p1.AvailableBytes | Should -BeLessOrEqual $p1.CapacityBytes
        $dir | Should -Exist
        (& virsh -c $c pool-info $pool) -join ' ' | Should -Match 'State:\s+running'
    }

    It 'goes through its lifecycle; removing keeps the folder and files unless -DeleteContents' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $life = Join-Path $tmp 'life'
        $lp = New-KvmStoragePool -Connection $c -Name "$p-life" -Type Dir -Path $life -Start -Autostart
        $lp.Autostart | Should -BeTrue
        $life | Should -Exist
        New-RandomFile (Join-Path $life 'outside.img') 4096 | Out-Null
        Get-KvmVolume -Connection $c -Pool "$p-life" | Should -BeNullOrEmpty -Because 'libvirt has not reread the folder yet'
        Update-KvmStoragePool -Connection $c -Name "$p-life"
        (Get-KvmVolume -Connection $c -Pool "$p-life").Name | Should -Be 'outside.img'

        Stop-KvmStoragePool -Connection $c -Name "$p-life"
        (Get-KvmStoragePool -Connection $c -Name "$p-life").State | Should -Be 'Inactive'
        $null = Get-KvmVolume -Connection $c -Pool "$p-life" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'StoragePoolInactive,*'
        Start-KvmStoragePool -Connection $c -Name "$p-life"
        (Get-KvmStoragePool -Connection $c -Name "$p-life").VolumeCount | Should -Be 1

        Remove-KvmStoragePool -Connection $c -Name "$p-life" -Confirm:$false
        Get-KvmStoragePool -Connection $c -Name "$p-life" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        & virsh -c $c pool-info "$p-life" *> $null
        $LASTEXITCODE | Should -Not -Be 0
        Join-Path $life 'outside.img' | Should -Exist

        # defined again over the same folder, then removed with its contents
        $null = New-KvmStoragePool -Connection $c -Name "$p-life" -Type Dir -Path $life -Start
        (Get-KvmVolume -Connection $c -Pool "$p-life").Name | Should -Be 'outside.img'
        Get-KvmStoragePool -Connection $c -Name "$p-life" | Remove-KvmStoragePool -DeleteContents -Confirm:$false
        $life | Should -Not -Exist
        Get-KvmStoragePool -Connection $c -Name "$p-life" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'refuses a dir pool whose path is a file, defining nothing (PoolPathIsFile)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $file = Join-Path $tmp 'a-file'
        Set-Content -Path $file -Value 'not a folder'
        $null = New-KvmStoragePool -Connection $c -Name "$p-file" -Type Dir -Path $file -Start -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'PoolPathIsFile,*'
        $err[0].TargetObject | Should -Be $file
        $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        & virsh -c $c pool-info "$p-file" *> $null
        $LASTEXITCODE | Should -Not -Be 0 -Because 'nothing was defined'
        Get-Content $file | Should -Be 'not a folder'
    }

    It 'rolls back when building or starting fails (StoragePoolCreateFailed), leaving no pool' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmStoragePool -Connection $c -Name "$p-bad" -Type Dir -Path "/proc/$p-bad" -Start -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'StoragePoolCreateFailed,*'
        $err[0].Exception.Message | Should -Match 'Nothing was left behind'
        & virsh -c $c pool-info "$p-bad" *> $null
        $LASTEXITCODE | Should -Not -Be 0 -Because 'the definition was rolled back'
    }

    It 'uploads a file byte for byte (Import-KvmVolume) and downloads it again (Export-KvmVolume), checked by SHA-256' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $src = Join-Path $tmp 'random.bin'
        $hash = New-RandomFile $src (3MB + 4321)
        $vol = Import-KvmVolume -Connection $c -Path $src -Pool $pool -Name "$p-up.img"
        $vol.Name | Should -Be "$p-up.img"
        $vol.CapacityBytes | Should -Be (3MB + 4321)
        $vol.Format | Should -Be 'raw'
        $vol.Path | Should -Be (Join-Path $dir "$p-up.img")
        (Get-Item $vol.Path).Length | Should -Be (3MB + 4321)
        Get-Sha256 $vol.Path | Should -Be $hash -Because 'the file in the pool is the uploaded file'

        $out = Join-Path $tmp 'down.bin'
        $file = $vol | Export-KvmVolume -Destination $out
        $file | Should -BeOfType ([IO.FileInfo])
        $file.FullName | Should -Be $out
        $file.Length | Should -Be (3MB + 4321)
        Get-Sha256 $out | Should -Be $hash
        Get-ChildItem $tmp -Force -Filter '*.partial' | Should -BeNullOrEmpty
    }

    It 'imports a qcow2 image so that libvirt reports it as qcow2, and exports it identical' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $img = Join-Path $tmp 'small.qcow2'
        & qemu-img create -q -f qcow2 $img 16M
        $hash = Get-Sha256 $img
        $vol = Import-KvmVolume -Connection $c -Path $img -Pool $pool -Name "$p-img.qcow2" -Format qcow2
        $vol.Format | Should -Be 'qcow2'
        $vol.CapacityBytes | Should -Be 16MB
        Get-Sha256 $vol.Path | Should -Be $hash
        $out = Export-KvmVolume -Connection $c -Pool $pool -Name "$p-img.qcow2" -Destination $tmp
        $out.Name | Should -Be "$p-img.qcow2" -Because 'a folder as -Destination gets the volume''s name'
        Get-Sha256 $out.FullName | Should -Be $hash
    }

    It 'refuses to export over an existing file without -Force, and replaces it with -Force' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $out = Join-Path $tmp 'exists.bin'
        Set-Content -Path $out -Value 'keep me'
        $null = Export-KvmVolume -Connection $c -Pool $pool -Name "$p-up.img" -Destination $out -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DestinationExists,*'
        Get-Content $out | Should -Be 'keep me'
        $null = Export-KvmVolume -Connection $c -Pool $pool -Name "$p-up.img" -Destination $out -Force
        Get-Sha256 $out | Should -Be (Get-Sha256 (Join-Path $dir "$p-up.img"))
    }

    It 'refuses a qcow2 import of a file that is not qcow2 (ImageFormatMismatch), creating no volume' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Import-KvmVolume -Connection $c -Path (Join-Path $tmp 'random.bin') -Pool $pool -Name "$p-wrong.qcow2" -Format qcow2 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ImageFormatMismatch,*'
        Test-VirshVolume $c $pool "$p-wrong.qcow2" | Should -BeFalse
        $null = Import-KvmVolume -Connection $c -Path (Join-Path $tmp 'no-such-file') -Pool $pool -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'SourceFileNotFound,*'
    }

    It 'clones a volume (Copy-KvmVolume): same bytes, same format' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $copy = Copy-KvmVolume -Connection $c -Pool $pool -Name "$p-up.img" -Destination "$p-clone.img"
        $copy.Name | Should -Be "$p-clone.img"
        $copy.CapacityBytes | Should -Be (3MB + 4321)
        Get-Sha256 $copy.Path | Should -Be (Get-Sha256 (Join-Path $dir "$p-up.img"))
        Test-VirshVolume $c $pool "$p-clone.img" | Should -BeTrue

        $q = Copy-KvmVolume -Connection $c -Pool $pool -Name "$p-img.qcow2" -Destination "$p-clone.qcow2"
        $q.Format | Should -Be 'qcow2'
        $q.CapacityBytes | Should -Be 16MB
        $null = Copy-KvmVolume -Connection $c -Pool $pool -Name "$p-img.qcow2" -Destination "$p-clone.qcow2" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeExists,*'

        $other = New-KvmStoragePool -Connection $c -Name "$p-pool2" -Type Dir -Path (Join-Path $tmp 'pool2') -Start
        $moved = Get-KvmVolume -Connection $c -Pool $pool -Name "$p-up.img" | Copy-KvmVolume -Destination "$p-moved.img" -DestinationPool $other.Name
        $moved.Pool | Should -Be "$p-pool2"
        $moved.Path | Should -Be (Join-Path $tmp 'pool2' "$p-moved.img")
        Get-Sha256 $moved.Path | Should -Be (Get-Sha256 (Join-Path $dir "$p-up.img"))
        $other | Remove-KvmStoragePool -DeleteContents -Confirm:$false
        Join-Path $tmp 'pool2' | Should -Not -Exist
    }

    It 'creates qcow2 v3 (compat 1.1) volumes and overlays on a backing volume' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $base = New-KvmVolume -Connection $c -Pool $pool -Name "$p-base.qcow2" -SizeBytes 64MB
        $base.Format | Should -Be 'qcow2'
        (& virsh -c $c vol-dumpxml "$p-base.qcow2" --pool $pool) -join '' | Should -Match '<compat>1\.1</compat>'
        (& qemu-img info $base.Path) -join ' ' | Should -Match 'compat: 1\.1'
        $ov = New-KvmVolume -Connection $c -Pool $pool -Name "$p-overlay.qcow2" -BackingVolume "$pool/$p-base.qcow2"
        $ov.BackingStore | Should -Be $base.Path
        $ov.CapacityBytes | Should -Be 64MB
        $ov2 = New-KvmVolume -Connection $c -Pool $pool -Name "$p-overlay2.qcow2" -BackingVolume $base.Path -SizeBytes 128MB
        $ov2.BackingStore | Should -Be $base.Path
        $ov2.CapacityBytes | Should -Be 128MB
        $null = New-KvmVolume -Connection $c -Pool $pool -Name "$p-ov3.raw" -Format raw -BackingVolume $base.Path -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'BackingNeedsQcow2,*'
        $null = New-KvmVolume -Connection $c -Pool $pool -Name "$p-ov4.qcow2" -BackingVolume "$pool/nothing" -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'BackingVolumeNotFound,*'
        Test-VirshVolume $c $pool "$p-ov4.qcow2" | Should -BeFalse
    }

    It 'grows a volume, refuses to shrink it without -AllowShrink, and shrinks it with it' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $v = New-KvmVolume -Connection $c -Pool $pool -Name "$p-rs.qcow2" -SizeBytes 16MB
        $grown = $v | Resize-KvmVolume -SizeBytes 32MB -Passthru
        $grown.CapacityBytes | Should -Be 32MB
        (& qemu-img info $v.Path) -join ' ' | Should -Match 'virtual size: 32 MiB'

        $null = Resize-KvmVolume -Connection $c -Pool $pool -Name "$p-rs.qcow2" -SizeBytes 8MB -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeShrinkRefused,*'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        $err[0].TargetObject | Should -Be "$p-rs.qcow2"
        (Get-KvmVolume -Connection $c -Pool $pool -Name "$p-rs.qcow2").CapacityBytes | Should -Be 32MB -Because 'nothing changed'

        (Resize-KvmVolume -Connection $c -Pool $pool -Name "$p-rs.qcow2" -SizeBytes 8MB -AllowShrink -Passthru).CapacityBytes | Should -Be 8MB
        (& qemu-img info $v.Path) -join ' ' | Should -Match 'virtual size: 8 MiB'

        $raw = New-KvmVolume -Connection $c -Pool $pool -Name "$p-rs.raw" -SizeBytes 8MB -Format raw
        ($raw | Resize-KvmVolume -SizeBytes 12MB -Passthru).CapacityBytes | Should -Be 12MB
        (Get-Item $raw.Path).Length | Should -Be 12MB
        $null = $raw | Resize-KvmVolume -SizeBytes 4MB -AllowShrink -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'VolumeShrinkBelowAllocation,*'
        (Get-Item $raw.Path).Length | Should -Be 12MB
    }

    It 'refuses a raw volume larger than the pool''s free space (VolumeTooLarge); thin qcow2 is allowed' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $free = (Get-KvmStoragePool -Connection $c -Name $pool).AvailableBytes
        $null = New-KvmVolume -Connection $c -Pool $pool -Name "$p-huge.raw" -SizeBytes ($free + 1GB) -Format raw -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeTooLarge,*'
        $err[0].Exception.Message | Should -Match 'free'
        Test-VirshVolume $c $pool "$p-huge.raw" | Should -BeFalse
        Join-Path $dir "$p-huge.raw" | Should -Not -Exist

        $thin = New-KvmVolume -Connection $c -Pool $pool -Name "$p-huge.qcow2" -SizeBytes ($free + 1GB) -WarningAction SilentlyContinue
        $thin.CapacityBytes | Should -Be ($free + 1GB)
        $thin.AllocationBytes | Should -BeLessThan 10MB
        $thin | Remove-KvmVolume -Confirm:$false
        Test-VirshVolume $c $pool "$p-huge.qcow2" | Should -BeFalse
    }

    It 'knows which VMs use a volume (also as a backing file), and refuses to remove it unless -Force' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $disk = New-KvmVolume -Connection $c -Pool $pool -Name "$p-vmdisk.qcow2" -SizeBytes 64MB
        # TCG, so that the VM starts even where /dev/kvm is not usable by QEMU
        $null = New-KvmVm -Connection $c -Name "$p-vm" -MemoryBytes 128MB -NoNetwork -DiskPath $disk.Path -Accelerator Qemu
        $null = New-KvmVm -Connection $c -Name "$p-ovm" -MemoryBytes 128MB -NoNetwork -DiskPath (Join-Path $dir "$p-overlay.qcow2") -Format qcow2

        $vols = Get-KvmVolume -Connection $c -Pool $pool
        ($vols | Where-Object Name -eq "$p-vmdisk.qcow2").UsedBy | Should -Be @("$p-vm")
        ($vols | Where-Object Name -eq "$p-overlay.qcow2").UsedBy | Should -Be @("$p-ovm")
        ($vols | Where-Object Name -eq "$p-base.qcow2").UsedBy | Should -Be @("$p-ovm") -Because 'the overlay of its disk is backed by it'
        ($vols | Where-Object Name -eq "$p-up.img").UsedBy | Should -BeNullOrEmpty

        Get-KvmVolume -Connection $c -Pool $pool -Name "$p-vmdisk.qcow2" | Remove-KvmVolume -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeInUse,*'
        $err[0].Exception.Message | Should -Match "$p-vm"
        $disk.Path | Should -Exist
        $null = Remove-KvmVolume -Connection $c -Pool $pool -Name "$p-base.qcow2" -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'VolumeInUse,*'
        Join-Path $dir "$p-base.qcow2" | Should -Exist

        Start-KvmVm -Connection $c -Name "$p-vm"
        (Get-KvmVolume -Connection $c -Pool $pool -Name "$p-vmdisk.qcow2").UsedBy | Should -Be @("$p-vm") -Because 'a running VM uses it too'
        Stop-KvmVm -Connection $c -Name "$p-vm" -TurnOff

        Remove-KvmVolume -Connection $c -Pool $pool -Name "$p-vmdisk.qcow2" -Force -Confirm:$false -WarningVariable warn -WarningAction SilentlyContinue
        $warn[0] | Should -Match "$p-vm"
        $disk.Path | Should -Not -Exist
        Remove-KvmVm -Connection $c -Name "$p-vm" -Confirm:$false   # "$p-ovm" stays for the last test
    }

    It 'completes pool names and the volume names of the pool given' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Get-KvmStoragePool -Connection $c
        $null = Get-KvmVolume -Connection $c -Pool $pool
        (Complete "Get-KvmStoragePool -Connection $c -Name $p-").CompletionText | Should -Be @($pool)
        $names = (Complete "Export-KvmVolume -Connection $c -Pool $pool -Name $p-clone").CompletionText
        $names | Should -Be @("$p-clone.img", "$p-clone.qcow2")
        $null = New-KvmVolume -Connection $c -Pool $pool -Name "$p-clone-new.qcow2" -SizeBytes 1MB
        (Complete "Export-KvmVolume -Connection $c -Pool $pool -Name $p-clone-").CompletionText | Should -Be @("$p-clone-new.qcow2")
    }

    It 'deletes the new volume when an upload is cancelled (Ctrl+C)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $big = Join-Path $tmp 'big.bin'
        $fs = [IO.File]::Create($big); $fs.SetLength(3GB); $fs.Dispose()
        $target = Join-Path $dir "$p-cancel.img"
        $stopped = Stop-WhenReady 'Import-KvmVolume' @{ Connection = $c; Path = $big; Pool = $pool; Name = "$p-cancel.img" } { (Test-Path $target) -and (Get-Item $target).Length -gt 0 -and ((& du -k $target) -split '\s+')[0] -gt 1024 }
        $stopped | Should -BeTrue -Because 'the upload was still running when it was stopped'
        Test-VirshVolume $c $pool "$p-cancel.img" | Should -BeFalse
        $target | Should -Not -Exist
        Remove-Item $big
    }

    It 'deletes the partial file when a download is cancelled (Ctrl+C)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmVolume -Connection $c -Pool $pool -Name "$p-dl.raw" -SizeBytes 3GB -Format raw
        $out = Join-Path $tmp 'dl.bin'
        $stopped = Stop-WhenReady 'Export-KvmVolume' @{ Connection = $c; Pool = $pool; Name = "$p-dl.raw"; Destination = $out } { @(Get-ChildItem $tmp -Force -Filter '.dl.bin.*.partial' | Where-Object Length -gt 1MB).Count -gt 0 }
        $stopped | Should -BeTrue
        $out | Should -Not -Exist
        Get-ChildItem $tmp -Force -Filter '*.partial' | Should -BeNullOrEmpty
    }

    It 'deletes the partial clone when a copy is cancelled (Ctrl+C)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $stopped = Stop-WhenReady 'Copy-KvmVolume' @{ Connection = $c; Pool = $pool; Name = "$p-dl.raw"; Destination = "$p-cl.raw" } { Test-Path (Join-Path $dir "$p-cl.raw") }
        $stopped | Should -BeTrue
        Test-VirshVolume $c $pool "$p-cl.raw" | Should -BeFalse
        Join-Path $dir "$p-cl.raw" | Should -Not -Exist
    }

    It 'refuses -DeleteContents while a VM uses a volume, then deletes everything with -Force' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        (Get-KvmVolume -Connection $c -Pool $pool -Name "$p-overlay.qcow2").UsedBy | Should -Be @("$p-ovm")
        Remove-KvmStoragePool -Connection $c -Name $pool -DeleteContents -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VolumeInUse,*'
        $err[0].Exception.Message | Should -Match "$p-ovm"
        (Get-KvmStoragePool -Connection $c -Name $pool).State | Should -Be 'Running'
        Join-Path $dir "$p-up.img" | Should -Exist

        Remove-KvmStoragePool -Connection $c -Name $pool -DeleteContents -Force -Confirm:$false -WarningAction SilentlyContinue
        $dir | Should -Not -Exist
        & virsh -c $c pool-info $pool *> $null
        $LASTEXITCODE | Should -Not -Be 0
    }
}
