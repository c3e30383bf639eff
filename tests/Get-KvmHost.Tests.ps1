BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'Get-KvmHost on a fixture host' -Tag TestDriver {
    BeforeAll { $script:h = Get-KvmHost -Connection $FixtureUri }

    It 'reports the node size from libvirt' {
        $h | Should -BeOfType ([KvmPS.Core.KvmHostInfo])
        $h.CpuCount | Should -Be 8
        $h.Cores | Should -Be 4
        $h.Threads | Should -Be 2
        $h.Sockets | Should -Be 1
        $h.CpuMhz | Should -Be 2400
        $h.MemoryBytes | Should -Be 16GB
        $h.Hypervisor | Should -Be 'TEST'
        $h.Uri | Should -Be $FixtureUri
    }

    It 'counts VMs and what the running ones are allocated' {
        $h.VmCount | Should -Be 7
        $h.RunningVmCount | Should -Be 3
        # web1 (2 vCPU, 1 GiB now), web2 (1, 1 GiB), tmp1 (1, 256 MiB) run; batch1 (1, 512 MiB) is paused but holds its resources.
        $h.AllocatedCpuCount | Should -Be 5
        $h.AllocatedMemoryBytes | Should -Be (1GB + 1GB + 256MB + 512MB)
        $h.CpuOvercommitRatio | Should -Be ([math]::Round(5 / 8, 3))
        $h.MemoryOvercommitRatio | Should -Be ([math]::Round((2816MB) / 16GB, 3))
    }

    It 'formats as the consolidation table' {
        ($h | Out-String) | Should -Match 'HostName\s+CPUs\s+Memory\s+Free\s+VMs\s+Running'
    }
}

Describe 'Get-KvmHost on test:///default' -Tag TestDriver {
    It 'reports the test driver host' {
        $h = Get-KvmHost -Connection test:///default
        $h.CpuCount | Should -Be 16
        $h.NumaNodes | Should -Be 2
        $h.VmCount | Should -BeGreaterOrEqual 1
    }
}

Describe 'Get-KvmHost on qemu:///system' -Tag System {
    BeforeAll { $script:skip = -not (Test-SystemLibvirt) }

    It 'matches what this machine has' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $h = Get-KvmHost -Connection qemu:///system
        $h.CpuCount | Should -Be ([Environment]::ProcessorCount)
        # virsh is an independent libvirt client: its node memory must equal ours
        $memKiB = [uint64]((& virsh -c qemu:///system nodeinfo | Select-String '^Memory size:\s+(\d+)').Matches[0].Groups[1].Value)
        $h.MemoryBytes | Should -Be ($memKiB * 1KB)
        $h.FreeMemoryBytes | Should -BeGreaterThan 0
        $h.FreeMemoryBytes | Should -BeLessThan $h.MemoryBytes
        $h.Hypervisor | Should -Be 'QEMU'
    }
}
