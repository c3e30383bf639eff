BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'Measure-KvmVm on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:c = 'test:///default'
        $script:p = "kvmps-m-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $null = New-KvmVm -Connection $c -Name "$p-off" -MemoryBytes 64MB -NoNetwork
    }
    AfterAll { Get-KvmVm -Connection $c -Name "$p*" | Remove-KvmVm -Force -Confirm:$false }

    It 'measures the running test VM with what the test driver reports' {
        $m = Measure-KvmVm -Connection $c -Name test -SampleIntervalSec 0.3
        $m | Should -BeOfType ([KvmPS.Core.KvmVmMetrics])
        $m.VMName | Should -Be 'test'
        $m.Uuid | Should -Be ([guid]'6695eb01-f6a4-8304-79aa-97f2502e193f')
        $m.State | Should -Be 'Running'
        $m.VirtualCpuCount | Should -Be 2
        $m.MemoryAssignedBytes | Should -Be 2GB
        $m.MemoryMaximumBytes | Should -Be 8GB
        $m.Uri | Should -Be $c
        $m.Connection.Uri | Should -Be $c
        # The test driver's CPU time is its wall clock, so the VM looks one CPU busy.
        $m.CpuUsagePercent | Should -BeGreaterThan 90
        $m.CpuUsagePercent | Should -BeLessThan 110
        # It reports no disk, network, per-vCPU or guest memory statistics: those stay empty, never 0.
        $m.DiskReadBytesPerSecond | Should -BeNullOrEmpty
        $m.DiskCount | Should -BeNullOrEmpty
        $m.NetworkReceiveBytesPerSecond | Should -BeNullOrEmpty
        $m.VcpuUsagePercent | Should -BeNullOrEmpty
        $m.MemoryUsedBytes | Should -BeNullOrEmpty
    }

    It 'honours -SampleIntervalSec' {
        foreach ($sec in 0.3, 1.5) {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $m = Measure-KvmVm -Connection $c -Name test -SampleIntervalSec $sec
            $sw.Stop()
            $m.SampleInterval.TotalSeconds | Should -BeGreaterOrEqual ($sec - 0.001)
            $m.SampleInterval.TotalSeconds | Should -BeLessThan ($sec + 1)
            $sw.Elapsed.TotalSeconds | Should -BeGreaterOrEqual $sec
        }
    }

    It 'writes VmNotFound with the name as target for a missing VM, and still measures the others' {
        $missing = "$p-missing"
        $m = Measure-KvmVm -Connection $c -Name $missing, test -SampleIntervalSec 0.2 -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'VmNotFound,*'
        $ev[0].TargetObject | Should -Be $missing
        $ev[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $m.VMName | Should -Be 'test'
    }

    It 'gives no rates for a shut-off VM: no object, a verbose message, no error' {
        $out = Measure-KvmVm -Connection $c -Name "$p-off" -SampleIntervalSec 0.2 -Verbose -ErrorVariable ev 4>&1
        @($out | Where-Object { $_ -is [KvmPS.Core.KvmVmMetrics] }).Count | Should -Be 0
        $ev.Count | Should -Be 0
        ($out | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" | Should -Match "'$p-off' is not running"
    }

    It 'measures every running VM when no name is given, and matches wildcards' {
        $all = @(Measure-KvmVm -Connection $c -SampleIntervalSec 0.2)
        $all.VMName | Should -Contain 'test'
        $all.VMName | Should -Not -Contain "$p-off"
        (Measure-KvmVm -Connection $c -Name 'TE*' -SampleIntervalSec 0.2).VMName | Should -Be 'test'
    }

    It 'takes VMs from the pipeline and measures each once' {
        $m = @(Get-KvmVm -Connection $c -Name test, test | Measure-KvmVm -SampleIntervalSec 0.2)
        $m.Count | Should -Be 1
        $m[0].VMName | Should -Be 'test'
    }

    It 'shows the Measure-VM-like table' {
        $text = Measure-KvmVm -Connection $c -Name test -SampleIntervalSec 0.2 | Out-String -Width 120
        $text | Should -Match 'VMName\s+AvgCPU\(%\)\s+Memory\(MB\)\s+Disk R/W \(KB/s\)\s+Net RX/TX \(KB/s\)\s+Host'
        $text | Should -Match 'test\s+\d+\.\d\s+2048\s+-/-\s+-/-'
    }

    It 'completes -Name from the names the last listing cached' {
        $null = Measure-KvmVm -Connection $c -Name test -SampleIntervalSec 0.1
        (Complete "Measure-KvmVm -Connection $c -Name $p-o").CompletionText | Should -Contain "$p-off"
    }

    It 'stops at once on Ctrl+C during the interval' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                    param($module)
                    Import-Module $module
                    Measure-KvmVm -Connection test:///default -Name test -SampleIntervalSec 60
                }).AddArgument((Get-Module KvmPS).Path)
            $handle = $ps.BeginInvoke()
            Start-Sleep -Seconds 2
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $sw.Stop()
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
            $handle.IsCompleted | Should -BeTrue
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            @($ps.Streams.Error).Count | Should -Be 0
        }
        finally { $ps.Dispose() }
    }
}

