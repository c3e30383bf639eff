# Issue 15: placement (Find-KvmHost, New-KvmVm -Placement), the consolidation figures of Get-KvmHost, and reads that ask
# many hosts at once. The hosts are test-driver node files written here, each with a known size and load, so every
# rank, score and exclusion reason is known in advance; a private libvirtd (frozen with SIGSTOP) is the slow host.
BeforeAll {
    . $PSScriptRoot/common.ps1

    $script:HostDir = Join-Path ([IO.Path]::GetTempPath()) "kvmps-t-place-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $null = New-Item -ItemType Directory -Path $HostDir

    # A test-driver host: CPUs, memory, VMs (vCPUs, GiB, running?), the space used in its 'default' pool (100 GiB),
    # its networks. Returns the URI; the VMs are named <host>-<n>.
    function New-PlacementHost([string] $Name, [int] $Cpus, [int] $MemGiB, [object[]] $Vms = @(), [int] $PoolUsedGiB = 0, [string[]] $Networks = @('lan')) {
        $i = 0
        $domains = foreach ($v in $Vms) {
            $i++
            $state = if ($v.Running) { '' } else { '<test:runstate>5</test:runstate>' }
            "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>$Name-$i</name><memory unit='GiB'>$($v.MemGiB)</memory><vcpu>$($v.Cpu)</vcpu><os><type>hvm</type></os>$state</domain>"
        }
        $n = 0
        $nets = foreach ($net in $Networks) {
            $n++
            "<network><name>$net</name><bridge name='vbr$n'/><ip address='10.$n.0.1' netmask='255.255.255.0'/></network>"
        }
        $volume = if ($PoolUsedGiB) {
            "<volume><name>used.img</name><capacity unit='GiB'>$PoolUsedGiB</capacity><allocation unit='GiB'>$PoolUsedGiB</allocation><target><path>/var/lib/libvirt/images/used.img</path></target></volume>"
        }
        $threads = [Math]::Max(1, $Cpus / 2)
        $xml = @"
<?xml version="1.0"?>
<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>$($Cpus / $threads)</cores><threads>$threads</threads><active>$Cpus</active></cpu>
  <memory>$($MemGiB * 1024 * 1024)</memory>
  $($domains -join "`n  ")
  $($nets -join "`n  ")
  <pool type='dir'><name>default</name><target><path>/var/lib/libvirt/images</path></target>$volume</pool>
</node>
"@
        $path = Join-Path $HostDir "$Name.xml"
        Set-Content -Path $path -Value $xml
        "test://$path"
    }

    # The request most tests place: 4 vCPUs, 8 GiB, a 10 GiB disk in 'default', on network 'lan'.
    # Expected (commitments = every defined VM; score = the tightest of memory left, vCPU ratio left below 4, disk left):
    #   roomy   16 CPU  64 GiB, one 4-vCPU 8 GiB VM        -> 48 GiB left: 0.75 (cpu 0.875, disk 0.9)     rank 1
    #   medium  16 CPU  64 GiB, one 8-vCPU 24 GiB VM       -> 32 GiB left: 0.5                            rank 2
    #   tight    8 CPU  32 GiB, 16 GiB shut off + 4 GiB running, 2+2 vCPU -> 4 GiB left: 0.125           rank 3
    #   full     8 CPU  16 GiB, one 12 GiB VM              -> memory
    #   narrow   2 CPU  64 GiB                             -> cpu (wider than the host)
    #   nolan   16 CPU  64 GiB, network 'other' only       -> network missing
    #   nospace 16 CPU  64 GiB, 95 GiB of the pool used    -> storage
    $script:H = [ordered]@{
        full    = New-PlacementHost full 8 16 @(@{ Cpu = 2; MemGiB = 12; Running = $true })
        tight   = New-PlacementHost tight 8 32 @(@{ Cpu = 2; MemGiB = 16; Running = $false }, @{ Cpu = 2; MemGiB = 4; Running = $true })
        roomy   = New-PlacementHost roomy 16 64 @(@{ Cpu = 4; MemGiB = 8; Running = $true })
        narrow  = New-PlacementHost narrow 2 64
        medium  = New-PlacementHost medium 16 64 @(@{ Cpu = 8; MemGiB = 24; Running = $true })
        nolan   = New-PlacementHost nolan 16 64 -Networks other
        nospace = New-PlacementHost nospace 16 64 -PoolUsedGiB 95
    }
    & chmod -R a+rX $HostDir
    $script:All = @($H.Values)
    $script:Dead = "qemu+unix:///system?socket=$HostDir/nobody-listens.sock"
    function Get-HostName([string] $Uri) { [IO.Path]::GetFileNameWithoutExtension(($Uri -replace '^test://', '')) }
    $script:Want = @{ CpuCount = 4; MemoryBytes = 8GB; DiskSizeBytes = 10GB; Network = 'lan' }

    $script:CanRunDaemon = [bool](Get-Command libvirtd -ErrorAction SilentlyContinue) -and [bool](Get-Command setpriv -ErrorAction SilentlyContinue) -and ((id -u) -eq '0')
    $script:DaemonDir = Join-Path ([IO.Path]::GetTempPath()) "kvmps-t-pl-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $script:DaemonUri = "test+unix:///default?socket=$DaemonDir/run/libvirt-sock"
    if ($CanRunDaemon) { $null = Start-PrivateLibvirtd $DaemonDir }
}

