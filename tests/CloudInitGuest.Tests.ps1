# One real Debian cloud guest (tests/fixtures/New-DebianCloudImage.sh) on qemu:///system, booted ONCE and shared
# by everything that needs a guest OS: Start-KvmVm -Wait, what cloud-init put into the guest (-SshPublicKey,
# -Password, -NetworkConfig), Invoke-KvmVmGuestCommand's exit code and stderr, non-zero disk and network rates
# in Measure-KvmVm, Set-KvmVm's live changes, Stop-KvmVm -Save with its restore, and Restart-KvmVm -Wait.
# The Describe blocks run in file order against the same guest. Its only NIC is on an isolated network
# (no <forward>), with a static address given through -NetworkConfig.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:skip = -not (Test-SystemLibvirt)
    $script:c = 'qemu:///system'
    $script:p = New-TestName 'cg'
    $script:name = "$p-vm"
    $script:tmp = Join-Path ([IO.Path]::GetTempPath()) $p

    function Invoke-Guest([string] $Command, [int] $TimeoutSec = 60) {
        $r = Invoke-KvmVmGuestCommand -Connection $c -Name $name -Command $Command -TimeoutSec $TimeoutSec
        if ($r.ExitCode -ne 0) { throw "guest command '$Command' exited $($r.ExitCode): $($r.StdErr)" }
        $r.StdOut.Trim()
    }

    # The running VM's XML as libvirt has it now (not the persistent definition).
    function Get-LiveXml { [xml]((& virsh -c qemu:///system dumpxml $name) -join "`n") }
    function Get-InactiveXml { [xml]((& virsh -c qemu:///system dumpxml $name --inactive) -join "`n") }

    # The vCPUs a domain XML has now: <vcpu current='N'>max</vcpu>, where libvirt leaves current out when all are on.
    function Get-CurrentVcpus([xml] $Xml) {
        $node = $Xml.SelectSingleNode('/domain/vcpu')
        $current = $node.GetAttribute('current')
        if ($current) { [int]$current } else { [int]$node.InnerText }
    }

    function Get-DomInfo {
        $h = @{}
        foreach ($line in (& virsh -c qemu:///system dominfo $name 2>$null)) {
            if ($line -match '^([^:]+):\s*(.*)$') { $h[$Matches[1].Trim()] = $Matches[2].Trim() }
        }
        $h
    }

    if (-not $skip) {
        $null = New-Item -ItemType Directory -Path $tmp -Force
        $script:image = (& bash (Join-Path $PSScriptRoot 'fixtures' 'New-DebianCloudImage.sh') --quiet | Select-Object -Last 1)
        if ($LASTEXITCODE -ne 0 -or -not (Test-Path $image)) { throw "The Debian fixture image could not be built (exit $LASTEXITCODE)." }

        # An isolated network (no <forward>, no DHCP): the guest's address comes only from -NetworkConfig.
        $octet = Get-TestOctet 16 250
        $script:net = "$p-net"
        $script:hostIp = "10.252.$octet.1"
        $script:guestIp = "10.252.$octet.50"
        $xml = [System.Xml.Linq.XElement]::new('network',
            [System.Xml.Linq.XElement]::new('name', $net),
            [System.Xml.Linq.XElement]::new('bridge', [System.Xml.Linq.XAttribute]::new('name', "ktg$([guid]::NewGuid().ToString('N').Substring(0, 8))")),
            [System.Xml.Linq.XElement]::new('ip', [System.Xml.Linq.XAttribute]::new('address', $hostIp), [System.Xml.Linq.XAttribute]::new('netmask', '255.255.255.0')))
        $xml.ToString() | Set-Content "$tmp/net.xml"
        $out = & virsh -c $c net-create "$tmp/net.xml" 2>&1
        if ($LASTEXITCODE -ne 0) { throw "net-create failed: $out" }

        & ssh-keygen -q -t ed25519 -N '' -C "kvmps-test@$p" -f "$tmp/id_ed25519"
        $script:publicKey = (Get-Content "$tmp/id_ed25519.pub" -Raw).Trim()
        $script:password = "Pw-$([guid]::NewGuid().ToString('N').Substring(0, 16))"
        $b = [byte[]]::new(3)
        [Security.Cryptography.RandomNumberGenerator]::Fill($b)
        $script:mac = '52:54:00:' + (($b | ForEach-Object { $_.ToString('x2') }) -join ':')
        $networkConfig = @{
            version   = 2
            ethernets = @{
                kvmps0 = @{ match = @{ macaddress = $mac }; 'set-name' = 'kvmps0'; addresses = @("$guestIp/24") }
            }
        }
        # TCG: boots on any host, with or without /dev/kvm (a guest kernel under nested KVM may not).
        $null = New-KvmVm -Connection $c -Name $name -BaseImage $image -Format qcow2 -DiskSizeBytes 2GB -CpuCount 1 -MaxCpuCount 2 `
            -MemoryBytes 640MB -MaxMemoryBytes 768MB -Accelerator Qemu -NoNetwork -CloudInit -HostName kvmps-guest -User kvmps `
            -SshPublicKey $publicKey -Password (ConvertTo-SecureString $password -AsPlainText -Force) -NetworkConfig $networkConfig
        $null = Add-KvmVmNetworkAdapter -Connection $c -VMName $name -Network $net -MacAddress $mac
    }
}

AfterAll {
    if (-not $skip) {
        Remove-SystemTestObjects $p
        & virsh -c $c pool-destroy "$p-base" *> $null
        & virsh -c $c net-destroy $net *> $null
        Remove-Item $tmp -Recurse -Force -ErrorAction SilentlyContinue
    }
}

Describe 'Start-KvmVm -Wait on a real guest' -Tag System, EndToEnd {
    It 'starts the VM and returns only once the guest reports its address' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $vm = Start-KvmVm -Connection $c -Name $name -Wait -For IPAddress -TimeoutSec 900
        $sw.Stop()
        $vm.Name | Should -Be $name
        $vm.State | Should -Be 'Running'
        $vm.IPAddresses | Should -Contain $guestIp
        $sw.Elapsed.TotalSeconds | Should -BeGreaterThan 5 -Because 'a TCG guest takes far longer than that to boot: the cmdlet waited'
        # the address came from the guest agent (no DHCP on this network): the agent answers at once
        (Invoke-KvmVmGuestCommand -Connection $c -Name $name -Command 'hostname').StdOut.Trim() | Should -Be 'kvmps-guest'
    }
}

Describe 'cloud-init content reaching the guest' -Tag System, EndToEnd {
    BeforeAll {
        if (-not $skip) {
            # (also when Start-KvmVm -Wait failed above) the agent, then cloud-init's later stages (users, keys, sshd)
            $null = Wait-KvmVm -Connection $c -Name $name -For GuestAgent -TimeoutSec 600
            $script:cloudInitStatus = (Invoke-KvmVmGuestCommand -Connection $c -Name $name -Command 'cloud-init status --wait >/dev/null 2>&1; cloud-init status' -TimeoutSec 900).StdOut
        }
    }

    It 'finishes cloud-init without errors' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $cloudInitStatus | Should -Match 'status: done'
    }

    It 'puts -SshPublicKey into the user''s authorized_keys, and the key logs in over SSH' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $keys = Invoke-Guest 'cat /home/kvmps/.ssh/authorized_keys'
        $keys -split "`n" | ForEach-Object Trim | Should -Contain $publicKey
        $login = & ssh -i "$tmp/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null `
            -o ConnectTimeout=30 -o LogLevel=ERROR "kvmps@$guestIp" 'id -un; hostname' 2>&1
        $LASTEXITCODE | Should -Be 0 -Because "ssh said: $login"
        $login | Should -Be @('kvmps', 'kvmps-guest')
    }

    It 'sets -Password: the shadow entry is a hash of exactly that password' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $hash = (Invoke-Guest 'getent shadow kvmps').Split(':')[1]
        $hash | Should -Match '^\$[0-9a-z]+\$' -Because 'a crypt hash, not a locked (!) or empty password'
        $hash | Should -Not -Match ([regex]::Escape($password))
        $check = 'import crypt, sys; h = sys.argv[1]; print(crypt.crypt(sys.argv[2], h) == h)'
        $right = Invoke-KvmVmGuestCommand -Connection $c -Name $name -Command /usr/bin/python3 -Arguments '-W', 'ignore', '-c', $check, $hash, $password
        $right.StdOut.Trim() | Should -Be 'True'
        $wrong = Invoke-KvmVmGuestCommand -Connection $c -Name $name -Command /usr/bin/python3 -Arguments '-W', 'ignore', '-c', $check, $hash, "$password-x"
        $wrong.StdOut.Trim() | Should -Be 'False' -Because 'the check can fail'
    }

    It 'applies -NetworkConfig: the NIC with that MAC is renamed and has the static address' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Invoke-Guest 'cat /sys/class/net/kvmps0/address' | Should -Be $mac
        Invoke-Guest 'ip -4 -o addr show dev kvmps0' | Should -Match ([regex]::Escape("inet $guestIp/24"))
        # and the host reaches it there (the SSH login above went to the same address)
        Invoke-Guest "ping -c 1 -W 5 $hostIp >/dev/null && echo reached" | Should -Be 'reached'
    }
}

Describe 'Invoke-KvmVmGuestCommand exit code and stderr' -Tag System, EndToEnd {
    It 'returns the exit code, stdout and stderr of a failing shell command' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $r = Invoke-KvmVmGuestCommand -Connection $c -Name $name -Command 'echo to-out; echo to-err >&2; exit 3' -ErrorVariable err
        $r.ExitCode | Should -Be 3
        $r.StdOut.Trim() | Should -Be 'to-out'
        $r.StdErr.Trim() | Should -Be 'to-err'
        $r.TimedOut | Should -BeFalse
        $r.VMName | Should -Be $name

        $ls = Invoke-KvmVmGuestCommand -Connection $c -Name $name -Command /bin/ls -Arguments "/nonexistent-$p"
        $ls.ExitCode | Should -Be 2
        $ls.StdOut | Should -BeNullOrEmpty
        $ls.StdErr | Should -Match ([regex]::Escape("/nonexistent-$p")) -Because 'ls names the missing path on stderr'
    }
}

