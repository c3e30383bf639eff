# Issue 13, point 1: a piped object is acted on as exactly that object (never looked up again by its name as a
# pattern); a typed name keeps wildcards but an exact name wins; names from the pipeline are literal; completion
# inserts escaped, quoted names. Every pipeline runs on the test driver and on qemu:///system.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')

    # The names of the issue: two pairs where one name is a wildcard pattern that matches the other.
    $script:VmSuffixes = 'web[1]', 'web1', 'db*', 'db1', 'db2'

    function New-IdentityVm([string] $Uri, [string] $Name) {
        if ($Uri -eq $SystemUri) { $null = New-SystemTestVm -Name $Name }
        else { $null = New-KvmVm -Connection $Uri -Name $Name -MemoryBytes 64MB -NoNetwork -ErrorAction Stop }
    }

    # Which of this test's VMs exist: virsh on qemu:///system; on the in-process test driver an unfiltered listing.
    function Get-RemainingVm([string] $Uri, [string] $Prefix) {
        $all = if ($Uri -eq $SystemUri) { & virsh -c $Uri list --all --name | ForEach-Object Trim }
        else { (Get-KvmVm -Connection $Uri).Name }
        @($all | Where-Object { $_.StartsWith($Prefix, [StringComparison]::Ordinal) } | ForEach-Object { $_.Substring($Prefix.Length) } | Sort-Object)
    }

    function Remove-IdentityVms([string] $Uri, [string] $Prefix) {
        if ($Uri -eq $SystemUri) { Remove-SystemTestObjects $Prefix; return }
        foreach ($vm in Get-KvmVm -Connection $Uri | Where-Object { $_.Name.StartsWith($Prefix, [StringComparison]::Ordinal) }) {
            $vm | Remove-KvmVm -Force -Confirm:$false -ErrorAction SilentlyContinue
        }
    }

    function Test-Skip([string] $Uri) { $Uri -eq $SystemUri -and -not (Test-SystemLibvirt) }

    # Expected names in the order Get-Remaining* sorts them.
    function Sorted { @($args | ForEach-Object { $_ } | Sort-Object) }
}

$cases = @(
    @{ Uri = 'test:///default'; Tag = 'TestDriver' }
    @{ Uri = 'qemu:///system'; Tag = 'System' }
)