AfterAll {
    Get-KvmConnection -All -ErrorAction SilentlyContinue | Where-Object { $_.RequestedUri -like "*$HostDir*" -or $_.RequestedUri -like "*$DaemonDir*" } |
        Disconnect-KvmHost -ErrorAction SilentlyContinue
    if ($CanRunDaemon) { Stop-PrivateLibvirtd $DaemonDir -Kill }
    Remove-Item $HostDir, $DaemonDir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Find-KvmHost' -Tag TestDriver {
    It 'ranks the hosts that fit by headroom, and gives each other host its reason (-IncludeExcluded)' {
        $r = Find-KvmHost -Connection $All @Want -IncludeExcluded
        $r | ForEach-Object { $_ | Should -BeOfType KvmPS.Core.KvmHostPlacement }
        @($r | ForEach-Object { Get-HostName $_.Uri }) | Should -Be @('roomy', 'medium', 'tight', 'full', 'narrow', 'nolan', 'nospace')
        @($r.PlacementRank) | Should -Be @(1, 2, 3, 0, 0, 0, 0)
        @($r.Fits) | Should -Be @($true, $true, $true, $false, $false, $false, $false)
        @($r.Score) | Should -Be @(0.75, 0.5, 0.125, 0, 0, 0, 0)
        $r[0].FreeMemoryAfterBytes | Should -Be (48GB)
        $r[0].CpuRatioAfter | Should -Be 0.5
        $r[0].FreeDiskBytes | Should -Be (100GB)
        $r[0].FreeDiskAfterBytes | Should -Be (90GB)
        $r[0].StoragePool | Should -Be 'default'
        $r[0].Connection.RequestedUri | Should -Be $H.roomy
        $r[2].CommittedMemoryBytes | Should -Be (20GB) -Because 'a shut-off VM keeps its room under the default -Commitment Defined'
        $r[2].CommittedCpuCount | Should -Be 4
        $r[0..2] | ForEach-Object { $_.ExcludedBecause | Should -BeNullOrEmpty }
        $r[3].ExcludedBecause | Should -Be @('memory: needs 8 GiB, 4 GiB left of 16 GiB (12 GiB committed to defined VMs)')
        $r[4].ExcludedBecause | Should -Be @('cpu: needs 4 vCPUs, the host has 2 CPUs')
        $r[5].ExcludedBecause | Should -Be @("network: no network 'lan'")
        $r[6].ExcludedBecause | Should -Be @("storage: pool 'default' has 5 GiB free, the disk needs 10 GiB")
    }

    It 'returns only the hosts that fit by default, and says why the others were left out (-Verbose)' {
        $verbose = Find-KvmHost -Connection $All @Want -Verbose 4>&1
        $r = @($verbose | Where-Object { $_ -is [KvmPS.Core.KvmHostPlacement] })
        @($r | ForEach-Object { Get-HostName $_.Uri }) | Should -Be @('roomy', 'medium', 'tight')
        $lines = @($verbose | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message)
        $lines | Should -Contain "'$($H.narrow)' cannot take it: cpu: needs 4 vCPUs, the host has 2 CPUs"
        $lines | Should -Contain "'$($H.nolan)' cannot take it: network: no network 'lan'"
    }

    It 'counts only running VMs with -Commitment Active, which reorders the hosts' {
        $r = Find-KvmHost -Connection $All @Want -Commitment Active
        @($r | ForEach-Object { Get-HostName $_.Uri }) | Should -Be @('roomy', 'tight', 'medium')
        @($r.Score) | Should -Be @(0.75, 0.625, 0.5)
        ($r | Where-Object { (Get-HostName $_.Uri) -eq 'tight' }).CommittedMemoryBytes | Should -Be (4GB)
    }

    It 'excludes a host whose network is not active, and a stopped pool' {
        $down = New-PlacementHost landown 16 64
        & chmod a+r ($down -replace '^test://', '')
        Stop-KvmNetwork -Connection $down -Name lan -Confirm:$false
        $r = Find-KvmHost -Connection $down @Want -IncludeExcluded
        $r.Fits | Should -BeFalse
        $r.ExcludedBecause | Should -Be @("network: 'lan' is not active")
        Stop-KvmStoragePool -Connection $down -Name default -Confirm:$false
        (Find-KvmHost -Connection $down @Want -IncludeExcluded).ExcludedBecause | Should -Be @("storage: pool 'default' is not running", "network: 'lan' is not active")
    }

    It 'takes the hosts from Get-KvmHost through the pipeline, each once, and ranks them together' {
        $r = Get-KvmHost -Connection $H.tight, $H.medium, $H.roomy, $H.tight -SampleIntervalSec 0 | Find-KvmHost @Want
        @($r | ForEach-Object { Get-HostName $_.Uri }) | Should -Be @('roomy', 'medium', 'tight')
    }

    It 'writes NoHostFits with every host''s reasons, and returns nothing, when no host can take the VM' {
        $r = Find-KvmHost -Connection $H.roomy, $H.full -CpuCount 2 -MemoryBytes 100GB -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -Be 'NoHostFits,KvmPS.Commands.FindKvmHostCommand'
        $err[0].CategoryInfo.Category | Should -Be 'ResourceUnavailable'
        $err[0].TargetObject | Should -Be '2 vCPU, 100 GiB'
        "$err" | Should -Match 'memory: needs 100 GiB, 56 GiB left of 64 GiB'
        "$err" | Should -Match 'memory: needs 100 GiB, 4 GiB left of 16 GiB'
    }

    It 'leaves a host that cannot be reached out with one error; the others are still ranked' {
        $r = Find-KvmHost -Connection $H.medium, $Dead, $H.roomy @Want -ErrorAction SilentlyContinue -ErrorVariable err
        @($r | ForEach-Object { Get-HostName $_.Uri }) | Should -Be @('roomy', 'medium')
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
        $err[0].TargetObject | Should -Be $Dead
    }

    It 'completes pool and network names from earlier listings' {
        $null = Find-KvmHost -Connection $H.nolan -MemoryBytes 1GB
        (Complete "Find-KvmHost -Connection '$($H.nolan)' -MemoryBytes 1GB -Network ot").CompletionText | Should -Be @('other')
        (Complete "Find-KvmHost -Connection '$($H.nolan)' -MemoryBytes 1GB -StoragePool def").CompletionText | Should -Be @('default')
    }
}