Describe 'Get-KvmHost usage on test:///default' -Tag TestDriver {
    It 'reports what the test driver gives: fixed CPU counters (no usage) and no memory statistics' {
        $h = Get-KvmHost -Connection test:///default
        # The test driver's virNodeGetCPUStats returns constant counters: no CPU time passes, so no usage.
        $h.CpuUsagePercent | Should -BeNullOrEmpty
        # It does not implement virNodeGetMemoryStats.
        $h.MemoryUsedBytes | Should -BeNullOrEmpty
        $h.MemoryCachedBytes | Should -BeNullOrEmpty
        $h.MemoryBuffersBytes | Should -BeNullOrEmpty
        $h.MemoryAvailableBytes | Should -BeNullOrEmpty
        $h.CpuCount | Should -Be 16
        $h.CpuSampleInterval | Should -BeGreaterOrEqual ([timespan]::FromMilliseconds(249))
    }

    It 'shows the usage columns after the allocation ratios in the host table' {
        $text = Get-KvmHost -Connection test:///default -SampleIntervalSec 0 | Out-String -Width 200
        $text | Should -Match 'vCPU:CPU\s+MemRatio\s+CPU%\s+MemUsed\s+Hypervisor'
    }
}

Describe 'Measure-KvmVm and Get-KvmHost on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        if (-not $skip) {
            $script:prefix = New-TestName 'met'
            $script:run = New-KvmVm -Connection qemu:///system -Name "$prefix-run" -NoNetwork -MemoryBytes 128MB -DiskSizeBytes 64MB
            # A boot sector that spins (cli; jmp $, then the 55 AA signature): the firmware boots it and the vCPU
            # stays busy, on KVM and TCG alike, so CPU usage is never an idle guest's near-zero.
            $out = & qemu-io -f qcow2 -c 'write -P 0xfa 0 1' -c 'write -P 0xeb 1 1' -c 'write -P 0xfe 2 1' -c 'write -P 0x55 510 1' -c 'write -P 0xaa 511 1' $run.Disks[0].Path 2>&1
            if ($LASTEXITCODE -ne 0) { throw "qemu-io failed: $out" }
            Start-KvmVm -Connection qemu:///system -Name $run.Name

            # CPU seconds the kernel counted for the VM's QEMU process (utime + stime, fields 14 and 15 of its stat).
            function Get-QemuCpuSeconds([string] $Name) {
                $qemuPid = [int](Get-Content "/run/libvirt/qemu/$Name.pid" -Raw)
                $fields = ((Get-Content "/proc/$qemuPid/stat" -Raw) -replace '^.*\) ', '') -split ' '
                ([double]$fields[11] + [double]$fields[12]) / 100
            }
            $script:off = New-KvmVm -Connection qemu:///system -Name "$prefix-off" -NoNetwork -MemoryBytes 128MB
        }
    }
    AfterAll { if (-not $skip) { Remove-SystemTestObjects $prefix } }

    It 'gives plausible numbers for a running VM' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $m = Measure-KvmVm -Connection qemu:///system -Name $run.Name
        $m.VMName | Should -Be $run.Name
        $m.Uuid | Should -Be $run.Uuid
        $m.State | Should -Be 'Running'
        $m.HostName | Should -Not -BeNullOrEmpty
        $m.VirtualCpuCount | Should -Be 1
        $m.CpuUsagePercent | Should -Not -BeNullOrEmpty
        $m.CpuUsagePercent | Should -BeGreaterThan 0 -Because 'the guest spins'
        $m.CpuUsagePercent | Should -BeLessOrEqual (100 * $m.VirtualCpuCount)
        $m.VcpuUsagePercent | Should -BeGreaterThan 0 -Because 'the guest spins'
        $m.VcpuUsagePercent | Should -BeLessOrEqual 100
        $m.MemoryAssignedBytes | Should -Be 128MB
        $m.MemoryResidentBytes | Should -BeGreaterThan 0
        # The guest has no OS, hence no balloon driver reporting statistics: nothing is made up.
        $m.MemoryUsedBytes | Should -BeNullOrEmpty
        $m.MemoryUnusedBytes | Should -BeNullOrEmpty
        $m.DiskCount | Should -Be 1
        $m.NetworkAdapterCount | Should -Be 0
        foreach ($rate in 'DiskReadBytesPerSecond', 'DiskWriteBytesPerSecond', 'DiskReadOperationsPerSecond', 'DiskWriteOperationsPerSecond') {
            $m.$rate | Should -Not -BeNullOrEmpty -Because $rate
            $m.$rate | Should -BeGreaterOrEqual 0 -Because $rate
        }
        # no adapter: nothing can be received or sent
        $m.NetworkReceiveBytesPerSecond | Should -Be 0
        $m.NetworkTransmitBytesPerSecond | Should -Be 0
        # at least the interval; a loaded host adds the time its second libvirt call takes
        $m.SampleInterval.TotalSeconds | Should -BeGreaterOrEqual 0.999
        $m.SampleInterval.TotalSeconds | Should -BeLessThan 2
    }

    It 'reads counters that only grow between two calls' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $a = Measure-KvmVm -Connection qemu:///system -Name $run.Name -SampleIntervalSec 0.2
        Start-Sleep -Milliseconds 300
        $b = Measure-KvmVm -Connection qemu:///system -Name $run.Name -SampleIntervalSec 0.2
        $b.CpuTime | Should -BeGreaterThan $a.CpuTime
        $b.DiskReadBytesTotal | Should -BeGreaterOrEqual $a.DiskReadBytesTotal
        $b.DiskReadOperationsTotal | Should -BeGreaterOrEqual $a.DiskReadOperationsTotal
        $b.DiskWriteBytesTotal | Should -BeGreaterOrEqual $a.DiskWriteBytesTotal
        $b.Timestamp | Should -BeGreaterThan $a.Timestamp
        # the CPU time agrees with an independent client (virsh), read between the two
        $ns = [uint64](((& virsh -c qemu:///system domstats $run.Name --cpu-total --raw) | Select-String 'cpu\.time=(\d+)').Matches[0].Groups[1].Value)
        $ns | Should -BeGreaterThan ([uint64]$a.CpuTime.Ticks * 100)
    }

    It 'gives no rates for a shut-off VM' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $out = Measure-KvmVm -Connection qemu:///system -Name $off.Name, $run.Name -SampleIntervalSec 0.2 -Verbose -ErrorVariable ev 4>&1
        $metrics = @($out | Where-Object { $_ -is [KvmPS.Core.KvmVmMetrics] })
        $metrics.VMName | Should -Be $run.Name
        $ev.Count | Should -Be 0
        ($out | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" | Should -Match "'$($off.Name)' is not running"
    }

    It 'writes VmNotFound with the name as target on qemu:///system' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $missing = "$prefix-missing"
        $null = Measure-KvmVm -Connection qemu:///system -Name $missing -SampleIntervalSec 0.1 -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'VmNotFound,*'
        $ev[0].TargetObject | Should -Be $missing
    }

    It 'merges the results of two hosts, each naming its host, with one wait' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $m = @(Measure-KvmVm -Connection qemu:///system, test:///default -Name $run.Name, test -SampleIntervalSec 2 -ErrorAction SilentlyContinue)
        $sw.Stop()
        ($m | Where-Object VMName -eq $run.Name).Uri | Should -Be 'qemu:///system'
        ($m | Where-Object VMName -eq 'test').Uri | Should -Be 'test:///default'
        $m.Count | Should -Be 2
        # one shared wait, not one per host (two waits would take 4 s)
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 3.5
        $m | ForEach-Object { $_.SampleInterval.TotalSeconds | Should -BeGreaterOrEqual 1.999 }
    }

    It 'adds current CPU and memory usage to Get-KvmHost' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $h = Get-KvmHost -Connection qemu:///system
        $h.CpuUsagePercent | Should -Not -BeNullOrEmpty
        $h.CpuUsagePercent | Should -BeGreaterThan 0 -Because 'the spinning test VM keeps a host CPU busy'
        $h.CpuUsagePercent | Should -BeLessOrEqual 100
        $h.MemoryUsedBytes | Should -BeGreaterThan 0
        $h.MemoryUsedBytes | Should -BeLessOrEqual $h.MemoryBytes
        $h.MemoryCachedBytes | Should -Not -BeNullOrEmpty
        $h.MemoryBuffersBytes | Should -Not -BeNullOrEmpty
        $h.MemoryAvailableBytes | Should -BeGreaterThan 0
        # used + available is the whole memory as the kernel counts it (/proc/meminfo, read independently)
        $memTotalKiB = [uint64]((Get-Content /proc/meminfo | Select-String '^MemTotal:\s+(\d+)').Matches[0].Groups[1].Value)
        ($h.MemoryUsedBytes + $h.MemoryAvailableBytes) | Should -Be ($memTotalKiB * 1KB)
        # -SampleIntervalSec 0 skips the CPU sample
        (Get-KvmHost -Connection qemu:///system -SampleIntervalSec 0).CpuUsagePercent | Should -BeNullOrEmpty
    }

    It 'sees the busy VM in its own CPU usage and in the host''s, as the kernel counts the QEMU process' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # The kernel's count for the QEMU process over a window that encloses each sample: the guest spins, so
        # it is well above zero however loaded the host is, and the VM's and host's figures must account for it.
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $c0 = Get-QemuCpuSeconds $run.Name
        $vm = Measure-KvmVm -Connection qemu:///system -Name $run.Name -SampleIntervalSec 2
        $c1 = Get-QemuCpuSeconds $run.Name
        $window = $sw.Elapsed.TotalSeconds
        $processPercent = 100 * ($c1 - $c0) / $window
        $processPercent | Should -BeGreaterThan 2 -Because 'the spinning guest runs whenever the host lets it'
        $vm.CpuUsagePercent | Should -BeLessOrEqual (100 * $vm.VirtualCpuCount)
        # not more CPU time than the whole process used in a longer window (clock ticks are 10 ms)
        ($vm.CpuUsagePercent / 100 * $vm.SampleInterval.TotalSeconds) | Should -BeLessOrEqual ($c1 - $c0 + 0.05)
        # and about the process's own rate (the vCPU is nearly all of it)
        $vm.CpuUsagePercent | Should -BeGreaterThan ($processPercent * 0.5) -Because "QEMU used $processPercent % of a CPU meanwhile"

        $sw.Restart()
        $c0 = Get-QemuCpuSeconds $run.Name
        $h = Get-KvmHost -Connection qemu:///system -SampleIntervalSec 2
        $c1 = Get-QemuCpuSeconds $run.Name
        $processPercent = 100 * ($c1 - $c0) / $sw.Elapsed.TotalSeconds
        $h.CpuUsagePercent | Should -BeLessOrEqual 100
        # host usage is the share of all its CPUs: the QEMU process alone is that much of one CPU
        ($h.CpuUsagePercent * $h.CpuCount) | Should -BeGreaterThan ($processPercent * 0.5) -Because "QEMU used $processPercent % of a CPU meanwhile"
    }
}