Describe 'Measure-KvmVm rates under real I/O' -Tag System, EndToEnd {
    It 'reports non-zero disk read/write and network receive/transmit rates while the guest does I/O' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # direct (uncached) disk reads and writes, and pings to the host, for about 30 s in the background
        $io = 'i=0; while [ $i -lt 60 ]; do dd if=/dev/zero of=/var/tmp/kvmps-io bs=256k count=8 oflag=direct conv=fsync; dd if=/dev/vda of=/dev/null bs=256k count=8 skip=$((i*8)) iflag=direct; i=$((i+1)); done'
        $null = Invoke-Guest "setsid sh -c '$io' >/dev/null 2>&1 </dev/null &"
        $null = Invoke-Guest "setsid ping -q -i 0.1 -s 1200 -c 300 $hostIp >/dev/null 2>&1 </dev/null &"
        # measured only once libvirt's own counters show the guest reading (on a loaded host the loop starts late)
        $readBytes = { [double]([regex]::Match(((& virsh -c $c domstats $name --block) -join "`n"), 'block\.0\.rd\.bytes=(\d+)').Groups[1].Value) }
        $before = & $readBytes
        Wait-Until { (& $readBytes) -gt $before } 60 | Should -BeTrue -Because 'the guest reads its disk'
        $m = Measure-KvmVm -Connection $c -Name $name -SampleIntervalSec 5
        $m.VMName | Should -Be $name
        $m.DiskReadBytesPerSecond | Should -BeGreaterThan 0
        $m.DiskWriteBytesPerSecond | Should -BeGreaterThan 0
        $m.DiskWriteOperationsPerSecond | Should -BeGreaterThan 0
        $m.NetworkReceiveBytesPerSecond | Should -BeGreaterThan 0
        $m.NetworkTransmitBytesPerSecond | Should -BeGreaterThan 0
        # ~1200-byte pings each way: more than one packet's worth a second
        $m.NetworkTransmitBytesPerSecond | Should -BeGreaterThan 400
        $m.NetworkReceiveBytesPerSecond | Should -BeGreaterThan 400
        # the totals agree with libvirt's own counters for the same NIC and disk
        $stats = (& virsh -c $c domstats $name --interface --block) -join "`n"
        [double]([regex]::Match($stats, 'net\.0\.tx\.bytes=(\d+)').Groups[1].Value) | Should -BeGreaterOrEqual ([double]$m.NetworkTransmitBytesTotal)
        [double]([regex]::Match($stats, 'block\.0\.wr\.bytes=(\d+)').Groups[1].Value) | Should -BeGreaterOrEqual ([double]$m.DiskWriteBytesTotal)
    }
}

