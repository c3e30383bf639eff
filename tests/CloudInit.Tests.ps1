BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'Cloud-init input is checked before anything is created' -Tag TestDriver {
    BeforeAll { $script:p = "kvmps-c-$([guid]::NewGuid().ToString('N').Substring(0, 6))" }

    It 'rejects invalid #cloud-config YAML with its line and column' {
        $bad = "#cloud-config`nruncmd:`n  - [ls`nhostname: x`n"
        $null = New-KvmVm -Connection test:///default -Name "$p-y" -NoNetwork -CloudInit -UserData $bad -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidVmSpec,*'
        $err[0].Exception.Key | Should -Be 'userData'
        $err[0].Exception.Line | Should -BeGreaterThan 0
        Get-KvmVm -Connection test:///default -Name "$p-y" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'rejects user data that is neither cloud-config, a script nor a hashtable' {
        $null = New-KvmVm -Connection test:///default -Name "$p-t" -NoNetwork -CloudInit -UserData 'hello' -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidVmSpec,*'
        $null = New-KvmVm -Connection test:///default -Name "$p-t" -NoNetwork -CloudInit -UserData @{ runcmd = @((Get-Date)) } -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'InvalidVmSpec,*'
        $null = New-KvmVm -Connection test:///default -Name "$p-t" -NoNetwork -HostName x -ErrorAction SilentlyContinue -ErrorVariable err3
        $err3[0].Exception.Message | Should -Match 'CloudInit'
        Get-KvmVm -Connection test:///default -Name "$p-t" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'reads cloudInit from a YAML spec' {
        $file = Join-Path $TestDrive 'ci.yaml'
        @"
name: $p-s
memory: 128MiB
noNetwork: true
cloudInit:
  hostName: from-spec
  user: ops
  sshPublicKeys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKvmPS ops@x
  userData:
    runcmd:
      - [touch, /var/tmp/from-spec]
    package_update: false
"@ | Set-Content $file
        $out = New-KvmVm -Connection test:///default -Spec $file -Verbose -ErrorAction SilentlyContinue -ErrorVariable err 4>&1 | Out-String
        $out | Should -Match 'host name from-spec, user ops, 1 SSH key'
        # the test driver cannot upload the seed: the spec was read, the VM is rolled back
        $err[0].Exception.Step | Should -BeLike '*cloud-init seed*'
        Get-KvmVm -Connection test:///default -Name "$p-s" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty

        "name: $p-s`ncloudInit:`n  hostname: x`n" | Set-Content $file
        $null = New-KvmVm -Connection test:///default -Spec $file -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].Exception.Key | Should -Be 'cloudInit.hostname'
        $err2[0].Exception.Line | Should -Be 3
    }

    It 'never shows the password in Verbose output or errors, and rolls back when the seed cannot be uploaded' {
        # The test driver cannot upload volumes: creation fails at the seed step and is rolled back.
        $pw = ConvertTo-SecureString 'Sup3r-s3cret!' -AsPlainText -Force
        $out = New-KvmVm -Connection test:///default -Name "$p-w" -NoNetwork -CloudInit -User admin -Password $pw -Verbose -ErrorAction SilentlyContinue -ErrorVariable err 4>&1 | Out-String
        $out | Should -Match 'a password'
        $out | Should -Not -Match 'Sup3r'
        ($err | Out-String) | Should -Not -Match 'Sup3r'
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmCreateFailed,*'
        $err[0].Exception.Step | Should -BeLike '*cloud-init seed*'
        Get-KvmVm -Connection test:///default -Name "$p-w" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}

Describe 'End to end: a real Debian guest deployed with cloud-init' -Tag System, EndToEnd {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:p = New-TestName 'e2e'
        $script:c = 'qemu:///system'
        if (-not $skip) {
            $script:image = (& bash (Join-Path $PSScriptRoot 'fixtures' 'New-DebianCloudImage.sh') --quiet | Select-Object -Last 1)
            if ($LASTEXITCODE -ne 0 -or -not (Test-Path $image)) { throw "The Debian fixture image could not be built (exit $LASTEXITCODE)." }
            $octet = Get-TestOctet 16 250
            $script:net = "$p-net"
            $xml = [System.Xml.Linq.XElement]::new('network',
                [System.Xml.Linq.XElement]::new('name', $net),
                [System.Xml.Linq.XElement]::new('bridge', [System.Xml.Linq.XAttribute]::new('name', "kte$([guid]::NewGuid().ToString('N').Substring(0, 8))")),
                [System.Xml.Linq.XElement]::new('ip', [System.Xml.Linq.XAttribute]::new('address', "10.253.$octet.1"), [System.Xml.Linq.XAttribute]::new('netmask', '255.255.255.0'),
                    [System.Xml.Linq.XElement]::new('dhcp', [System.Xml.Linq.XElement]::new('range', [System.Xml.Linq.XAttribute]::new('start', "10.253.$octet.100"), [System.Xml.Linq.XAttribute]::new('end', "10.253.$octet.200")))))
            $f = Join-Path $TestDrive 'net.xml'
            $xml.ToString() | Set-Content $f
            $out = & virsh -c $c net-create $f 2>&1
            if ($LASTEXITCODE -ne 0) { throw "net-create failed: $out" }
            $script:subnet = "10.253.$octet."
        }
    }
    AfterAll {
        if (-not $skip) {
            Remove-SystemTestObjects $p
            & virsh -c $c net-destroy $net *> $null
        }
    }

    It 'deploys the image with cloud-init, gets an address, a host name and the runcmd marker' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKvmPSkvmPSkvmPSkvmPSkvmPSkvmPSkvmPSkvmPSkv kvmps@test'
        $userData = "#cloud-config`nruncmd:`n  - [sh, -c, 'echo kvmps-e2e-marker > /var/tmp/kvmps-marker']`n"
        # TCG: a Linux kernel under this host's nested KVM does not boot; real hosts use -Accelerator Auto (KVM).
        $vm = New-KvmVm -Connection $c -Name "$p-vm" -BaseImage $image -Format qcow2 -DiskSizeBytes 2GB -CpuCount 2 -MemoryBytes 768MB `
            -Accelerator Qemu -Network $net -CloudInit -HostName kvmps-e2e -User kvmps -SshPublicKey $key -UserData $userData -Start
        $vm.State | Should -Be 'Running'
        ($vm.Disks | Where-Object Device -eq 'cdrom').Bus | Should -Be 'scsi'

        $withIp = $vm | Wait-KvmVm -For IPAddress -AddressFamily IPv4 -TimeoutSec 240
        $withIp.IPAddresses | Should -Not -BeNullOrEmpty
        $withIp.IPAddresses[0] | Should -BeLike "$subnet*"
        $null = $vm | Wait-KvmVm -For GuestAgent -TimeoutSec 240

        (Get-KvmVmGuestInfo -Connection $c -Name "$p-vm").HostName | Should -Be 'kvmps-e2e'
        # runcmd runs late in the first boot: give it a moment after the agent is up
        $deadline = [datetime]::Now.AddSeconds(120)
        do {
            $r = Invoke-KvmVmGuestCommand -Connection $c -Name "$p-vm" -Command 'cat /var/tmp/kvmps-marker 2>/dev/null; true'
            if ($r.StdOut -match 'kvmps-e2e-marker') { break }
            Start-Sleep -Seconds 3
        } while ([datetime]::Now -lt $deadline)
        $r.StdOut.Trim() | Should -Be 'kvmps-e2e-marker'
        (Invoke-KvmVmGuestCommand -Connection $c -Name "$p-vm" -Command 'id -un kvmps').StdOut.Trim() | Should -Be 'kvmps' -Because 'the -User account exists'
    }

    It 'checkpoints, changes a file, restores, and sees the old content' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $s = Checkpoint-KvmVm -Connection $c -Name "$p-vm" -SnapshotName before-change -Passthru
        $s.HasMemory | Should -BeTrue
        $null = Invoke-KvmVmGuestCommand -Connection $c -Name "$p-vm" -Command 'echo changed > /var/tmp/kvmps-marker; sync'
        (Invoke-KvmVmGuestCommand -Connection $c -Name "$p-vm" -Command 'cat /var/tmp/kvmps-marker').StdOut.Trim() | Should -Be 'changed'
        $s | Restore-KvmSnapshot -Confirm:$false
        $null = Wait-KvmVm -Connection $c -Name "$p-vm" -For GuestAgent -TimeoutSec 120
        (Invoke-KvmVmGuestCommand -Connection $c -Name "$p-vm" -Command 'cat /var/tmp/kvmps-marker').StdOut.Trim() | Should -Be 'kvmps-e2e-marker'
    }

    It 'removes the VM with its overlay and seed, never the base image' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $disks = @((Get-KvmVm -Connection $c -Name "$p-vm").Disks.Path | Where-Object { $_ })
        $disks.Count | Should -Be 2   # the overlay and the seed ISO
        $disks | Where-Object { $_ -eq $image } | Should -BeNullOrEmpty
        Remove-KvmVm -Connection $c -Name "$p-vm" -RemoveStorage -Force -Confirm:$false
        foreach ($d in $disks) { $d | Should -Not -Exist }
        $image | Should -Exist
    }
}
