# The managed backend's remote transports against this machine's libvirtd: SSH (sshd on 127.0.0.1:2222) and
# TLS (libvirtd on 127.0.0.1:16514), both set up by .ci/provision-remote. Skipped when that setup is absent.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:ci = '/var/lib/kvmps-ci'
    $script:key = "$ci/ssh/id_ed25519"
    $script:known = "$ci/ssh/known_hosts"

    function Test-Readable([string] $Path) {
        try { [IO.File]::OpenRead($Path).Dispose(); $true } catch { $false }
    }

    function Test-Listening([int] $Port) {
        $tcp = [Net.Sockets.TcpClient]::new()
        try { $tcp.ConnectAsync('127.0.0.1', $Port).Wait(2000) -and $tcp.Connected } catch { $false } finally { $tcp.Dispose() }
    }

    $script:sshReady = (Test-Path "$ci/ssh.ready") -and (Test-Readable $key) -and (Test-Readable $known) -and (Test-Readable "$ci/ssh/password") -and (Test-Listening 2222)
    $script:tlsReady = (Test-Path "$ci/tls.ready") -and (Test-Readable "$ci/pki/client/clientkey.pem") -and (Test-Readable "$ci/pki/wrongca/clientkey.pem") -and (Test-Listening 16514)
    # The standard client files are ours (the setup leaves a PKI it did not create alone).
    $script:tlsDefaults = $tlsReady -and (Test-Readable '/etc/pki/libvirt/private/clientkey.pem') -and
        ((Get-FileHash '/etc/pki/libvirt/clientcert.pem').Hash -eq (Get-FileHash "$ci/pki/client/clientcert.pem").Hash)
    $script:sshBase = 'qemu+ssh://root@127.0.0.1:2222/system'
    $script:sshUri = "$($sshBase)?keyfile=$key&known_hosts=$known"
    $script:tlsUri = 'qemu+tls://127.0.0.1/system'

    # The pwsh running these tests, also when it is the dotnet tool (dotnet <PSHOME>/pwsh.dll).
    $script:pwsh = [Diagnostics.Process]::GetCurrentProcess().MainModule.FileName
    [string[]] $script:pwshArgs = if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { [IO.Path]::Combine($PSHOME, 'pwsh.dll') } else { @() }

    function Get-Sha256([string] $Path) { (Get-FileHash -Algorithm SHA256 -Path $Path).Hash }

    # virsh on the local daemon (the one behind sshd and the TLS listener), without its blank lines.
    function Invoke-Virsh { (& virsh -c qemu:///system @args 2>$null) | Where-Object { $_ } | ForEach-Object Trim }

    # OpenSSH's own fingerprint of the test server's host key ("SHA256:...").
    function Get-HostKeyFingerprint {
        ((& ssh-keygen -lf "$ci/ssh/ssh_host_ed25519_key.pub") -split '\s+')[1]
    }
}

Describe 'Managed backend over SSH (qemu+ssh through SSH.NET)' -Tag System, Managed {
    BeforeAll {
        $script:skip = -not $sshReady
        if ($skip) { return }
        $script:p = New-TestName 'ssh'
        $script:tmp = New-Item -ItemType Directory -Path ([IO.Path]::Combine([IO.Path]::GetTempPath(), $p))
        $script:poolDir = New-Item -ItemType Directory -Path (Join-Path $tmp 'pool')
        $script:c = Connect-KvmHost -Uri $sshUri -Backend Managed -NotDefault
        $script:pool = (New-KvmStoragePool -Connection $c -Name "$p-pool" -Type Dir -Path $poolDir -Start).Name
    }

    AfterAll {
        if ($skip) { return }
        Remove-SystemTestObjects $p
        & virsh -c qemu:///system pool-destroy "$p-pool" *> $null
        & virsh -c qemu:///system pool-undefine "$p-pool" *> $null
        if ($c) { $c.Dispose() }
        Remove-Item $tmp -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'connects as root with a key and a known_hosts file, through the managed backend' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $c.Backend | Should -Be 'Managed'
        $c.Hypervisor | Should -Be 'QEMU'
        $c.IsAlive | Should -BeTrue
        $c.IsSecure | Should -BeTrue
        $c.Uri | Should -Be $sshUri
        $c.LibvirtVersion | Should -Be ([version]((Invoke-Virsh version --daemon | Select-String 'daemon: ([\d.]+)').Matches[0].Groups[1].Value))
        $c.HostName | Should -Be (Invoke-Virsh hostname)
        (Get-KvmHost -Connection $c).HostName | Should -Be (Invoke-Virsh hostname)
    }

    It 'loads SSH.NET in the module''s load context only' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $alc = [System.Runtime.Loader.AssemblyLoadContext]::All | Where-Object Name -eq 'KvmPS'
        $alc.Assemblies.GetName().Name | Should -Contain 'Renci.SshNet'
        $alc.Assemblies.GetName().Name | Should -Contain 'KvmPS.Transport.Ssh'
        [System.Runtime.Loader.AssemblyLoadContext]::Default.Assemblies.GetName().Name | Should -Not -Contain 'Renci.SshNet'
        'Renci.SshNet.SshClient' -as [type] | Should -BeNullOrEmpty
    }

    It 'creates, lists, starts, checkpoints, stops and removes a VM over SSH' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $name = "$p-vm"
        $vm = New-KvmVm -Connection $c -Name $name -NoNetwork -MemoryBytes 128MB -DiskSizeBytes 64MB -StoragePool $pool
        $vm.Name | Should -Be $name
        $vm.Connection | Should -Be $c
        Invoke-Virsh domstate $name | Should -Be 'shut off' -Because 'the VM exists on the daemon behind sshd'
        (Get-KvmVm -Connection $c).Name | Should -Contain $name
        (Get-KvmVmDisk -Connection $c -Name $name).Path | Should -BeLike "$poolDir*"

        Start-KvmVm -Connection $c -Name $name
        (Get-KvmVm -Connection $c -Name $name).State | Should -Be 'Running'
        Invoke-Virsh domstate $name | Should -Be 'running'

        Checkpoint-KvmVm -Connection $c -Name $name -SnapshotName first
        (Get-KvmSnapshot -Connection $c -VMName $name).Name | Should -Be 'first'
        Invoke-Virsh snapshot-list $name --name | Should -Be 'first'

        Stop-KvmVm -Connection $c -Name $name -TurnOff
        (Get-KvmVm -Connection $c -Name $name).State | Should -Be 'ShutOff'

        Remove-KvmVm -Connection $c -Name $name -RemoveStorage -Confirm:$false
        (Get-KvmVm -Connection $c).Name | Should -Not -Contain $name
        & virsh -c qemu:///system dominfo $name *> $null
        $LASTEXITCODE | Should -Not -Be 0 -Because 'the VM is gone from the daemon'
    }

    It 'uploads a volume over SSH byte for byte (Import-KvmVolume)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $src = Join-Path $tmp 'upload.bin'
        $bytes = [byte[]]::new(3MB + 777)
        [Security.Cryptography.RandomNumberGenerator]::Fill($bytes)
        [IO.File]::WriteAllBytes($src, $bytes)
        $vol = Import-KvmVolume -Connection $c -Path $src -Pool $pool -Name "$p-up.img"
        $vol.Name | Should -Be "$p-up.img"
        $vol.CapacityBytes | Should -Be (3MB + 777)
        $vol.Path | Should -Be (Join-Path $poolDir "$p-up.img")
        Get-Sha256 $vol.Path | Should -Be (Get-Sha256 $src)
    }

    It 'refuses an unknown host key, naming its SHA256 fingerprint; -AcceptHostKey trusts and records it' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $kh = Join-Path $TestDrive 'empty_known_hosts'
        $uri = "$($sshBase)?keyfile=$key&known_hosts=$kh"
        $r = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'SshHostKeyUnknown,*'
        $err[0].CategoryInfo.Category | Should -Be 'AuthenticationError'
        $err[0].TargetObject | Should -Be $uri
        $err[0].Exception.Message | Should -Match 'host key .* is not known'
        $err[0].Exception.Message | Should -Match ([regex]::Escape((Get-HostKeyFingerprint)))
        $err[0].ErrorDetails.RecommendedAction | Should -Match 'AcceptHostKey'
        $kh | Should -Not -Exist -Because 'nothing is recorded without -AcceptHostKey'

        $ok = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -AcceptHostKey
        $ok.IsAlive | Should -BeTrue
        $ok.Dispose()
        $kh | Should -FileContentMatchExactly ([regex]::Escape("[127.0.0.1]:2222 $((Get-Content "$ci/ssh/ssh_host_ed25519_key.pub").Split(' ')[0..1] -join ' ')"))

        # now known: no switch needed
        $again = Connect-KvmHost -Uri "$uri&x=1" -Backend Managed -NotDefault
        $again.IsAlive | Should -BeTrue
        $again.Dispose()
    }

    It 'refuses a changed host key, even with -AcceptHostKey' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $kh = Join-Path $TestDrive 'changed_known_hosts'
        # another ed25519 key (the client's) recorded for the server
        Set-Content -Path $kh -Value "[127.0.0.1]:2222 $((Get-Content "$key.pub").Split(' ')[0..1] -join ' ')"
        $before = Get-Content $kh -Raw
        $uri = "$($sshBase)?keyfile=$key&known_hosts=$kh"
        $r = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -AcceptHostKey -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'SshHostKeyChanged,*'
        $err[0].Exception.Message | Should -Match 'CHANGED'
        $err[0].Exception.Message | Should -Match ([regex]::Escape((Get-HostKeyFingerprint)))
        Get-Content $kh -Raw | Should -Be $before -Because 'a changed key is never recorded'
    }

    It 'refuses a key of a new type for a host known with another type, even with -AcceptHostKey' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        # known_hosts lists the server with an RSA key; the server has only its ed25519 key.
        & ssh-keygen -q -t rsa -b 2048 -N '' -C kvmps-test -f (Join-Path $TestDrive 'other_rsa')
        $kh = Join-Path $TestDrive 'rsa_known_hosts'
        Set-Content -Path $kh -Value "[127.0.0.1]:2222 $((Get-Content (Join-Path $TestDrive 'other_rsa.pub')).Split(' ')[0..1] -join ' ')"
        $before = Get-Content $kh -Raw
        $uri = "$($sshBase)?keyfile=$key&known_hosts=$kh"
        $r = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -AcceptHostKey -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'SshHostKeyChanged,*'
        $err[0].Exception.Message | Should -Match 'CHANGED type: known_hosts lists it with ssh-rsa'
        $err[0].Exception.Message | Should -Match ([regex]::Escape((Get-HostKeyFingerprint)))
        $err[0].ErrorDetails.RecommendedAction | Should -Match 'ssh-keygen -R'
        Get-Content $kh -Raw | Should -Be $before -Because 'a key of a new type is not recorded'

        # The documented way to replace it: remove the old entry, then accept the new key.
        & ssh-keygen -R '[127.0.0.1]:2222' -f $kh *> $null
        $ok = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -AcceptHostKey
        $ok.IsAlive | Should -BeTrue
        $ok.Dispose()
        $kh | Should -FileContentMatch 'ssh-ed25519'
    }

    It 'fails with LibvirtAuthFailed naming user@host on a wrong password' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $uri = "qemu+ssh://kvmpsci@127.0.0.1:2222/system?known_hosts=$known"
        $bad = [pscredential]::new('kvmpsci', (ConvertTo-SecureString 'not-the-password' -AsPlainText -Force))
        $r = Connect-KvmHost -Uri $uri -Credential $bad -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'LibvirtAuthFailed,*'
        $err[0].CategoryInfo.Category | Should -Be 'AuthenticationError'
        $err[0].TargetObject | Should -Be $uri
        $err[0].Exception.Message | Should -Match 'kvmpsci@127\.0\.0\.1:2222'
        $err[0].Exception.Message | Should -Not -Match 'not-the-password'
    }

    It 'logs in with the right password (-Credential) as that user: their own session daemon answers' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        # qemu:///session needs no polkit decision (qemu:///system for a non-root user depends on polkit and
        # D-Bus, which differ between hosts): the remote virt-ssh-helper starts kvmpsci's own daemon.
        $uri = "qemu+ssh://kvmpsci@127.0.0.1:2222/session?known_hosts=$known"
        $good = [pscredential]::new('kvmpsci', (ConvertTo-SecureString (Get-Content "$ci/ssh/password" -Raw).Trim() -AsPlainText -Force))
        $r = Connect-KvmHost -Uri $uri -Credential $good -Backend Managed -NotDefault
        try {
            $r.Backend | Should -Be 'Managed'
            $r.Uri | Should -Be $uri
            $r.IsAlive | Should -BeTrue
            $r.Hypervisor | Should -Be 'QEMU'
            # A VM defined through it lands in kvmpsci's session, not in root's system daemon: we logged in as kvmpsci.
            $name = New-TestName 'pw'
            $vm = New-KvmVm -Connection $r -Name $name -NoNetwork -MemoryBytes 64MB
            try {
                $vm.Name | Should -Be $name
                $session = @(& su -s /bin/sh kvmpsci -c 'virsh -c qemu:///session list --all --name' 2>&1 | ForEach-Object Trim)
                $session | Should -Contain $name -Because "kvmpsci's session daemon holds the VM ($($session -join ', '))"
                Invoke-Virsh list --all --name | Should -Not -Contain $name
            }
            finally { Get-KvmVm -Connection $r -Name $name -ErrorAction SilentlyContinue | Remove-KvmVm -Force -Confirm:$false }
            (Get-KvmVm -Connection $r).Name | Should -Not -Contain $name
        }
        finally { $r.Dispose() }
    }

    It 'reports what the remote proxy said when it cannot reach the socket' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $uri = "$sshUri&socket=/nonexistent/$p-sock"
        $r = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
        $err[0].Exception.Message | Should -Match "/nonexistent/$p-sock"
    }

    It 'reaches the daemon with proxy=netcat and proxy=native alike' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        foreach ($proxy in 'netcat', 'native') {
            $x = Connect-KvmHost -Uri "$sshUri&proxy=$proxy" -Backend Managed -NotDefault
            $x.Hypervisor | Should -Be 'QEMU' -Because "proxy=$proxy"
            (Get-KvmHost -Connection $x).HostName | Should -Be (Invoke-Virsh hostname)
            $x.Dispose()
        }
        $null = Connect-KvmHost -Uri "$sshUri&proxy=bogus" -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
        $err[0].Exception.Message | Should -Match "unknown proxy 'bogus'"
    }

    It 'works with the native library unavailable: Auto picks the managed backend' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI SSH setup (.ci/provision-remote)'; return }
        $script = @'