foreach ($case in $cases) {
Describe 'VM identity in the pipeline on <Uri>' -Tag $case.Tag -ForEach @($case) {
    BeforeEach {
        $script:skip = Test-Skip $Uri
        $script:p = (New-TestName 'id') + '-'
        if (-not $skip) { foreach ($s in $VmSuffixes) { New-IdentityVm $Uri "$p$s" } }
        $script:all = @($VmSuffixes | Sort-Object)
    }
    AfterEach { if (-not $skip) { Remove-IdentityVms $Uri $p } }

    It 'removes only web[1] when exactly that VM is piped' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Get-KvmVm -Connection $Uri | Where-Object Name -eq "${p}web[1]" | Remove-KvmVm -Confirm:$false
        Get-RemainingVm $Uri $p | Should -Be (Sorted 'db*', 'db1', 'db2', 'web1')
    }

    It 'removes only db* when exactly that VM is piped' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Get-KvmVm -Connection $Uri | Where-Object Name -eq "${p}db*" | Remove-KvmVm -Confirm:$false
        Get-RemainingVm $Uri $p | Should -Be (Sorted 'db1', 'db2', 'web1', 'web[1]')
    }

    It 'removes every piped VM, web[1] included, whatever order they come in' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $piped = Get-KvmVm -Connection $Uri "$p*"
        $piped.Count | Should -Be 5
        $piped | Remove-KvmVm -Confirm:$false
        Get-RemainingVm $Uri $p | Should -BeNullOrEmpty
    }

    It 'starts and stops exactly the piped VM' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Get-KvmVm -Connection $Uri | Where-Object Name -eq "${p}web[1]" | Start-KvmVm
        Get-KvmVm -Connection $Uri | Where-Object Name -eq "${p}db*" | Start-KvmVm
        $running = @((Get-KvmVm -Connection $Uri -State Running).Name | Where-Object { "$_".StartsWith($p) } | Sort-Object)
        $running | Should -Be @("${p}db*", "${p}web[1]")
        Get-KvmVm -Connection $Uri | Where-Object Name -eq "${p}web[1]" | Stop-KvmVm -TurnOff
        @((Get-KvmVm -Connection $Uri -State Running).Name | Where-Object { "$_".StartsWith($p) }) | Should -Be @("${p}db*")
        Get-KvmVm -Connection $Uri -LiteralName "${p}db*" | Stop-KvmVm -TurnOff
        @((Get-KvmVm -Connection $Uri -State Running).Name | Where-Object { "$_".StartsWith($p) }) | Should -BeNullOrEmpty
    }

    It 'treats names that arrive by property name (CSV rows) as literal' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        [pscustomobject]@{ Name = "${p}db*"; Connection = $Uri } | Remove-KvmVm -Confirm:$false
        Get-RemainingVm $Uri $p | Should -Be (Sorted 'db1', 'db2', 'web1', 'web[1]')
        # Now no VM is called db*: the row names nothing, and must not fall back to the pattern.
        [pscustomobject]@{ Name = "${p}db*" } | Remove-KvmVm -Connection $Uri -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err.FullyQualifiedErrorId | Should -Be 'VmNotFound,KvmPS.Commands.RemoveKvmVmCommand'
        $err.TargetObject | Should -Be "${p}db*"
        Get-RemainingVm $Uri $p | Should -Be (Sorted 'db1', 'db2', 'web1', 'web[1]')
        Select-Object -InputObject ([pscustomobject]@{ Name = "${p}web[1]" }) Name | Remove-KvmVm -Connection $Uri -Confirm:$false
        Get-RemainingVm $Uri $p | Should -Be (Sorted 'db1', 'db2', 'web1')
    }

    It 'lets an exact typed name win over the pattern, and keeps the pattern when nothing has that name' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        (Get-KvmVm -Connection $Uri -Name "${p}web[1]").Name | Should -Be @("${p}web[1]")
        (Get-KvmVm -Connection $Uri -Name "${p}db*").Name | Should -Be @("${p}db*")
        @((Get-KvmVm -Connection $Uri -Name "${p}db?").Name | Sort-Object) | Should -Be @("${p}db*", "${p}db1", "${p}db2")
        Remove-KvmVm -Connection $Uri -Name "${p}web[1]" -Confirm:$false
        Get-RemainingVm $Uri $p | Should -Be (Sorted 'db*', 'db1', 'db2', 'web1')
        # web[1] is gone: the typed name is a pattern again, as in Hyper-V, and matches web1.
        (Get-KvmVm -Connection $Uri -Name "${p}web[1]").Name | Should -Be @("${p}web1")
    }

    It 'offers -LiteralName: never a pattern, a missing name is VmNotFound' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Remove-KvmVm -Connection $Uri -LiteralName "${p}db*" -Confirm:$false
        Get-RemainingVm $Uri $p | Should -Be (Sorted 'db1', 'db2', 'web1', 'web[1]')
        Remove-KvmVm -Connection $Uri -LiteralName "${p}db*" -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err.FullyQualifiedErrorId | Should -Be 'VmNotFound,KvmPS.Commands.RemoveKvmVmCommand'
        Get-KvmVm -Connection $Uri -LiteralName "${p}db?" -ErrorVariable err2 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err2.FullyQualifiedErrorId | Should -Be 'VmNotFound,KvmPS.Commands.GetKvmVmCommand'
        Get-RemainingVm $Uri $p | Should -Be (Sorted 'db1', 'db2', 'web1', 'web[1]')
    }

    It 'acts on a piped VM by its UUID: a VM removed meanwhile is VmNotFound, and its namesake is left alone' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $stale = Get-KvmVm -Connection $Uri -LiteralName "${p}web1"
        Remove-KvmVm -Connection $Uri -LiteralName "${p}web1" -Confirm:$false
        New-IdentityVm $Uri "${p}web1"
        $fresh = Get-KvmVm -Connection $Uri -LiteralName "${p}web1"
        $fresh.Uuid | Should -Not -Be $stale.Uuid
        $stale | Remove-KvmVm -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err.FullyQualifiedErrorId | Should -Be 'VmNotFound,KvmPS.Commands.RemoveKvmVmCommand'
        (Get-KvmVm -Connection $Uri -LiteralName "${p}web1").Uuid | Should -Be $fresh.Uuid
        Get-RemainingVm $Uri $p | Should -Be $all
    }

    It 'acts on a piped VM by its UUID after it was renamed' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = Get-KvmVm -Connection $Uri -LiteralName "${p}db1"
        Rename-KvmVm -Connection $Uri -LiteralName "${p}db1" -NewName "${p}db1-renamed" -Confirm:$false
        New-IdentityVm $Uri "${p}db1"
        $vm | Remove-KvmVm -Confirm:$false
        Get-RemainingVm $Uri $p | Should -Be $all -Because 'the renamed VM went; the new db1 stays'
        (Get-KvmVm -Connection $Uri -LiteralName "${p}db1").Uuid | Should -Not -Be $vm.Uuid
    }

    It 'completes VM names wildcard-escaped and quoted, and the completion names exactly that VM' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Connect-KvmHost -Uri $Uri -NotDefault
        $null = Get-KvmVm -Connection $Uri
        $web = (Complete "Remove-KvmVm -Connection $Uri -Name ${p}we").CompletionText
        $web | Should -Be @("${p}web1", "'${p}web``[1``]'")
        $db = (Complete "Stop-KvmVm -Connection $Uri -Name ${p}db").CompletionText
        $db | Should -Be @("'${p}db``*'", "${p}db1", "${p}db2")
        # -LiteralName takes no wildcards: quoted, not escaped.
        (Complete "Remove-KvmVm -Connection $Uri -LiteralName ${p}web").CompletionText | Should -Be @("${p}web1", "'${p}web[1]'")
        # What completion inserts names exactly one VM, also when a pattern of that text would match more.
        (Invoke-Expression "Get-KvmVm -Connection '$Uri' -Name $($db[0])").Name | Should -Be @("${p}db*")
        Remove-KvmVm -Connection $Uri -LiteralName "${p}db*" -Confirm:$false
        (Invoke-Expression "Get-KvmVm -Connection '$Uri' -Name $($db[0]) -ErrorAction SilentlyContinue").Name | Should -BeNullOrEmpty
        (Invoke-Expression "Get-KvmVm -Connection '$Uri' -Name $($web[1])").Name | Should -Be @("${p}web[1]")
    }

    It 'doubles single quotes in completed names' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        New-IdentityVm $Uri "${p}o'neil"
        $null = Connect-KvmHost -Uri $Uri -NotDefault
        $null = Get-KvmVm -Connection $Uri
        $text = (Complete "Get-KvmVm -Connection $Uri -Name ${p}o").CompletionText
        $text | Should -Be @("'${p}o''neil'")
        (Invoke-Expression "Get-KvmVm -Connection '$Uri' -Name $text").Name | Should -Be @("${p}o'neil")
    }
}