Describe 'Set-KvmVm live changes on the running guest' -Tag System, EndToEnd {
    It 'hot-plugs a vCPU now: the live domain and the guest see it, and no "next start" warning' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        Invoke-Guest 'test -e /sys/devices/system/cpu/cpu1 && echo yes || echo no' | Should -Be 'no'
        Get-CurrentVcpus (Get-LiveXml) | Should -Be 1
        $r = Set-KvmVm -Connection $c -Name $name -CpuCount 2 -Passthru -WarningVariable warn -WarningAction SilentlyContinue
        $warn | Should -BeNullOrEmpty -Because 'the change applied live'
        $r.CpuCount | Should -Be 2
        (Get-DomInfo)['CPU(s)'] | Should -Be '2'
        Get-CurrentVcpus (Get-LiveXml) | Should -Be 2
        Get-CurrentVcpus (Get-InactiveXml) | Should -Be 2 -Because 'and it stays for the next start'
        Wait-Until { (Invoke-Guest 'test -e /sys/devices/system/cpu/cpu1 && echo yes || echo no') -eq 'yes' } 60 | Should -BeTrue -Because 'the guest kernel sees the new CPU'
    }

    It 'balloons the memory down now: the live domain and the guest''s MemTotal shrink' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $before = [long](Invoke-Guest "awk '/^MemTotal:/ {print `$2}' /proc/meminfo")
        $null = Set-KvmVm -Connection $c -Name $name -MemoryBytes 512MB -WarningVariable warn -WarningAction SilentlyContinue
        $warn | Should -BeNullOrEmpty -Because 'the change applied live'
        (Get-InactiveXml).domain.currentMemory.'#text' | Should -Be '524288'
        Wait-Until { (Get-LiveXml).domain.currentMemory.'#text' -eq '524288' } 90 | Should -BeTrue -Because 'the balloon reached the new size in the running VM'
        Wait-Until { ($before - [long](Invoke-Guest "awk '/^MemTotal:/ {print `$2}' /proc/meminfo")) -ge 100000 } 30 | Should -BeTrue -Because 'the guest gave up about 128 MiB'
        (Get-KvmVm -Connection $c -Name $name).MemoryBytes | Should -Be 512MB
    }

    It 'says that a new memory maximum waits for the next start, and leaves the running VM''s maximum alone' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Set-KvmVm -Connection $c -Name $name -MaxMemoryBytes 896MB -WarningVariable warn -WarningAction SilentlyContinue
        @($warn).Count | Should -Be 1
        "$($warn[0])" | Should -Match 'applies at the next start'
        (Get-LiveXml).domain.memory.'#text' | Should -Be '786432'
        (Get-InactiveXml).domain.memory.'#text' | Should -Be '917504'
    }
}