$ErrorActionPreference = 'Stop'
Import-Module $args[0]
$c = Connect-KvmHost -Uri $args[1]
$names = (Get-KvmVm -Name $args[2]).Name
"$($c.Backend)|$($c.Hypervisor)|$($c.IsAlive)|$names"
'@
        $file = Join-Path $TestDrive 'auto-managed.ps1'
        Set-Content -Path $file -Value $script
        # a VM of this test's own, defined by virsh: the child must find it through the SSH connection
        $vmName = New-SystemTestVm -Name "$p-auto"
        $saved = $env:KVMPS_LIBVIRT_PATH, $env:KVMPS_BACKEND
        try {
            $env:KVMPS_LIBVIRT_PATH = '/nonexistent/libvirt.so.0'
            $env:KVMPS_BACKEND = $null
            $out = & $pwsh @pwshArgs -NoProfile -NonInteractive -File $file $ModulePath $sshUri $vmName 2>&1
            $exit = $LASTEXITCODE
        }
        finally {
            $env:KVMPS_LIBVIRT_PATH, $env:KVMPS_BACKEND = $saved
            Remove-SystemTestVm $vmName
        }
        $exit | Should -Be 0 -Because ($out | Out-String)
        $parts = ($out | Select-Object -Last 1) -split '\|'
        $parts[0] | Should -Be 'Managed'
        $parts[1] | Should -Be 'QEMU'
        $parts[2] | Should -Be 'True'
        $parts[3] | Should -Be $vmName
    }
}