Describe 'Snapshot identity on <Uri>' -Tag $case.Tag -ForEach @($case) {
    BeforeAll {
        $script:skip = Test-Skip $Uri
        $script:p = (New-TestName 'ids') + '-'
        $script:vm = "${p}vm"
        if (-not $skip) {
            if ($Uri -eq $SystemUri) { $null = New-KvmVm -Connection $Uri -Name $vm -MemoryBytes 64MB -DiskSizeBytes 16MB -NoNetwork -Accelerator Qemu }
            else { $null = New-KvmVm -Connection $Uri -Name $vm -MemoryBytes 64MB -NoNetwork }
        }
        function Get-SnapshotNames { @((Get-KvmSnapshot -Connection $Uri -VMName $vm).Name | Sort-Object) }
    }
    AfterAll { if (-not $skip) { Remove-IdentityVms $Uri $p } }
    BeforeEach {
        if (-not $skip) {
            Get-KvmSnapshot -Connection $Uri -VMName $vm | Remove-KvmSnapshot -Confirm:$false
            foreach ($s in 'web[1]', 'web1', 'db*', 'db1') { $null = Checkpoint-KvmVm -Connection $Uri -Name $vm -SnapshotName $s }
        }
    }

    It 'removes only the piped snapshot' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Get-KvmSnapshot -Connection $Uri -VMName $vm | Where-Object Name -eq 'web[1]' | Remove-KvmSnapshot -Confirm:$false
        Get-SnapshotNames | Should -Be (Sorted 'db*', 'db1', 'web1')
        Get-KvmSnapshot -Connection $Uri -VMName $vm | Where-Object Name -eq 'db*' | Remove-KvmSnapshot -Confirm:$false
        Get-SnapshotNames | Should -Be (Sorted 'db1', 'web1')
    }

    It 'lets an exact typed snapshot name win over the pattern' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        (Get-KvmSnapshot -Connection $Uri -VMName $vm -Name 'web[1]').Name | Should -Be @('web[1]')
        Remove-KvmSnapshot -Connection $Uri -VMName $vm -Name 'db*' -Confirm:$false
        Get-SnapshotNames | Should -Be (Sorted 'db1', 'web1', 'web[1]')
    }

    It 'finds the VM of a piped VM by UUID and of a VMName from a CSV row literally' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        (Get-KvmVm -Connection $Uri -LiteralName $vm | Get-KvmSnapshot -Name 'db1').Name | Should -Be 'db1'
        ([pscustomobject]@{ VMName = $vm.Substring(0, $vm.Length - 1) + '?' } | Get-KvmSnapshot -Connection $Uri -ErrorVariable err -ErrorAction SilentlyContinue) | Should -BeNullOrEmpty
        $err.FullyQualifiedErrorId | Should -Be 'VmNotFound,KvmPS.Commands.GetKvmSnapshotCommand'
    }

    It 'completes snapshot names escaped and quoted' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Connect-KvmHost -Uri $Uri -NotDefault
        $null = Get-KvmSnapshot -Connection $Uri -VMName $vm
        (Complete "Remove-KvmSnapshot -Connection $Uri -VMName $vm -Name w").CompletionText | Should -Be @('web1', "'web``[1``]'")
    }
}

