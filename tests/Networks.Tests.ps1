BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'Networks on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:p = "kvmps-n-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $script:c = 'test:///default'
        # A second octet of our own, so that these subnets never meet the default network's 192.168.122.0/24.
        $script:o = Get-TestOctet 100 200
    }
    AfterAll {
        Get-KvmVm -Connection $c -Name "$p*" | Remove-KvmVm -Force -Confirm:$false
        Get-KvmNetwork -Connection $c -Name "$p*" | Remove-KvmNetwork -Force -Confirm:$false
    }

    It 'lists the default network with its mode, bridge, subnet and DHCP range' {
        $n = Get-KvmNetwork -Connection $c -Name default
        $n | Should -BeOfType ([KvmPS.Core.KvmNetwork])
        $n.Mode | Should -Be 'Nat'
        $n.Bridge | Should -Be 'virbr0'
        $n.Subnets | Should -Be @('192.168.122.0/24')
        $n.DhcpRanges | Should -Be @('192.168.122.2-192.168.122.254')
        $n.Active | Should -BeTrue
        $n.Persistent | Should -BeTrue
        $n.Uuid | Should -Not -Be ([guid]::Empty)
        $n.Connection.Uri | Should -Be $c
    }

    It 'creates an isolated IPv4+IPv6 network with DHCP, starts it and marks it autostart' {
        $n = New-KvmNetwork -Connection $c -Name "$p-iso" -Mode Isolated -Subnet "10.$o.1.0/24", "fd00:$o`:1::/64" `
            -DhcpRange "10.$o.1.100-10.$o.1.199" -Bridge 'ktiso0' -Start -Autostart
        $n | Should -BeOfType ([KvmPS.Core.KvmNetwork])
        $n.Name | Should -Be "$p-iso"
        $n.Mode | Should -Be 'Isolated'
        $n.ForwardMode | Should -BeNullOrEmpty
        $n.Bridge | Should -Be 'ktiso0'
        $n.Subnets | Should -Be @("10.$o.1.0/24", "fd00:$o`:1::/64")
        $n.HostAddresses | Should -Be @("10.$o.1.1", "fd00:$o`:1::1")
        $n.DhcpRanges | Should -Be @("10.$o.1.100-10.$o.1.199")
        $n.Active | Should -BeTrue
        $n.Autostart | Should -BeTrue
        $n.Persistent | Should -BeTrue
        (Get-KvmNetwork -Connection $c -Name "$p-iso").Uuid | Should -Be $n.Uuid
    }

    It 'creates <Mode> networks with forward mode <Forward>' -ForEach @(
        @{ Mode = 'Nat'; Forward = 'nat'; Octet = 2 }
        @{ Mode = 'Route'; Forward = 'route'; Octet = 3 }
        @{ Mode = 'Open'; Forward = 'open'; Octet = 4 }
    ) {
        $n = New-KvmNetwork -Connection $c -Name "$p-$Forward" -Mode $Mode -Subnet "10.$o.$Octet.0/24"
        $n.Mode | Should -Be $Mode
        $n.ForwardMode | Should -Be $Forward
        $n.Subnets | Should -Be @("10.$o.$Octet.0/24")
        $n.DhcpRanges | Should -BeNullOrEmpty
        $n.Active | Should -BeFalse
        $n.Autostart | Should -BeFalse
    }

    It 'uses NAT when -Mode is omitted' {
        (New-KvmNetwork -Connection $c -Name "$p-dflt" -Subnet "10.$o.5.0/24").Mode | Should -Be 'Nat'
    }

    It 'creates a Bridge-mode network onto a host bridge, without addresses' {
        $n = New-KvmNetwork -Connection $c -Name "$p-br" -Mode Bridge -Bridge br0
        $n.Mode | Should -Be 'Bridge'
        $n.ForwardMode | Should -Be 'bridge'
        $n.Bridge | Should -Be 'br0'
        $n.Subnets | Should -BeNullOrEmpty
    }

    It 'filters by wildcard; an exact name that is missing is NetworkNotFound' {
        (Get-KvmNetwork -Connection $c -Name "$p-*").Name | Should -Be @("$p-br", "$p-dflt", "$p-iso", "$p-nat", "$p-open", "$p-route")
        Get-KvmNetwork -Connection $c -Name "$p-none*" | Should -BeNullOrEmpty
        $null = Get-KvmNetwork -Connection $c -Name "$p-none" -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotFound,*'
        $err[0].TargetObject | Should -Be "$p-none"
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'starts and stops networks from the pipeline: objects by value, names by property name' {
        $r = Get-KvmNetwork -Connection $c -Name "$p-nat" | Start-KvmNetwork -PassThru
        $r.Active | Should -BeTrue
        $r = [pscustomobject]@{ Name = "$p-nat"; Connection = $c } | Stop-KvmNetwork -PassThru
        $r.Active | Should -BeFalse
        $r = "$p-nat" | Start-KvmNetwork -Connection $c -PassThru
        $r.Active | Should -BeTrue
        Stop-KvmNetwork -Connection $c -Name "$p-nat"
        (Get-KvmNetwork -Connection $c -Name "$p-nat").Active | Should -BeFalse
    }

    It 'refuses to start an active network and to stop an inactive one (NetworkStateInvalid)' {
        $null = Start-KvmNetwork -Connection $c -Name "$p-iso" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkStateInvalid,*'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        $null = Stop-KvmNetwork -Connection $c -Name "$p-route" -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkStateInvalid,*'
    }

    It 'turns autostart on and off' {
        (Set-KvmNetwork -Connection $c -Name "$p-route" -Autostart $true -PassThru).Autostart | Should -BeTrue
        Get-KvmNetwork -Connection $c -Name "$p-route" | Set-KvmNetwork -Autostart $false
        (Get-KvmNetwork -Connection $c -Name "$p-route").Autostart | Should -BeFalse
    }

    It 'changes nothing with -WhatIf' {
        New-KvmNetwork -Connection $c -Name "$p-whatif" -Subnet "10.$o.9.0/24" -WhatIf | Should -BeNullOrEmpty
        Get-KvmNetwork -Connection $c -Name "$p-whatif*" | Should -BeNullOrEmpty
        Stop-KvmNetwork -Connection $c -Name "$p-iso" -WhatIf
        Remove-KvmNetwork -Connection $c -Name "$p-iso" -WhatIf
        (Get-KvmNetwork -Connection $c -Name "$p-iso").Active | Should -BeTrue
    }

    Context 'bad input: clear errors, nothing created' {
        It 'refuses a subnet overlapping <Other> (SubnetOverlap)' -ForEach @(
            @{ Subnet = '192.168.0.0/16'; Other = 'default' }
            @{ Subnet = '192.168.122.128/25'; Other = 'default' }
            @{ Subnet = 'ISO'; Other = 'ISO' }
        ) {
            $s = if ($Subnet -eq 'ISO') { "10.$o.1.64/26" } else { $Subnet }
            $name = if ($Other -eq 'ISO') { "$p-iso" } else { $Other }
            $null = New-KvmNetwork -Connection $c -Name "$p-bad" -Subnet $s -Start -ErrorAction SilentlyContinue -ErrorVariable err
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'SubnetOverlap,*'
            $err[0].TargetObject | Should -Be $s
            $err[0].Exception.Message | Should -BeLike "*network '$name'*"
            Get-KvmNetwork -Connection $c -Name "$p-bad*" | Should -BeNullOrEmpty
        }

        It 'refuses subnets that overlap each other' {
            $null = New-KvmNetwork -Connection $c -Name "$p-bad" -Subnet "10.$o.16.0/20", "10.$o.17.0/24" -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'SubnetOverlap,*'
            Get-KvmNetwork -Connection $c -Name "$p-bad*" | Should -BeNullOrEmpty
        }

        It 'refuses DHCP range <Range> (<Id>)' -ForEach @(
            @{ Range = 'X.10.10-X.10.20'; Id = 'DhcpRangeOutsideSubnet' }
            @{ Range = 'X.8.200-X.9.20'; Id = 'DhcpRangeOutsideSubnet' }
            @{ Range = 'X.8.50-X.8.20'; Id = 'DhcpRangeOutsideSubnet' }
            @{ Range = 'X.8.1-X.8.20'; Id = 'DhcpRangeOutsideSubnet' }
            @{ Range = 'X.8.100-X.8.255'; Id = 'DhcpRangeOutsideSubnet' }
            @{ Range = 'X.8.100'; Id = 'InvalidDhcpRange' }
            @{ Range = 'X.8.100-fd00::1'; Id = 'InvalidDhcpRange' }
        ) {
            $r = $Range -replace 'X', "10.$o"
            $null = New-KvmNetwork -Connection $c -Name "$p-bad" -Mode Isolated -Subnet "10.$o.8.0/24" -DhcpRange $r -ErrorAction SilentlyContinue -ErrorVariable err
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike "$Id,*"
            $err[0].TargetObject | Should -Be $r
            $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            Get-KvmNetwork -Connection $c -Name "$p-bad*" | Should -BeNullOrEmpty
        }

        It 'refuses the invalid subnet <Subnet> (InvalidSubnet)' -ForEach @(
            @{ Subnet = '10.77.0.0' }, @{ Subnet = '10.77.0.0/33' }, @{ Subnet = '10.77.0.9/24' }, @{ Subnet = '10.77/16' }
            @{ Subnet = 'banana/24' }, @{ Subnet = 'fd00:77::/129' }, @{ Subnet = '127.0.0.0/8' }
        ) {
            $null = New-KvmNetwork -Connection $c -Name "$p-bad" -Subnet $Subnet -ErrorAction SilentlyContinue -ErrorVariable err
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidSubnet,*'
            $err[0].TargetObject | Should -Be $Subnet
            $err[0].ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
            Get-KvmNetwork -Connection $c -Name "$p-bad*" | Should -BeNullOrEmpty
        }

        It 'refuses <Case> (<Id>)' -ForEach @(
            @{ Case = 'a duplicate name'; Id = 'NetworkExists'; Params = @{ Name = 'default'; Subnet = '10.78.0.0/24' } }
            @{ Case = 'a name with a slash'; Id = 'InvalidName'; Params = @{ Name = 'a/b'; Subnet = '10.78.0.0/24' } }
            @{ Case = 'NAT without a subnet'; Id = 'SubnetRequired'; Params = @{ Name = 'PFX-bad'; Mode = 'Nat' } }
            @{ Case = 'Bridge mode without -Bridge'; Id = 'BridgeRequired'; Params = @{ Name = 'PFX-bad'; Mode = 'Bridge' } }
            @{ Case = 'Bridge mode with a subnet'; Id = 'ConflictingParameters'; Params = @{ Name = 'PFX-bad'; Mode = 'Bridge'; Bridge = 'br0'; Subnet = '10.78.0.0/24' } }
            @{ Case = 'a bridge name used by another network'; Id = 'BridgeInUse'; Params = @{ Name = 'PFX-bad'; Subnet = '10.78.0.0/24'; Bridge = 'virbr0' } }
            @{ Case = 'a bridge name longer than 15'; Id = 'InvalidBridgeName'; Params = @{ Name = 'PFX-bad'; Subnet = '10.78.0.0/24'; Bridge = 'bridge-name-too-long' } }
        ) {
            $a = @{} + $Params
            $a.Name = $a.Name -replace 'PFX', $p
            $null = New-KvmNetwork -Connection $c @a -ErrorAction SilentlyContinue -ErrorVariable err
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike "$Id,*"
            Get-KvmNetwork -Connection $c -Name "$p-bad*" | Should -BeNullOrEmpty
            @(Get-KvmNetwork -Connection $c -Name default).Count | Should -Be 1
        }
    }

    It 'copies a network to another host from the pipeline' {
        try {
            $copy = Get-KvmNetwork -Connection $c -Name "$p-iso" | New-KvmNetwork -Connection $FixtureUri
            $copy.Connection.Uri | Should -Be $FixtureUri
            $copy.Name | Should -Be "$p-iso"
            $copy.Mode | Should -Be 'Isolated'
            $copy.Bridge | Should -Be 'ktiso0'
            $copy.Subnets | Should -Be @("10.$o.1.0/24", "fd00:$o`:1::/64")
            $copy.DhcpRanges | Should -Be @("10.$o.1.100-10.$o.1.199")
            $copy.Autostart | Should -BeTrue
            $copy.Active | Should -BeFalse
            # Bridge mode: no subnets or ranges to copy.
            $copyBr = Get-KvmNetwork -Connection $c -Name "$p-br" | New-KvmNetwork -Connection $FixtureUri
            $copyBr.Mode | Should -Be 'Bridge'
            $copyBr.Subnets | Should -BeNullOrEmpty
        }
        finally { Get-KvmNetwork -Connection $FixtureUri -Name "$p*" | Remove-KvmNetwork -Confirm:$false }
        Get-KvmNetwork -Connection $FixtureUri -Name "$p*" | Should -BeNullOrEmpty
    }

    It 'reports DHCP leases as LibvirtNotSupported on the test driver' {
        $null = Get-KvmNetworkLease -Connection $c -Network "$p-iso" -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'LibvirtNotSupported,*'
        $err[0].CategoryInfo.Category | Should -Be 'NotImplemented'
        $err[0].TargetObject | Should -Be "$p-iso"
        $err[0].Exception.Message | Should -BeLike '*DHCP leases*'
        # An inactive network has no leases and asks libvirt nothing.
        Get-KvmNetworkLease -Connection $c -Network "$p-route" -ErrorAction Stop | Should -BeNullOrEmpty
    }

    It 'refuses to remove a network a running VM uses (NetworkInUse) unless -Force' {
        # the network runs first: a VM starts only on an active network (NetworkNotActive otherwise)
        $null = Start-KvmNetwork -Connection $c -Name "$p-nat"
        $null = New-KvmVm -Connection $c -Name "$p-vm" -MemoryBytes 64MB -Network "$p-nat" -Start -ErrorAction Stop
        $null = Remove-KvmNetwork -Connection $c -Name "$p-nat" -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkInUse,*'
        $err[0].CategoryInfo.Category | Should -Be 'ResourceBusy'
        $err[0].Exception.Message | Should -BeLike "*'$p-vm'*"
        (Get-KvmNetwork -Connection $c -Name "$p-nat").Active | Should -BeTrue

        Remove-KvmNetwork -Connection $c -Name "$p-nat" -Force -Confirm:$false -WarningVariable warn -WarningAction SilentlyContinue
        "$warn" | Should -BeLike "*$p-vm*"
        Get-KvmNetwork -Connection $c -Name "$p-nat*" | Should -BeNullOrEmpty
    }

    It 'removes networks: an active one is stopped first' {
        Get-KvmNetwork -Connection $c -Name "$p-iso", "$p-open" | Remove-KvmNetwork -Confirm:$false
        Get-KvmNetwork -Connection $c -Name "$p-iso", "$p-open" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $null = Remove-KvmNetwork -Connection $c -Name "$p-iso" -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotFound,*'
    }

    It 'formats as a table and completes network names' {
        $text = Get-KvmNetwork -Connection $c -Name "$p-route" | Out-String -Width 200
        $text | Should -Match 'Name\s+Mode\s+Active\s+Autostart\s+Bridge\s+Subnets'
        $text | Should -Match "$p-route\s+Route\s+False\s+False"
        $text | Should -Match "10\.$o\.3\.0/24"
        (Complete "Remove-KvmNetwork -Connection test:///default -Name $p-r").CompletionText | Should -Be @("$p-route")
        (Complete "Get-KvmNetworkLease -Connection test:///default -Network $p-").CompletionText | Should -Contain "$p-dflt"
        (Complete "New-KvmNetwork -Name x -Mode I").CompletionText | Should -Be @('Isolated')
    }
}