Describe 'Managed backend over TLS (qemu+tls with libvirt''s x509 files)' -Tag System, Managed {
    BeforeAll {
        $script:skip = -not $tlsReady
    }

    It 'connects with the standard PKI files and verifies the server' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI TLS setup (.ci/provision-remote)'; return }
        if (-not $tlsDefaults) { Set-ItResult -Skipped -Because '/etc/pki/libvirt holds client files the CI setup did not create'; return }
        $t = Connect-KvmHost -Uri $tlsUri -Backend Managed -NotDefault
        try {
            $t.Backend | Should -Be 'Managed'
            $t.Hypervisor | Should -Be 'QEMU'
            $t.IsEncrypted | Should -BeTrue
            $t.IsSecure | Should -BeTrue
            (Get-KvmHost -Connection $t).HostName | Should -Be (Invoke-Virsh hostname)
            $name = "$(New-TestName 'tls')"
            try {
                $vm = New-KvmVm -Connection $t -Name $name -NoNetwork -MemoryBytes 128MB
                $vm.Name | Should -Be $name
                Invoke-Virsh domstate $name | Should -Be 'shut off'
                (Get-KvmVm -Connection $t -Name $name).State | Should -Be 'ShutOff'
            }
            finally { Remove-SystemTestVm $name }
        }
        finally { $t.Dispose() }
    }

    It 'accepts the server by the name in its certificate (localhost) and a ?pkipath= folder' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI TLS setup (.ci/provision-remote)'; return }
        $t = Connect-KvmHost -Uri "qemu+tls://localhost/system?pkipath=$ci/pki/client" -Backend Managed -NotDefault
        $t.IsAlive | Should -BeTrue
        $t.Dispose()
    }

    It 'fails verification against another CA, naming the server certificate (TlsCertificateUntrusted)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI TLS setup (.ci/provision-remote)'; return }
        $uri = "$($tlsUri)?pkipath=$ci/pki/wrongca"
        $r = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'TlsCertificateUntrusted,*'
        $err[0].CategoryInfo.Category | Should -Be 'AuthenticationError'
        $err[0].TargetObject | Should -Be $uri
        $err[0].Exception.Message | Should -Match 'not trusted'
        $server = [Security.Cryptography.X509Certificates.X509Certificate2]::new('/etc/pki/libvirt/servercert.pem')
        $err[0].Exception.Message | Should -Match $server.GetCertHashString([Security.Cryptography.HashAlgorithmName]::SHA256)
        $err[0].ErrorDetails.RecommendedAction | Should -Match 'no_verify'
    }

    It 'reports a client certificate the daemon refuses (TlsClientRefused)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI TLS setup (.ci/provision-remote)'; return }
        if (-not (Test-Readable "$ci/pki/foreignclient/clientkey.pem")) { Set-ItResult -Skipped -Because 'an older CI setup without pki/foreignclient'; return }
        $uri = "$($tlsUri)?pkipath=$ci/pki/foreignclient"
        $r = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'TlsClientRefused,*'
        $err[0].Exception.Message | Should -Match 'refused this client'
        $err[0].Exception.Message | Should -Match 'CN=kvmps-ci-intruder'
    }

    It 'skips server verification with ?no_verify=1' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI TLS setup (.ci/provision-remote)'; return }
        $t = Connect-KvmHost -Uri "$($tlsUri)?pkipath=$ci/pki/wrongca&no_verify=1" -Backend Managed -NotDefault
        $t.IsAlive | Should -BeTrue
        $t.Dispose()
    }

    It 'rejects a server whose certificate is not issued for the host name' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI TLS setup (.ci/provision-remote)'; return }
        # This machine's name, when it resolves to 127.0.0.1: the same listener, a name the certificate does not carry.
        $other = [Net.Dns]::GetHostName()
        $loopback = try { [Net.Dns]::GetHostAddresses($other).IPAddressToString -contains '127.0.0.1' } catch { $false }
        if ($other -eq 'localhost' -or -not $loopback) { Set-ItResult -Skipped -Because "the host name '$other' does not resolve to 127.0.0.1"; return }
        $uri = "qemu+tls://$other/system"
        $r = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'TlsCertificateUntrusted,*'
        $err[0].Exception.Message | Should -Match "not valid for the host name '$([regex]::Escape($other))'"
    }

    It 'names a missing certificate file (KvmConnectionFailed)' {
        if ($skip) { Set-ItResult -Skipped -Because 'no CI TLS setup (.ci/provision-remote)'; return }
        $uri = "$($tlsUri)?pkipath=$TestDrive"
        $r = Connect-KvmHost -Uri $uri -Backend Managed -NotDefault -ErrorAction SilentlyContinue -ErrorVariable err
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KvmConnectionFailed,*'
        $err[0].Exception.Message | Should -Match ([regex]::Escape((Join-Path $TestDrive 'cacert.pem')))
        $err[0].ErrorDetails.RecommendedAction | Should -Match 'pkipath'
    }
}