Describe 'Get-KvmHost consolidation figures' -Tag TestDriver {
    It 'reports defined and allocated ratios and the unallocated memory' {
        $t = Get-KvmHost -Connection $H.tight -SampleIntervalSec 0
        $t.AllocatedCpuCount | Should -Be 2
        $t.DefinedCpuCount | Should -Be 4
        $t.CpuOvercommitRatio | Should -Be 0.25
        $t.DefinedCpuOvercommitRatio | Should -Be 0.5
        $t.MemoryOvercommitRatio | Should -Be 0.125
        $t.DefinedMemoryOvercommitRatio | Should -Be 0.625
        $t.UnallocatedMemoryBytes | Should -Be (28GB)
        (Get-KvmHost -Connection $H.full -SampleIntervalSec 0).UnallocatedMemoryBytes | Should -Be (4GB)
    }
}

Describe 'Reads across many hosts' -Tag TestDriver {
    It 'keeps the order of the connections given (<Cmd>, throttle <Throttle>)' -TestCases @(
        @{ Cmd = 'Get-KvmVm'; Throttle = 16 }, @{ Cmd = 'Get-KvmVm'; Throttle = 1 }, @{ Cmd = 'Get-KvmHost'; Throttle = 16 }, @{ Cmd = 'Get-KvmHost'; Throttle = 2 }
    ) {
        $order = @($H.medium, $H.full, $H.tight, $H.roomy, $H.medium)
        if ($Cmd -eq 'Get-KvmVm') {
            $r = Get-KvmVm -Connection $order -ThrottleLimit $Throttle
            # each host lists its VMs in its own order; the hosts come in the order given
            @($r.Name -replace '-\d+$') | Should -Be @('medium', 'full', 'tight', 'tight', 'roomy', 'medium')
        }
        else {
            $r = Get-KvmHost -Connection $order -ThrottleLimit $Throttle -SampleIntervalSec 0.2
            @($r | ForEach-Object { Get-HostName $_.Uri }) | Should -Be @('medium', 'full', 'tight', 'roomy', 'medium')
        }
    }

    It 'writes one error for a host that cannot be reached, in its place, and the others still answer' {
        $all = @(Get-KvmVm -Connection $H.roomy, $Dead, $H.tight -ErrorAction Continue 2>&1)
        $all.Count | Should -Be 4
        $all[0].Name | Should -Be 'roomy-1'
        $all[1] | Should -BeOfType System.Management.Automation.ErrorRecord
        $all[1].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
        @($all[2..3].Name | Sort-Object) | Should -Be @('tight-1', 'tight-2')
    }

    It 'measures the running VMs of several hosts, in host order' {
        $m = Measure-KvmVm -Connection $H.medium, $Dead, $H.roomy -SampleIntervalSec 0.2 -ErrorAction SilentlyContinue -ErrorVariable err
        @($m.VMName) | Should -Be @('medium-1', 'roomy-1')
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
    }
}