Describe 'Stop-KvmVm -Save and Start-KvmVm with a guest OS' -Tag System, EndToEnd {
    It 'saves the running guest and restores it where it was (same boot, memory intact)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $bootId = Invoke-Guest 'cat /proc/sys/kernel/random/boot_id'
        $null = Invoke-Guest "echo $p > /dev/shm/kvmps-marker"
        $saved = Stop-KvmVm -Connection $c -Name $name -Save -Passthru
        $saved.State | Should -Be 'ShutOff'
        (Get-DomInfo)['State'] | Should -Be 'shut off'
        (Get-DomInfo)['Managed save'] | Should -Be 'yes'
        $vm = Start-KvmVm -Connection $c -Name $name -Wait -For GuestAgent -TimeoutSec 180
        $vm.State | Should -Be 'Running'
        (Get-DomInfo)['Managed save'] | Should -Be 'no'
        Invoke-Guest 'cat /proc/sys/kernel/random/boot_id' | Should -Be $bootId -Because 'the guest was restored, not booted'
        Invoke-Guest 'cat /dev/shm/kvmps-marker' | Should -Be $p -Because 'its RAM came back with it'
    }
}

Describe 'Restart-KvmVm -Wait on a real guest' -Tag System, EndToEnd {
    It 'reboots the guest and returns once the rebooted guest reports its address' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $bootId = Invoke-Guest 'cat /proc/sys/kernel/random/boot_id'
        $null = Invoke-Guest "echo $p > /dev/shm/kvmps-marker"
        $vm = Restart-KvmVm -Connection $c -Name $name -Wait -For IPAddress -TimeoutSec 900
        $vm.Name | Should -Be $name
        $vm.State | Should -Be 'Running'
        $vm.IPAddresses | Should -Contain $guestIp
        # right away, the agent that answers is the new boot's
        $after = Invoke-KvmVmGuestCommand -Connection $c -Name $name -Command 'cat /proc/sys/kernel/random/boot_id; test -e /dev/shm/kvmps-marker && echo kept || echo gone'
        $lines = @($after.StdOut.Trim() -split "`n" | ForEach-Object Trim)
        $lines[0] | Should -Not -Be $bootId -Because 'the guest rebooted'
        $lines[1] | Should -Be 'gone' -Because 'RAM does not survive a reboot'
    }
}

