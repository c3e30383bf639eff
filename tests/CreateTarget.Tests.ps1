# Issue 13, point 5: a creating cmdlet without -Connection needs exactly one target host. With two default connections
# (Connect-KvmHost to two hosts) it creates nothing and says AmbiguousConnection, instead of creating on each host.
BeforeAll {
    . $PSScriptRoot/common.ps1
    $script:Second = if (Test-SystemLibvirt) { $SystemUri } else { $FixtureUri }
    $script:Work = Join-Path ([IO.Path]::GetTempPath()) "kvmps-t-ct-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $null = New-Item -ItemType Directory -Path $Work
    $script:SeedFile = Join-Path $Work 'seed.img'
    [IO.File]::WriteAllBytes($SeedFile, [byte[]]::new(64KB))

    # Every creating cmdlet with arguments that would create something; the name is the target the error names.
    function Get-CreatingCalls([string] $Name) {
        $xml = Join-Path $Work "$Name.xml"
        "<domain type='test'><name>$Name</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>" | Set-Content $xml
        @(
            @{ Command = 'New-KvmVm'; Target = $Name; Parameters = @{ Name = $Name; MemoryBytes = 64MB; NoNetwork = $true } }
            @{ Command = 'Import-KvmVm'; Target = $xml; Parameters = @{ Path = $xml } }
            @{ Command = 'Restore-KvmBackup'; Target = $Work; Parameters = @{ Path = $Work; Name = $Name } }
            @{ Command = 'New-KvmNetwork'; Target = $Name; Parameters = @{ Name = $Name; Mode = 'Isolated' } }
            @{ Command = 'New-KvmStoragePool'; Target = $Name; Parameters = @{ Name = $Name; Type = 'Dir'; Path = (Join-Path $Work $Name) } }
            @{ Command = 'New-KvmVolume'; Target = $Name; Parameters = @{ Pool = 'default-pool'; Name = $Name; SizeBytes = 1MB } }
            @{ Command = 'Copy-KvmVolume'; Target = $Name; Parameters = @{ Pool = 'default-pool'; Name = $Name; Destination = "$Name-copy" } }
            @{ Command = 'Import-KvmVolume'; Target = $SeedFile; Parameters = @{ Path = $SeedFile; Pool = 'default-pool'; Name = $Name } }
        )
    }

    # What a name left behind on one connection: VMs, networks, pools, volumes in any pool.
    function Get-Leftovers($Connection, [string] $Name) {
        $found = @(
            Get-KvmVm -Connection $Connection -Name "$Name*"
            Get-KvmNetwork -Connection $Connection -Name "$Name*"
            Get-KvmStoragePool -Connection $Connection -Name "$Name*"
            foreach ($p in Get-KvmStoragePool -Connection $Connection | Where-Object State -EQ 'Running') {
                Get-KvmVolume -Connection $Connection -Pool $p.Name -Name "$Name*" -ErrorAction SilentlyContinue
            }
        )
        @($found | Where-Object { $_ } | ForEach-Object Name)
    }
}