Describe 'Network identity on <Uri>' -Tag $case.Tag -ForEach @($case) {
    BeforeEach {
        $script:skip = Test-Skip $Uri
        $script:p = (New-TestName 'idn') + '-'
        if (-not $skip) {
            # Isolated, no addresses: defining and starting them touches no route or firewall rule.
            foreach ($s in 'lab[1]', 'lab1') { $null = New-KvmNetwork -Connection $Uri -Name "$p$s" -Mode Isolated -ErrorAction Stop }
        }
        function Get-RemainingNetwork {
            $all = if ($Uri -eq $SystemUri) { & virsh -c $Uri net-list --all --name | ForEach-Object Trim } else { (Get-KvmNetwork -Connection $Uri).Name }
            @($all | Where-Object { $_.StartsWith($p, [StringComparison]::Ordinal) } | ForEach-Object { $_.Substring($p.Length) } | Sort-Object)
        }
    }
    AfterEach {
        if (-not $skip) {
            Get-KvmNetwork -Connection $Uri | Where-Object { $_.Name.StartsWith($p, [StringComparison]::Ordinal) } | Remove-KvmNetwork -Force -Confirm:$false
        }
    }

    It 'starts, stops and removes only the piped network' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Get-KvmNetwork -Connection $Uri | Where-Object Name -eq "${p}lab[1]" | Start-KvmNetwork
        @((Get-KvmNetwork -Connection $Uri | Where-Object { $_.Active -and $_.Name.StartsWith($p) }).Name) | Should -Be @("${p}lab[1]")
        Get-KvmNetwork -Connection $Uri | Where-Object Name -eq "${p}lab[1]" | Stop-KvmNetwork -Confirm:$false
        @((Get-KvmNetwork -Connection $Uri | Where-Object { $_.Active -and $_.Name.StartsWith($p) }).Name) | Should -BeNullOrEmpty
        Get-KvmNetwork -Connection $Uri | Where-Object Name -eq "${p}lab[1]" | Remove-KvmNetwork -Confirm:$false
        Get-RemainingNetwork | Should -Be (Sorted 'lab1')
    }

    It 'lets an exact typed name win, treats CSV names literally, and acts on a piped network by UUID' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        (Get-KvmNetwork -Connection $Uri -Name "${p}lab[1]").Name | Should -Be @("${p}lab[1]")
        $stale = Get-KvmNetwork -Connection $Uri -Name "${p}lab1"
        [pscustomobject]@{ Name = "${p}lab?"; Connection = $Uri } | Remove-KvmNetwork -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err.FullyQualifiedErrorId | Should -Be 'NetworkNotFound,KvmPS.Commands.RemoveKvmNetworkCommand'
        Get-RemainingNetwork | Should -Be (Sorted 'lab1', 'lab[1]')
        Remove-KvmNetwork -Connection $Uri -Name "${p}lab1" -Confirm:$false
        $null = New-KvmNetwork -Connection $Uri -Name "${p}lab1" -Mode Isolated
        $stale | Remove-KvmNetwork -Confirm:$false -ErrorVariable err2 -ErrorAction SilentlyContinue
        $err2.FullyQualifiedErrorId | Should -Be 'NetworkNotFound,KvmPS.Commands.RemoveKvmNetworkCommand'
        Get-RemainingNetwork | Should -Be (Sorted 'lab1', 'lab[1]') -Because 'the new lab1 has another UUID'
    }

    It 'completes network names escaped and quoted' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Connect-KvmHost -Uri $Uri -NotDefault
        $null = Get-KvmNetwork -Connection $Uri
        (Complete "Remove-KvmNetwork -Connection $Uri -Name ${p}la").CompletionText | Should -Be @("${p}lab1", "'${p}lab``[1``]'")
    }
}

