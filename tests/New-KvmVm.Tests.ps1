BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'New-KvmVm on test:///default' -Tag TestDriver {
    BeforeAll { $script:p = "kvmps-n-$([guid]::NewGuid().ToString('N').Substring(0, 6))" }
    AfterAll { Get-KvmVm -Connection test:///default -Name "$p*" | Remove-KvmVm -Force -Confirm:$false }

    It 'creates a VM with exactly the resources asked for' {
        $vm = New-KvmVm -Connection test:///default -Name "$p-a" -CpuCount 3 -MemoryBytes 256MB -MaxMemoryBytes '1GiB' -NoNetwork -Description 'first' 
        $vm.Name | Should -Be "$p-a"
        $vm.CpuCount | Should -Be 3
        $vm.MemoryBytes | Should -Be 256MB
        $vm.MaxMemoryBytes | Should -Be 1GB
        $vm.State | Should -Be 'ShutOff'
        $vm.Description | Should -Be 'first'
        $vm.NetworkAdapters | Should -BeNullOrEmpty
    }

    It 'rejects a name that closes the name element, creating nothing' {
        $evil = "$p-x</name><vcpu>64</vcpu>"
        $null = New-KvmVm -Connection test:///default -Name $evil -CpuCount 1 -MemoryBytes 64MB -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidName,*'
        $err[0].TargetObject | Should -Be $evil
        Get-KvmVm -Connection test:///default -Name "$p-x*" | Should -BeNullOrEmpty
    }

    It 'stores a name full of markup exactly and it changes nothing else' {
        $evil = "$p-x<name><vcpu>64<vcpu>&'`"ü"
        $vm = New-KvmVm -Connection test:///default -Name $evil -CpuCount 1 -MemoryBytes 64MB -NoNetwork -Description "<b>bold</b>`nsecond line"
        $vm.Name | Should -BeExactly $evil
        $vm.CpuCount | Should -Be 1
        (Get-KvmVm -Connection test:///default -Name $evil).Description | Should -BeExactly "<b>bold</b>`nsecond line"
    }

    It 'rejects a name with a newline as InvalidName and creates nothing' {
        $null = New-KvmVm -Connection test:///default -Name "$p-bad`nname" -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidName,*'
        Get-KvmVm -Connection test:///default -Name "$p-bad*" | Should -BeNullOrEmpty
    }

    It 'refuses an existing name with VmExists' {
        $null = New-KvmVm -Connection test:///default -Name "$p-a" -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmExists,*'
        (Get-KvmVm -Connection test:///default -Name "$p-a").CpuCount | Should -Be 3
    }

    It 'rejects sizes it cannot read, and too little memory' {
        { New-KvmVm -Connection test:///default -Name "$p-s" -MemoryBytes 'lots' } | Should -Throw -ErrorId 'ParameterArgumentTransformationError,KvmPS.Commands.NewKvmVmCommand'
        $null = New-KvmVm -Connection test:///default -Name "$p-s" -MemoryBytes 1MB -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidVmSpec,*'
        $err[0].Exception.Message | Should -Match 'memory'
        Get-KvmVm -Connection test:///default -Name "$p-s" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'leaves no trace with -WhatIf' {
        New-KvmVm -Connection test:///default -Name "$p-w" -DiskSizeBytes 1GB -NoNetwork -WhatIf
        Get-KvmVm -Connection test:///default -Name "$p-w" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'fails cleanly on a missing pool or network' {
        $null = New-KvmVm -Connection test:///default -Name "$p-p" -DiskSizeBytes 1GB -StoragePool "$p-nopool" -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'StoragePoolNotFound,*'
        $null = New-KvmVm -Connection test:///default -Name "$p-n" -Network "$p-nonet" -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotFound,*'
        Get-KvmVm -Connection test:///default -Name "$p-[pn]" | Should -BeNullOrEmpty
    }

    It 'creates from a hashtable spec' {
        $vm = New-KvmVm -Connection test:///default -Spec @{ name = "$p-h"; cpu = 2; memory = '128MiB'; maxMemory = 512MB; noNetwork = $true; title = 'from hashtable' }
        $vm.CpuCount | Should -Be 2
        $vm.MemoryBytes | Should -Be 128MB
        $vm.MaxMemoryBytes | Should -Be 512MB
        $vm.Title | Should -Be 'from hashtable'
    }

    It 'creates from a YAML file' {
        $file = Join-Path $TestDrive 'vm.yaml'
        @"
name: $p-y
cpu: 2
memory: 192MiB
noNetwork: true
description: |
  line one
  line two
"@ | Set-Content $file
        $vm = New-KvmVm -Connection test:///default -Spec $file
        $vm.CpuCount | Should -Be 2
        $vm.MemoryBytes | Should -Be 192MB
        $vm.Description | Should -Be "line one`nline two`n"
    }

    It 'names the unknown key with line and column, and defines nothing' {
        $file = Join-Path $TestDrive 'bad.yaml'
        "name: $p-u`ncpu: 1`nmemroy: 1GiB`n" | Set-Content $file
        $null = New-KvmVm -Connection test:///default -Spec $file -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidVmSpec,*'
        $err[0].Exception.Message | Should -Match 'memroy'
        $err[0].Exception.Message | Should -Match 'line 3'
        $err[0].Exception.Line | Should -Be 3
        $err[0].Exception.Column | Should -Be 1
        $err[0].TargetObject | Should -Be $file
        Get-KvmVm -Connection test:///default -Name "$p-u" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'reports wrong types and bad indentation' {
        $file = Join-Path $TestDrive 'type.yaml'
        "name: $p-t`ncpu: two`n" | Set-Content $file
        $null = New-KvmVm -Connection test:///default -Spec $file -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].Exception.Key | Should -Be 'cpu'
        $err[0].Exception.Line | Should -Be 2

        "name: $p-t`n  cpu: 1`n memory: 1GiB`n" | Set-Content $file
        $null = New-KvmVm -Connection test:///default -Spec $file -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'InvalidVmSpec,*'
        $err2[0].Exception.Line | Should -BeGreaterThan 0
        Get-KvmVm -Connection test:///default -Name "$p-t" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}

Describe 'VM life cycle on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:p = "kvmps-l-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $script:vm = New-KvmVm -Connection test:///default -Name "$p-1" -CpuCount 2 -MemoryBytes 256MB -NoNetwork -Start
    }
    AfterAll { Get-KvmVm -Connection test:///default -Name "$p*" | Remove-KvmVm -Force -Confirm:$false }

    It 'suspends, resumes, saves and starts again' {
        ($vm | Suspend-KvmVm -Passthru).State | Should -Be 'Paused'
        ($vm | Resume-KvmVm -Passthru).State | Should -Be 'Running'
        $saved = $vm | Stop-KvmVm -Save -Passthru
        $saved.State | Should -Be 'ShutOff'
        $saved.HasManagedSave | Should -BeTrue
        ($vm | Start-KvmVm -Passthru).State | Should -Be 'Running'
    }

    It 'gives VmStateInvalid with the current state for the wrong state' {
        $null = $vm | Resume-KvmVm -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmStateInvalid,*'
        $err[0].Exception.Message | Should -Match 'Running'
    }

    It 'turns off and waits for the state' {
        $vm | Stop-KvmVm -TurnOff
        ($vm | Wait-KvmVm -State ShutOff -TimeoutSec 5 -Passthru).State | Should -Be 'ShutOff'
    }

    It 'times out waiting with WaitTimeout' {
        $null = $vm | Wait-KvmVm -State Paused -TimeoutSec 1 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'WaitTimeout,*'
    }

    It 'changes vCPUs, memory, title and autostart of a stopped VM' {
        $r = $vm | Set-KvmVm -CpuCount 1 -MemoryBytes 128MB -Title 'set' -Autostart $true -Passthru
        $r.CpuCount | Should -Be 1
        $r.MemoryBytes | Should -Be 128MB
        $r.Title | Should -Be 'set'
        $r.Autostart | Should -BeTrue
    }

    It 'refuses more than the maximum' {
        $null = $vm | Set-KvmVm -MemoryBytes 512MB -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'MemoryTooHigh,*'
        $null = $vm | Set-KvmVm -CpuCount 4 -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'CpuCountTooHigh,*'
        (Get-KvmVm -Connection test:///default -Name "$p-1").MemoryBytes | Should -Be 128MB
    }

    It 'refuses more vCPUs or memory than the host has' {
        $null = $vm | Set-KvmVm -MaxCpuCount 1000 -CpuCount 1000 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InsufficientHostResources,*'
        $null = $vm | Set-KvmVm -MaxMemoryBytes 1TB -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'InsufficientHostResources,*'
        (Get-KvmVm -Connection test:///default -Name "$p-1").CpuCount | Should -Be 1
    }

    It 'renames a stopped VM and finds it by the new name' {
        $r = Rename-KvmVm -Connection test:///default -Name "$p-1" -NewName "$p-2" -Passthru
        $r.Name | Should -Be "$p-2"
        $r.Uuid | Should -Be $vm.Uuid
        Get-KvmVm -Connection test:///default -Name "$p-1" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'acts on piped VMs with -WhatIf without changing them' {
        Start-KvmVm -Connection test:///default -Name "$p-2"
        Get-KvmVm -Connection test:///default -Name "$p*" | Stop-KvmVm -TurnOff -WhatIf
        (Get-KvmVm -Connection test:///default -Name "$p-2").State | Should -Be 'Running'
    }

    It 'refuses to remove a running VM without -Force' {
        $null = Remove-KvmVm -Connection test:///default -Name "$p-2" -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmStateInvalid,*'
        (Get-KvmVm -Connection test:///default -Name "$p-2").State | Should -Be 'Running'
        Remove-KvmVm -Connection test:///default -Name "$p-2" -Force -Confirm:$false
        Get-KvmVm -Connection test:///default -Name "$p-2" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'completes VM names for the life-cycle cmdlets' {
        $null = New-KvmVm -Connection test:///default -Name "$p-c" -NoNetwork
        $null = Get-KvmVm -Connection test:///default
        (Complete "Stop-KvmVm -Connection test:///default -Name $p-").CompletionText | Should -Contain "$p-c"
    }
}

Describe 'Export-KvmVm and Import-KvmVm on test:///default' -Tag TestDriver {
    BeforeAll {
        $script:p = "kvmps-e-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $script:vm = New-KvmVm -Connection test:///default -Name "$p-src" -CpuCount 2 -MemoryBytes 256MB -MaxMemoryBytes 512MB -NoNetwork -Description "exported`nVM"
    }
    AfterAll { Get-KvmVm -Connection test:///default -Name "$p*" | Remove-KvmVm -Force -Confirm:$false }

    It 'round-trips through YAML to an equivalent VM' {
        $file = $vm | Export-KvmVm -Path (Join-Path $TestDrive 'src.yaml')
        $file.Exists | Should -BeTrue
        $copy = Import-KvmVm -Connection test:///default -Path $file.FullName -Name "$p-copy"
        $copy.CpuCount | Should -Be 2
        $copy.MemoryBytes | Should -Be 256MB
        $copy.MaxMemoryBytes | Should -Be 512MB
        $copy.Description | Should -Be "exported`nVM"
        $copy.Uuid | Should -Not -Be $vm.Uuid
    }

    It 'round-trips through XML with a new name and id' {
        $file = $vm | Export-KvmVm -Path (Join-Path $TestDrive 'src.xml')
        (Get-Content $file.FullName -Raw) | Should -Match '<domain'
        $copy = Import-KvmVm -Connection test:///default -Path $file.FullName -Name "$p-xml" -GenerateNewId
        $copy.Uuid | Should -Not -Be $vm.Uuid
        $copy.MaxMemoryBytes | Should -Be 512MB
    }

    It 'refuses to import over an existing VM or overwrite a file' {
        $file = Join-Path $TestDrive 'dup.xml'
        $null = $vm | Export-KvmVm -Path $file
        $null = Import-KvmVm -Connection test:///default -Path $file -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmExists,*'
        $null = $vm | Export-KvmVm -Path $file -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'FileExists,*'
    }
}

Describe 'Deep, recursive and self-referencing specs and user data (in a child pwsh)' -Tag TestDriver {
    BeforeAll {
        # The pwsh running these tests, also when it is the dotnet tool (dotnet <PSHOME>/pwsh.dll).
        $script:pwsh = [Diagnostics.Process]::GetCurrentProcess().MainModule.FileName
        [string[]] $script:pwshArgs = if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { [IO.Path]::Combine($PSHOME, 'pwsh.dll') } else { @() }
        # A 40 KB spec nested 20,000 levels; a spec at the limit (64 levels: the spec, cloudInit, then 62 in userData) and one level more.
        $script:deep = Join-Path $TestDrive 'deep.yaml'
        Set-Content -Path $deep -Value "name: kvmps-deep`nnoNetwork: true`ncloudInit:`n  userData: $('[' * 20000)$(']' * 20000)"
        function New-LimitSpec([string] $Path, [int] $Levels) {
            Set-Content -Path $Path -Value "name: kvmps-limit`nnoNetwork: true`ncloudInit:`n  userData: $('{a: ' * $Levels)1$('}' * $Levels)"
        }
        $script:limit = Join-Path $TestDrive 'limit.yaml'
        New-LimitSpec $limit 62
        $script:over = Join-Path $TestDrive 'over.yaml'
        New-LimitSpec $over 63
        $script:child = Join-Path $TestDrive 'child.ps1'
        Set-Content -Path $child -Value @'
param($Module, $Deep, $Limit, $Over)
Import-Module $Module
$ErrorActionPreference = 'Continue'
function Describe-Error($e) { if ($e) { "$($e[0].FullyQualifiedErrorId.Split(',')[0])|$($e[0].Exception.Key)|$($e[0].Exception.Line)|$($e[0].Exception.Message)" } else { 'none' } }
$r = [ordered]@{}
New-KvmVm -Connection test:///default -Spec $Deep -WhatIf -ErrorAction SilentlyContinue -ErrorVariable e1 | Out-Null
$r.spec = Describe-Error $e1
Import-KvmVm -Connection test:///default -Path $Deep -WhatIf -ErrorAction SilentlyContinue -ErrorVariable e2 | Out-Null
$r.import = Describe-Error $e2
New-KvmVm -Connection test:///default -Name kvmps-cc -NoNetwork -CloudInit -UserData "#cloud-config`n? &a [*a]`n: 1`n" -WhatIf -ErrorAction SilentlyContinue -ErrorVariable e3 | Out-Null
$r.cloudConfig = Describe-Error $e3
$h = @{ packages = @('nginx') }; $h.self = $h
New-KvmVm -Connection test:///default -Name kvmps-ht -NoNetwork -CloudInit -UserData $h -WhatIf -ErrorAction SilentlyContinue -ErrorVariable e4 | Out-Null
$r.hashtable = Describe-Error $e4
New-KvmVm -Connection test:///default -Spec $Limit -WhatIf -ErrorAction SilentlyContinue -ErrorVariable e5 | Out-Null
$r.limit = Describe-Error $e5
New-KvmVm -Connection test:///default -Spec $Over -WhatIf -ErrorAction SilentlyContinue -ErrorVariable e6 | Out-Null
$r.over = Describe-Error $e6
'RESULT ' + ($r | ConvertTo-Json -Compress)
'@
        $out = & $pwsh @pwshArgs -NoProfile -NonInteractive -File $child $ModulePath $deep $limit $over 2>&1
        $script:exit = $LASTEXITCODE
        $script:text = $out -join "`n"
        $line = $out | Where-Object { "$_" -like 'RESULT *' } | Select-Object -First 1
        $script:r = if ($line) { "$line".Substring(7) | ConvertFrom-Json } else { $null }
    }

    It 'keeps the child pwsh running to the end (no stack overflow)' {
        $text | Should -Not -Match 'Stack overflow'
        $exit | Should -Be 0 -Because $text
        $r | Should -Not -BeNullOrEmpty -Because $text
    }

    It 'refuses the 20,000-level spec with InvalidVmSpec at its line (New-KvmVm -Spec and Import-KvmVm)' {
        $r.spec | Should -BeLike 'InvalidVmSpec|yaml|4|*nested more than 64 levels*'
        $r.import | Should -BeLike 'InvalidVmSpec|yaml|4|*nested more than 64 levels*'
    }

    It 'refuses the recursive alias in a cloud-config key' {
        $r.cloudConfig | Should -BeLike 'InvalidVmSpec|userData|2|*recursive alias*'
    }

    It 'refuses a hashtable that contains itself as -UserData' {
        $r.hashtable | Should -BeLike 'InvalidVmSpec|userData.self||*contains itself*'
    }

    It 'accepts a spec nested exactly 64 levels and refuses 65' {
        $r.limit | Should -Be 'none'
        $r.over | Should -BeLike 'InvalidVmSpec|yaml|4|*nested more than 64 levels*'
    }
}

Describe 'New-KvmVm and the life cycle on qemu:///system' -Tag System {
    BeforeAll {
        $script:skip = -not (Test-SystemLibvirt)
        $script:p = New-TestName 'lc'
        if (-not $skip) {
            $script:net = "$p-net"
            $xml = "<network><name>$net</name><bridge name='kt$([guid]::NewGuid().ToString('N').Substring(0, 8))'/></network>"
            $f = Join-Path $TestDrive 'net.xml'; Set-Content $f $xml
            & virsh -c qemu:///system net-create $f *> $null
        }
    }
    AfterAll {
        if (-not $skip) {
            Remove-SystemTestObjects $p
            & virsh -c qemu:///system net-destroy $net *> $null
        }
    }

    It 'creates a running VM with exactly the resources and a new disk' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = New-KvmVm -Connection qemu:///system -Name "$p-a" -CpuCount 2 -MemoryBytes 256MB -DiskSizeBytes 1GB -Network $net -Start
        $vm.State | Should -Be 'Running'
        $vm.CpuCount | Should -Be 2
        $vm.MaxMemoryBytes | Should -Be 256MB
        $vm.Accelerator | Should -Be (Get-ExpectedAccelerator)
        $vm.Disks | Should -HaveCount 1
        $vm.Disks[0].Format | Should -Be 'qcow2'
        $vm.NetworkAdapters[0].Source | Should -Be $net
        $vm.NetworkAdapters[0].Model | Should -Be 'virtio'
        (& virsh -c qemu:///system vol-info $vm.Disks[0].Path) -join ' ' | Should -Match 'Capacity:\s+1\.00 GiB'
        (Get-KvmVmConsole -Connection qemu:///system -Name "$p-a").DisplayUri | Should -Match '^vnc://127\.0\.0\.1:\d+$'
    }

    It 'goes through suspend, resume, turn off, start and restart' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $c = 'qemu:///system'
        (Suspend-KvmVm -Connection $c -Name "$p-a" -Passthru).State | Should -Be 'Paused'
        (Resume-KvmVm -Connection $c -Name "$p-a" -Passthru).State | Should -Be 'Running'
        (Stop-KvmVm -Connection $c -Name "$p-a" -TurnOff -Passthru).State | Should -Be 'ShutOff'
        (Start-KvmVm -Connection $c -Name "$p-a" -Passthru).State | Should -Be 'Running'
        (Restart-KvmVm -Connection $c -Name "$p-a" -Force -Passthru).State | Should -Be 'Running'
    }

    It 'times out a graceful stop of a guest with no OS, then -Force powers it off' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $null = Stop-KvmVm -Connection qemu:///system -Name "$p-a" -TimeoutSec 2 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'StopTimeout,*'
        (Get-KvmVm -Connection qemu:///system -Name "$p-a").State | Should -Be 'Running'
        (Stop-KvmVm -Connection qemu:///system -Name "$p-a" -TimeoutSec 2 -Force -Passthru -WarningAction SilentlyContinue).State | Should -Be 'ShutOff'
    }

    It 'shows vCPU and memory changes on the object' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $r = Set-KvmVm -Connection qemu:///system -Name "$p-a" -CpuCount 1 -MemoryBytes 128MB -Passthru
        $r.CpuCount | Should -Be 1
        $r.MemoryBytes | Should -Be 128MB
        $r.MaxMemoryBytes | Should -Be 256MB
    }

    It 'rolls back everything when the disk exists already' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $disk = (Get-KvmVm -Connection qemu:///system -Name "$p-a").Disks[0].Path
        $null = New-KvmVm -Connection qemu:///system -Name "$p-b" -DiskPath $disk -DiskSizeBytes 1GB -NoNetwork -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DiskExists,*'
        Get-KvmVm -Connection qemu:///system -Name "$p-b" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'rolls back the new volume when the start fails' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        # A kernel that does not exist: define succeeds, start fails, volume and definition go away again.
        $null = New-KvmVm -Connection qemu:///system -Name "$p-c" -DiskSizeBytes 1GB -NoNetwork -Kernel "/nonexistent/$p-vmlinuz" -Start -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'VmCreateFailed,*'
        $err[0].Exception.Step | Should -Be 'start the VM'
        Get-KvmVm -Connection qemu:///system -Name "$p-c" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        (& virsh -c qemu:///system vol-list default) -join "`n" | Should -Not -Match "$p-c"
    }

    It 'creates an overlay on a base image instead of copying it' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $base = (Get-KvmVm -Connection qemu:///system -Name "$p-a").Disks[0].Path
        $vm = New-KvmVm -Connection qemu:///system -Name "$p-o" -BaseImage $base -Format qcow2 -DiskSizeBytes 2GB -NoNetwork
        $info = & qemu-img info -U --output=json $vm.Disks[0].Path | ConvertFrom-Json
        $info.'backing-filename' | Should -Be $base
        $info.'virtual-size' | Should -Be 2GB
        Remove-KvmVm -Connection qemu:///system -Name "$p-o" -RemoveStorage -Confirm:$false
        Test-Path $base | Should -BeTrue -Because 'the base image is never removed'
    }

    It 'boots a UEFI VM with its own NVRAM and removes the NVRAM with the VM' {
        # TCG: OVMF under this machine's nested KVM pauses itself (an emulation failure), so UEFI tests emulate.
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = New-KvmVm -Connection qemu:///system -Name "$p-u" -Firmware Uefi -Accelerator Qemu -MemoryBytes 256MB -NoNetwork -Start
        $vm.Firmware | Should -Be 'Uefi'
        $vm.State | Should -Be 'Running'
        $nvram = ([xml](& virsh -c qemu:///system dumpxml "$p-u")).domain.os.nvram.'#text'
        $nvram | Should -Exist
        Remove-KvmVm -Connection qemu:///system -Name "$p-u" -Force -Confirm:$false
        $nvram | Should -Not -Exist
    }

    It 'uses QEMU emulation when asked, whatever the host offers' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $vm = New-KvmVm -Connection qemu:///system -Name "$p-q" -Accelerator Qemu -MemoryBytes 64MB -NoNetwork -Start
        $vm.Accelerator | Should -Be 'Qemu'
        $vm.State | Should -Be 'Running'
        Remove-KvmVm -Connection qemu:///system -Name "$p-q" -Force -Confirm:$false
    }

    It 'round-trips a real VM through YAML export and import' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $file = Export-KvmVm -Connection qemu:///system -Name "$p-a" -Path (Join-Path $TestDrive 'a.yaml')
        $before = Get-KvmVm -Connection qemu:///system -Name "$p-a" | Select-Object Name, CpuCount, MemoryBytes, MaxMemoryBytes, Accelerator, Disks
        Remove-KvmVm -Connection qemu:///system -Name "$p-a" -Confirm:$false
        $after = Import-KvmVm -Connection qemu:///system -Path $file.FullName
        $after.Name | Should -Be $before.Name
        $after.CpuCount | Should -Be $before.CpuCount
        $after.MemoryBytes | Should -Be $before.MemoryBytes
        $after.MaxMemoryBytes | Should -Be $before.MaxMemoryBytes
        $after.Accelerator | Should -Be $before.Accelerator
        $after.Disks[0].Path | Should -Be $before.Disks[0].Path
        $after.NetworkAdapters[0].Source | Should -Be $net
    }

    It 'removes the VM and its storage, leaving no domain and no volume' {
        if ($skip) { Set-ItResult -Skipped -Because 'no libvirtd on qemu:///system'; return }
        $disk = (Get-KvmVm -Connection qemu:///system -Name "$p-a").Disks[0].Path
        Remove-KvmVm -Connection qemu:///system -Name "$p-a" -RemoveStorage -Force -Confirm:$false
        Get-KvmVm -Connection qemu:///system -Name "$p-a" -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Test-Path $disk | Should -BeFalse
    }
}