AfterAll {
    Get-KvmConnection | Disconnect-KvmHost -ErrorAction SilentlyContinue
    Remove-Item $Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Creating with two default connections' -Tag TestDriver {
    BeforeEach {
        Get-KvmConnection | Disconnect-KvmHost -ErrorAction SilentlyContinue
        $script:a = Connect-KvmHost test:///default
        $script:b = Connect-KvmHost $Second
        @(Get-KvmConnection).Count | Should -Be 2
    }
    AfterEach {
        # should a regression create on both hosts, nothing of it outlives the test
        foreach ($n in $script:Made) {
            foreach ($c in $a, $b) {
                Get-KvmVm -Connection $c -Name "$n*" -ErrorAction SilentlyContinue | Remove-KvmVm -Confirm:$false -ErrorAction SilentlyContinue
                Get-KvmNetwork -Connection $c -Name "$n*" -ErrorAction SilentlyContinue | Remove-KvmNetwork -Confirm:$false -ErrorAction SilentlyContinue
                foreach ($p in Get-KvmStoragePool -Connection $c -ErrorAction SilentlyContinue | Where-Object State -EQ 'Running') {
                    Get-KvmVolume -Connection $c -Pool $p.Name -Name "$n*" -ErrorAction SilentlyContinue | Remove-KvmVolume -Confirm:$false -ErrorAction SilentlyContinue
                }
                Get-KvmStoragePool -Connection $c -Name "$n*" -ErrorAction SilentlyContinue | Remove-KvmStoragePool -Confirm:$false -ErrorAction SilentlyContinue
            }
        }
        $script:Made = @()
        Get-KvmConnection | Disconnect-KvmHost -ErrorAction SilentlyContinue
    }

    It '<Command> stops with AmbiguousConnection naming both hosts and creates nothing on either' -ForEach @(
        @{ Index = 0 }, @{ Index = 1 }, @{ Index = 2 }, @{ Index = 3 }, @{ Index = 4 }, @{ Index = 5 }, @{ Index = 6 }, @{ Index = 7 }
    ) {
        $name = New-TestName 'amb'
        $script:Made = @($name)
        $call = (Get-CreatingCalls $name)[$Index]
        $p = $call.Parameters
        $out = & $call.Command @p -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $out | Should -BeNullOrEmpty
        $err.Count | Should -Be 1 -Because "one record, one error ($($err -join '; '))"
        $err[0].FullyQualifiedErrorId | Should -Be "AmbiguousConnection,KvmPS.Commands.$($call.Command -replace '-', '')Command"
        $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err[0].TargetObject | Should -Be $call.Target
        $err[0].ErrorDetails.Message | Should -BeLike "*'test:///default'*"
        $err[0].ErrorDetails.Message | Should -BeLike "*'$Second'*"
        $err[0].ErrorDetails.RecommendedAction | Should -BeLike '*-Connection*'
        Get-Leftovers $a $name | Should -BeNullOrEmpty
        Get-Leftovers $b $name | Should -BeNullOrEmpty
    }

    It 'is a per-record error: each piped VM name is refused on its own, and the pipeline goes on' {
        $names = (New-TestName 'p1'), (New-TestName 'p2')
        $script:Made = $names
        $out = $names | ForEach-Object { [pscustomobject]@{ Name = $_ } } | New-KvmVm -MemoryBytes 64MB -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
        $out | Should -BeNullOrEmpty
        $err.Count | Should -Be 2
        $err.FullyQualifiedErrorId | ForEach-Object { $_ | Should -BeLike 'AmbiguousConnection,*' }
        $err.TargetObject | Should -Be $names
        foreach ($n in $names) { Get-Leftovers $a $n | Should -BeNullOrEmpty; Get-Leftovers $b $n | Should -BeNullOrEmpty }
    }

    It 'creates on the one host that -Connection names' {
        $name = New-TestName 'one'
        $vm = New-KvmVm -Connection test:///default -Name $name -MemoryBytes 64MB -NoNetwork
        try {
            $vm.Name | Should -Be $name
            $vm.Connection.RequestedUri | Should -Be 'test:///default'
            Get-Leftovers $b $name | Should -BeNullOrEmpty
        }
        finally { Remove-KvmVm -Connection test:///default -Name $name -Confirm:$false }
    }

    It 'reads (Get-*) from every default connection as before' {
        $hosts = Get-KvmHost
        @($hosts).Count | Should -Be 2
    }
}

Describe 'Creating with one default connection, or with hosts named explicitly' -Tag TestDriver {
    BeforeEach { Get-KvmConnection | Disconnect-KvmHost -ErrorAction SilentlyContinue }
    AfterEach { Get-KvmConnection | Disconnect-KvmHost -ErrorAction SilentlyContinue }

    It 'creates on the single default connection without -Connection' {
        $a = Connect-KvmHost test:///default
        $name = New-TestName 'single'
        $vol = New-KvmVolume -Pool default-pool -Name $name -SizeBytes 1MB -Format raw
        try {
            $vol.Name | Should -Be $name
            (Get-KvmVolume -Connection $a -Pool default-pool -Name $name).Name | Should -Be $name
        }
        finally { Remove-KvmVolume -Connection $a -Pool default-pool -Name $name -Confirm:$false }
    }

    It 'creates on each host that -Connection names (two given explicitly)' {
        $f = Connect-KvmHost $FixtureUri -NotDefault
        $d = Connect-KvmHost test:///default -NotDefault
        $name = New-TestName 'both'
        $vms = New-KvmVm -Connection $d, $f -Name $name -MemoryBytes 64MB -NoNetwork
        try {
            @($vms).Count | Should -Be 2
            ($vms.Connection.RequestedUri | Sort-Object) | Should -Be (@('test:///default', $FixtureUri) | Sort-Object)
        }
        finally { Remove-KvmVm -Connection $d, $f -Name $name -Confirm:$false -ErrorAction SilentlyContinue }
    }
}