Describe 'Networks on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:c = $SystemUri
        $script:p = New-TestName 'net'
        $script:net = "$p-iso"
        $script:br = 'kt' + [guid]::NewGuid().ToString('N').Substring(0, 8)
        # A private /24 that no libvirt network and no host route uses yet.
        function Test-FreeSubnet([string] $Cidr, [switch] $NetworksOnly) {
            $s = [KvmPS.Core.Services.IpSubnet]::Parse($Cidr)
            $used = @((Get-KvmNetwork -Connection $c).Subnets)
            if (-not $NetworksOnly) { $used += @(& ip -o -4 route 2>$null | ForEach-Object { ($_ -split ' ')[0] } | Where-Object { $_ -match '/' }) }
            -not ($used | Where-Object { $a, $l = $_ -split '/'; $s.Overlaps([KvmPS.Core.Services.IpSubnet]::FromAddress([ipaddress]$a, [int]$l)) })
        }
        if (-not $skip) {
            do { $script:x = Get-TestOctet 2 254 } until (Test-FreeSubnet "10.251.$x.0/24")
            $script:subnet = "10.251.$x.0/24"
            do { $script:y = Get-TestOctet 2 254 } until ($y -ne $x -and (Test-FreeSubnet "10.251.$y.0/24"))
        }

        # The guest has no OS and only needs to run: TCG works wherever libvirt's QEMU may not open /dev/kvm.
        function New-NetTestVm([string] $Name, [string] $Network) {
            New-KvmVm -Connection $c -Name $Name -Network $Network -MemoryBytes 128MB -Start -Accelerator Qemu -ErrorAction Stop
        }
    }
    AfterAll {
        if (-not $skip) {
            Remove-SystemTestObjects $p
            foreach ($n in (& virsh -c qemu:///system net-list --all --name 2>$null) | ForEach-Object Trim | Where-Object { $_ -like "$p*" }) {
                & virsh -c qemu:///system net-destroy $n *> $null
                & virsh -c qemu:///system net-undefine $n *> $null
            }
        }
    }

    It 'creates and starts an isolated network with DHCP: no forward element, dnsmasq runs, the bridge exists' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $n = New-KvmNetwork -Connection $c -Name $net -Mode Isolated -Subnet $subnet -DhcpRange "10.251.$x.100-10.251.$x.150" -Bridge $br -Start
        $n.Mode | Should -Be 'Isolated'
        $n.Bridge | Should -Be $br
        $n.Subnets | Should -Be @($subnet)
        $n.HostAddresses | Should -Be @("10.251.$x.1")
        $n.DhcpRanges | Should -Be @("10.251.$x.100-10.251.$x.150")
        $n.Active | Should -BeTrue
        $n.Autostart | Should -BeFalse

        $xml = [xml](& virsh -c qemu:///system net-dumpxml $net | Out-String)
        $xml.network.forward | Should -BeNullOrEmpty
        $xml.network.ip.address | Should -Be "10.251.$x.1"
        $xml.network.ip.netmask | Should -Be '255.255.255.0'
        $xml.network.ip.dhcp.range.start | Should -Be "10.251.$x.100"

        Test-Path "/sys/class/net/$br/bridge" | Should -BeTrue
        (& ip -o -4 addr show dev $br) -join ' ' | Should -Match "10\.251\.$x\.1/24"
        $dnsmasqPid = Get-Content "/run/libvirt/network/$net.pid" -ErrorAction Stop
        Get-Process -Id $dnsmasqPid -ErrorAction Stop | ForEach-Object ProcessName | Should -Be 'dnsmasq'
    }

    It 'lists the DHCP leases without error (none: the guest has no OS to ask for one)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $leases = @(Get-KvmNetworkLease -Connection $c -Network $net -ErrorVariable err)
        $err | Should -BeNullOrEmpty
        $leases.Count | Should -Be 0
        $leases = @(Get-KvmNetwork -Connection $c -Name $net | Get-KvmNetworkLease -MacAddress 52:54:00:00:00:01 -ErrorVariable err)
        $err | Should -BeNullOrEmpty
        $leases.Count | Should -Be 0
    }

    It 'refuses an overlapping subnet, naming the other network, and creates nothing' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmNetwork -Connection $c -Name "$p-ovl" -Mode Isolated -Subnet "10.251.$x.128/25" -Start -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'SubnetOverlap,*'
        $err[0].Exception.Message | Should -BeLike "*network '$net'*"
        & virsh -c qemu:///system net-info "$p-ovl" *> $null
        $LASTEXITCODE | Should -Not -Be 0
    }

    It 'refuses a DHCP range outside the subnet and an invalid CIDR, creating nothing' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmNetwork -Connection $c -Name "$p-bad" -Mode Isolated -Subnet "10.251.$y.0/24" -DhcpRange "10.251.$x.10-10.251.$x.20" -Start -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DhcpRangeOutsideSubnet,*'
        $err[0].TargetObject | Should -Be "10.251.$x.10-10.251.$x.20"
        $null = New-KvmNetwork -Connection $c -Name "$p-bad" -Mode Isolated -Subnet '10.251.1.0/40' -Start -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidSubnet,*'
        & virsh -c qemu:///system net-info "$p-bad" *> $null
        $LASTEXITCODE | Should -Not -Be 0
    }

    It 'removes the definition again when the network cannot start (NetworkCreateFailed)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # The subnet of a host interface: libvirt defines the network but refuses to start it.
        $hostSubnet = & ip -o -4 route | Where-Object { $_ -match '^\d+\.\d+\.\d+\.\d+/(1[6-9]|2\d|30) dev \S+ proto kernel' } |
            ForEach-Object { ($_ -split ' ')[0] } | Where-Object { Test-FreeSubnet $_ -NetworksOnly } | Select-Object -First 1
        if (-not $hostSubnet) { Set-ItResult -Skipped -Because 'no host interface with an IPv4 subnet of its own'; return }
        $null = New-KvmNetwork -Connection $c -Name "$p-fail" -Mode Isolated -Subnet $hostSubnet -Start -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkCreateFailed,*'
        $err[0].Exception.Message | Should -BeLike '*nothing was created*'
        & virsh -c qemu:///system net-info "$p-fail" *> $null
        $LASTEXITCODE | Should -Not -Be 0
    }

    It 'refuses a Bridge-mode network onto a missing host bridge (BridgeNotFound)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = New-KvmNetwork -Connection $c -Name "$p-brm" -Mode Bridge -Bridge 'ktnone0' -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'BridgeNotFound,*'
        $err[0].TargetObject | Should -Be 'ktnone0'
        $null = New-KvmNetwork -Connection $c -Name "$p-lo" -Mode Isolated -Bridge 'lo' -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'BridgeInUse,*'
        & virsh -c qemu:///system net-info "$p-brm" *> $null
        $LASTEXITCODE | Should -Not -Be 0
    }

    It 'refuses to remove the network while a running VM uses it; removes it once the VM is gone' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = New-NetTestVm "$p-vm" $net
        $vm.State | Should -Be 'Running'
        $vm.NetworkAdapters[0].Source | Should -Be $net

        $null = Remove-KvmNetwork -Connection $c -Name $net -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NetworkInUse,*'
        $err[0].TargetObject | Should -Be $net
        $err[0].Exception.Message | Should -BeLike "*'$p-vm'*"
        $still = Get-KvmNetwork -Connection $c -Name $net
        $still.Active | Should -BeTrue
        Test-Path "/sys/class/net/$br" | Should -BeTrue

        $vm | Remove-KvmVm -Force -Confirm:$false
        Remove-KvmNetwork -Connection $c -Name $net -Confirm:$false
        Get-KvmNetwork -Connection $c -Name "$net*" | Should -BeNullOrEmpty
        Test-Path "/sys/class/net/$br" | Should -BeFalse
    }

    It 'runs the lifecycle: define, start, autostart, stop, remove' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $n = New-KvmNetwork -Connection $c -Name "$p-lc" -Mode Isolated -Subnet $subnet -Bridge $br
        $n.Active | Should -BeFalse
        Test-Path "/sys/class/net/$br" | Should -BeFalse
        ($n | Start-KvmNetwork -PassThru).Active | Should -BeTrue
        Test-Path "/sys/class/net/$br" | Should -BeTrue
        ($n | Set-KvmNetwork -Autostart $true -PassThru).Autostart | Should -BeTrue
        (& virsh -c qemu:///system net-info "$p-lc" | Out-String) | Should -Match 'Autostart:\s+yes'
        ($n | Stop-KvmNetwork -PassThru).Active | Should -BeFalse
        Test-Path "/sys/class/net/$br" | Should -BeFalse
        $n | Remove-KvmNetwork -Confirm:$false
        & virsh -c qemu:///system net-info "$p-lc" *> $null
        $LASTEXITCODE | Should -Not -Be 0
    }
}