Describe 'A slow host costs only its own time' -Tag System {
    BeforeEach {
        if (-not $CanRunDaemon) { Set-ItResult -Skipped -Because 'needs root, libvirtd and setpriv to run a private daemon'; return }
        if (-not (Test-Path "$DaemonDir/pid")) { $null = Start-PrivateLibvirtd $DaemonDir }
    }

    It 'asks three frozen hosts at once (<Cmd>): one -OperationTimeoutSec in all, their errors first, in place' -TestCases @(
        @{ Cmd = 'Get-KvmVm' }, @{ Cmd = 'Get-KvmHost' }, @{ Cmd = 'Find-KvmHost' }
    ) {
        # three connections (each its own, with a 2 s timeout) to one private daemon, then frozen: one after the other
        # they would take 6 s or more
        $slow = 1..3 | ForEach-Object { Connect-KvmHost $DaemonUri -NotDefault -KeepAliveIntervalSec 0 -OperationTimeoutSec 2 }
        $null = Get-KvmVm -Connection $slow
        $daemonPid = [int](Get-Content "$DaemonDir/pid" -Raw)
        & kill -STOP $daemonPid
        try {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $all = switch ($Cmd) {
                'Get-KvmVm' { @(Get-KvmVm -Connection ($slow + $H.roomy + $H.tight) -ErrorAction Continue 2>&1) }
                'Get-KvmHost' { @(Get-KvmHost -Connection ($slow + $H.roomy + $H.tight) -SampleIntervalSec 0 -ErrorAction Continue 2>&1) }
                'Find-KvmHost' { @(Find-KvmHost -Connection ($slow + $H.roomy + $H.tight) @Want -ErrorAction Continue 2>&1) }
            }
            $sw.Stop()
        }
        finally { & kill -CONT $daemonPid }
        $errors = @($all | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })
        $errors.Count | Should -Be 3
        $errors | ForEach-Object { $_.FullyQualifiedErrorId | Should -BeLike 'OperationTimeout,*' }
        $sw.Elapsed.TotalSeconds | Should -BeGreaterThan 1.5
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 4.5 -Because 'the three timeouts run at the same time'
        switch ($Cmd) {
            'Get-KvmVm' {
                $all[0..2] | ForEach-Object { $_ | Should -BeOfType System.Management.Automation.ErrorRecord }
                @($all[3..5].Name -replace '-\d+$') | Should -Be @('roomy', 'tight', 'tight')
            }
            'Get-KvmHost' {
                $all[0..2] | ForEach-Object { $_ | Should -BeOfType System.Management.Automation.ErrorRecord }
                @($all[3..4] | ForEach-Object { Get-HostName $_.Uri }) | Should -Be @('roomy', 'tight')
            }
            'Find-KvmHost' {
                @($all | Where-Object { $_ -is [KvmPS.Core.KvmHostPlacement] } | ForEach-Object { Get-HostName $_.Uri }) | Should -Be @('roomy', 'tight')
            }
        }
        $slow | Disconnect-KvmHost
    }

    It 'stops waiting at once on Ctrl+C while a host is frozen' {
        $slow = Connect-KvmHost $DaemonUri -NotDefault -KeepAliveIntervalSec 0
        $null = Get-KvmHost -Connection $slow -SampleIntervalSec 0
        $daemonPid = [int](Get-Content "$DaemonDir/pid" -Raw)
        $rs = [runspacefactory]::CreateRunspace()
        $rs.Open()
        & kill -STOP $daemonPid
        try {
            $ps = [powershell]::Create()
            $ps.Runspace = $rs
            $null = $ps.AddCommand('Import-Module').AddArgument($ModulePath).Invoke()
            $ps.Commands.Clear()
            $null = $ps.AddCommand('Get-KvmVm').AddParameter('Connection', @($H.roomy, $slow, $H.tight))
            $async = $ps.BeginInvoke()
            Start-Sleep -Milliseconds 1500
            $ps.InvocationStateInfo.State | Should -Be 'Running' -Because "it waits for the frozen host ($($ps.InvocationStateInfo.Reason))"
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $sw.Stop()
            try { $null = $ps.EndInvoke($async) } catch { $null = $_ }
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 1.9 -Because 'the blocked call of the frozen host is left behind (it would get 2 s to clean up)'
            $ps.Dispose()
        }
        finally {
            & kill -CONT $daemonPid
            $rs.Dispose()
        }
        Disconnect-KvmHost $slow
    }
}