Describe 'Pool and volume identity on <Uri>' -Tag $case.Tag -ForEach @($case) {
    BeforeEach {
        $script:skip = Test-Skip $Uri
        $script:p = (New-TestName 'idp') + '-'
        $script:tmp = if ($Uri -eq $SystemUri) { Join-Path ([IO.Path]::GetTempPath()) $p.TrimEnd('-') } else { "/$($p.TrimEnd('-'))" }
        if (-not $skip) {
            $null = New-KvmStoragePool -Connection $Uri -Name "${p}pool[1]" -Type Dir -Path "$tmp/a" -Start -ErrorAction Stop
            $null = New-KvmStoragePool -Connection $Uri -Name "${p}pool1" -Type Dir -Path "$tmp/b" -Start -ErrorAction Stop
            foreach ($s in 'v[1].raw', 'v1.raw', 'v*.raw', 'vx.raw') { $null = New-KvmVolume -Connection $Uri -Pool "${p}pool1" -Name "$p$s" -SizeBytes 1MB -Format raw -ErrorAction Stop }
        }
        function Get-RemainingVolume {
            $all = if ($Uri -eq $SystemUri) {
                & virsh -c $Uri pool-refresh "${p}pool1" *> $null
                & virsh -c $Uri vol-list "${p}pool1" | Select-Object -Skip 2 | ForEach-Object { ($_.Trim() -split '\s+')[0] }
            } else { (Get-KvmVolume -Connection $Uri -Pool "${p}pool1").Name }
            @($all | Where-Object { $_ -and $_.StartsWith($p, [StringComparison]::Ordinal) } | ForEach-Object { $_.Substring($p.Length) } | Sort-Object)
        }
        function Get-RemainingPool {
            $all = if ($Uri -eq $SystemUri) { & virsh -c $Uri pool-list --all --name | ForEach-Object Trim } else { (Get-KvmStoragePool -Connection $Uri).Name }
            @($all | Where-Object { $_.StartsWith($p, [StringComparison]::Ordinal) } | ForEach-Object { $_.Substring($p.Length) } | Sort-Object)
        }
    }
    AfterEach {
        if (-not $skip) {
            Get-KvmStoragePool -Connection $Uri | Where-Object { $_.Name.StartsWith($p, [StringComparison]::Ordinal) } |
                Remove-KvmStoragePool -DeleteContents -Force -Confirm:$false -ErrorAction SilentlyContinue
            if ($Uri -eq $SystemUri) { Remove-Item $tmp -Recurse -Force -ErrorAction SilentlyContinue }
        }
    }

    It 'removes only the piped volume, and an exact typed volume name wins over the pattern' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Get-KvmVolume -Connection $Uri -Pool "${p}pool1" | Where-Object Name -eq "${p}v[1].raw" | Remove-KvmVolume -Confirm:$false
        Get-RemainingVolume | Should -Be (Sorted 'v*.raw', 'v1.raw', 'vx.raw')
        (Get-KvmVolume -Connection $Uri -Pool "${p}pool1" -Name "${p}v*.raw").Name | Should -Be @("${p}v*.raw")
        Remove-KvmVolume -Connection $Uri -Pool "${p}pool1" -Name "${p}v*.raw" -Confirm:$false
        Get-RemainingVolume | Should -Be (Sorted 'v1.raw', 'vx.raw')
    }

    It 'takes volume names from CSV rows literally' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        [pscustomobject]@{ Pool = "${p}pool1"; Name = "${p}v?.raw"; Connection = $Uri } | Remove-KvmVolume -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err.FullyQualifiedErrorId | Should -Be 'VolumeNotFound,KvmPS.Commands.RemoveKvmVolumeCommand'
        Get-RemainingVolume | Should -Be (Sorted 'v*.raw', 'v1.raw', 'vx.raw', 'v[1].raw')
        [pscustomobject]@{ Pool = "${p}pool1"; Name = "${p}v*.raw"; Connection = $Uri } | Remove-KvmVolume -Confirm:$false
        Get-RemainingVolume | Should -Be (Sorted 'v1.raw', 'vx.raw', 'v[1].raw')
    }

    It 'acts on a piped volume in its own pool: a volume of the same name in another pool is not touched' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $stale = Get-KvmVolume -Connection $Uri -Pool "${p}pool1" -Name "${p}vx.raw"
        $stale.Key | Should -Not -BeNullOrEmpty
        # A volume of the same name in the other pool has another key: neither object may reach the other volume.
        $other = New-KvmVolume -Connection $Uri -Pool "${p}pool[1]" -Name "${p}vx.raw" -SizeBytes 1MB -Format raw
        $other.Key | Should -Not -Be $stale.Key
        $other | Remove-KvmVolume -Confirm:$false
        Get-RemainingVolume | Should -Be (Sorted 'v*.raw', 'v1.raw', 'vx.raw', 'v[1].raw')
        $stale | Remove-KvmVolume -Confirm:$false
        Get-RemainingVolume | Should -Be (Sorted 'v*.raw', 'v1.raw', 'v[1].raw')
    }

    It 'removes only the piped pool' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Get-KvmStoragePool -Connection $Uri | Where-Object Name -eq "${p}pool[1]" | Remove-KvmStoragePool -Force -Confirm:$false
        Get-RemainingPool | Should -Be (Sorted 'pool1')
        (Get-KvmStoragePool -Connection $Uri -Name "${p}pool[1]").Name | Should -Be @("${p}pool1") -Because 'with no pool[1] left the typed name is a pattern'
    }

    It 'completes pool and volume names escaped and quoted' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Connect-KvmHost -Uri $Uri -NotDefault
        $null = Get-KvmStoragePool -Connection $Uri
        $null = Get-KvmVolume -Connection $Uri -Pool "${p}pool1"
        (Complete "Remove-KvmStoragePool -Connection $Uri -Name ${p}po").CompletionText | Should -Be @("${p}pool1", "'${p}pool``[1``]'")
        (Complete "Get-KvmVolume -Connection $Uri -Pool ${p}pool1 -Name ${p}v").CompletionText |
            Should -Be @("'${p}v``*.raw'", "${p}v1.raw", "${p}vx.raw", "'${p}v``[1``].raw'")
    }
}
}