Describe 'Copies of the real guest' -Tag System, EndToEnd, Migration {
    It 'boots a linked copy of an exported and imported full copy, with its own identity' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        if ($env:KVMPS_BACKEND -eq 'Managed') { Set-ItResult -Skipped -Because 'booted once, in the Native lane (allowed-skips.txt)'; return }
        Stop-KvmVm -Connection $c -Name $name -TimeoutSec 120 -Force -WarningAction SilentlyContinue
        $orig = Get-KvmVm -Connection $c -Name $name
        # the guest's disk is an overlay on the fixture image: KvmPS copies a chain only when every image in it is a
        # pool volume with a declared format, so the fixture's folder becomes a (transient) pool for the copy
        $basePool = "$p-base"
        $out = & virsh -c $c pool-create-as $basePool dir --target (Split-Path $image) 2>&1
        if ($LASTEXITCODE -ne 0) { throw "pool-create-as failed: $out" }
        # one boot proves the chain: a full copy, exported with its disk and imported as a new VM, and a linked copy
        # (an overlay) of that, which is the one started
        $full = Copy-KvmVm -Connection $c -Name $name -NewName "$p-full"
        $null = Export-KvmVm -Connection $c -Name "$p-full" -Path "$tmp/export" -IncludeStorage
        $imported = Import-KvmVm -Connection $c -Path "$tmp/export" -Copy -Name "$p-imp" -WarningAction SilentlyContinue
        $linked = Copy-KvmVm -Connection $c -Name "$p-imp" -NewName "$p-lnk" -Linked -WarningAction SilentlyContinue
        $uuids = @($orig, $full, $imported, $linked | ForEach-Object Uuid | Sort-Object -Unique)
        $uuids | Should -HaveCount 4 -Because 'every copy has its own UUID'
        $macs = @($orig, $full, $imported, $linked | ForEach-Object { $_.NetworkAdapters[0].MacAddress } | Sort-Object -Unique)
        $macs | Should -HaveCount 4 -Because 'and its own MAC address'
        (& qemu-img info -U $linked.Disks[0].Path) -join ' ' | Should -Match ([regex]::Escape("backing file: $($imported.Disks[0].Path)"))
        $null = Start-KvmVm -Connection $c -Name "$p-lnk"
        $null = Wait-KvmVm -Connection $c -Name "$p-lnk" -For GuestAgent -TimeoutSec 900
        $r = Invoke-KvmVmGuestCommand -Connection $c -Name "$p-lnk" -Command 'cat /sys/class/net/*/address'
        $r.ExitCode | Should -Be 0
        $seen = @($r.StdOut -split "`n" | ForEach-Object Trim | Where-Object { $_ -match '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' -and $_ -ne '00:00:00:00:00:00' })
        $seen | Should -Contain $linked.NetworkAdapters[0].MacAddress -Because 'the booted copy sees its own NIC'
        $seen | Should -Not -Contain $mac
        Stop-KvmVm -Connection $c -Name "$p-lnk" -TurnOff
        & virsh -c $c pool-destroy $basePool *> $null
    }
}