Describe 'New-KvmVm -Placement' -Tag TestDriver {
    BeforeAll { $script:P = New-TestName place }

    It 'creates the VM on the host with the most room only, and says which (-Verbose)' {
        $verbose = New-KvmVm -Connection $H.tight, $H.full, $H.roomy, $H.medium -Placement -Name "$P-a" -CpuCount 4 -MemoryBytes 8GB -DiskSizeBytes 10GB -Network lan -Verbose 4>&1
        $vm = @($verbose | Where-Object { $_ -is [KvmPS.Core.KvmVm] })
        $vm.Count | Should -Be 1
        $vm[0].Connection.RequestedUri | Should -Be $H.roomy
        $vm[0].CpuCount | Should -Be 4
        @($verbose | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message) |
            Should -Contain "'$($H.full)' cannot take it: memory: needs 8 GiB, 4 GiB left of 16 GiB (12 GiB committed to defined VMs)"
        (Get-KvmVm -Connection $H.roomy -Name "$P-a").Name | Should -Be "$P-a"
        foreach ($other in $H.tight, $H.full, $H.medium) { Get-KvmVm -Connection $other -Name "$P-a*" | Should -BeNullOrEmpty }
    }

    It 'counts the VM it just made: the next one goes where there is room now' {
        # roomy now has 16 GiB committed: after another 8 GiB VM it keeps 40 of 64 (0.625), still above medium (0.5)
        $a = New-KvmVm -Connection $H.medium, $H.roomy -Placement -Name "$P-b" -CpuCount 4 -MemoryBytes 8GB -NoNetwork
        $a.Connection.RequestedUri | Should -Be $H.roomy
        # roomy now has 24 GiB and 12 vCPUs committed, medium 24 GiB and 8: a 20 GiB VM leaves both 20 of 64 GiB, so both
        # score the memory's 0.3125 (their CPU headroom, 0.75 and 0.8125, is larger) and the tie goes to the host given first
        $b = New-KvmVm -Connection $H.medium, $H.roomy -Placement -Name "$P-c" -CpuCount 4 -MemoryBytes 20GB -NoNetwork
        $b.Connection.RequestedUri | Should -Be $H.medium
    }

    It 'creates nothing and writes NoHostFits when no host can take it' {
        $null = New-KvmVm -Connection $H.full, $H.narrow -Placement -Name "$P-n" -CpuCount 4 -MemoryBytes 8GB -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -Be 'NoHostFits,KvmPS.Commands.NewKvmVmCommand'
        "$err" | Should -Match "cpu: needs 4 vCPUs, the host has 2 CPUs"
        foreach ($c in $H.full, $H.narrow) { Get-KvmVm -Connection $c -Name "$P-n" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty }
    }

    It 'creates nothing with -WhatIf' {
        New-KvmVm -Connection $H.medium, $H.roomy -Placement -Name "$P-w" -MemoryBytes 1GB -NoNetwork -WhatIf
        foreach ($c in $H.medium, $H.roomy) { Get-KvmVm -Connection $c -Name "$P-w" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty }
    }

    It 'without -Placement still refuses several default connections (AmbiguousConnection)' {
        $defaults = Connect-KvmHost $H.medium, $H.roomy
        try {
            $null = New-KvmVm -Name "$P-amb" -MemoryBytes 1GB -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -Be 'AmbiguousConnection,KvmPS.Commands.NewKvmVmCommand'
            # with -Placement the default connections are the candidates
            (New-KvmVm -Placement -Name "$P-def" -MemoryBytes 1GB -NoNetwork).Connection.RequestedUri | Should -BeIn @($H.medium, $H.roomy)
        }
        finally { $defaults | Disconnect-KvmHost }
        foreach ($c in $H.medium, $H.roomy) { Get-KvmVm -Connection $c -Name "$P-amb" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty }
    }
}
