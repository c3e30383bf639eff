# Shared by every *.Tests.ps1: imports the built module once per process and offers helpers.
$ErrorActionPreference = 'Stop'
$script:ModulePath = if ($env:KVMPS_MODULE_PATH) { $env:KVMPS_MODULE_PATH } else { [IO.Path]::Combine($PSScriptRoot, '..', 'out', 'KvmPS', 'KvmPS.psd1') }
if (-not (Get-Module KvmPS)) { Import-Module $script:ModulePath }

$script:Fixture = [IO.Path]::Combine($PSScriptRoot, 'fixtures', 'node.xml')
$script:FixtureUri = "test://$($script:Fixture)"
$script:AuthFixtureUri = "test://$([IO.Path]::Combine($PSScriptRoot, 'fixtures', 'node-auth.xml'))"
$script:SystemUri = 'qemu:///system'

function Complete([string] $Line) {
    [System.Management.Automation.CommandCompletion]::CompleteInput($Line, $Line.Length, $null).CompletionMatches
}

# True when a libvirt daemon answers on qemu:///system (CI starts one; elsewhere the tests report Skipped).
function Test-SystemLibvirt {
    if ($null -eq $script:SystemOk) {
        $script:SystemOk = $false
        if (Get-Command virsh -ErrorAction SilentlyContinue) {
            & virsh -c qemu:///system version *> $null
            $script:SystemOk = $LASTEXITCODE -eq 0
        }
    }
    $script:SystemOk
}

# A unique prefix for objects a test creates on the shared daemon.
function New-TestName([string] $Suffix) { "kvmps-t-$([guid]::NewGuid().ToString('N').Substring(0, 8))-$Suffix" }

# Defines (and optionally starts) a firmware-only guest on qemu:///system through virsh; returns its name.
function New-SystemTestVm {
    param([string] $Name, [int] $MemoryMiB = 64, [int] $CurrentMemoryMiB = 0, [int] $Cpus = 1, [switch] $Start)
    $type = if (Test-HostOffersKvm) { 'kvm' } else { 'qemu' }
    $cfg = [KvmPS.Core.Xml.DomainConfig]::new()
    $cfg.Name = $Name
    $cfg.DomainType = $type
    $cfg.MaxMemoryKiB = [uint64]$MemoryMiB * 1024
    $cfg.MemoryKiB = [uint64]($(if ($CurrentMemoryMiB) { $CurrentMemoryMiB } else { $MemoryMiB })) * 1024
    $cfg.CpuCount = $Cpus
    $cfg.MaxCpuCount = $Cpus
    $cfg.Title = "KvmPS test $Name"
    $file = [IO.Path]::GetTempFileName()
    try {
        [KvmPS.Core.Xml.DomainXml]::Build($cfg) | Set-Content -Path $file
        $out = & virsh -c qemu:///system define $file 2>&1
        if ($LASTEXITCODE -ne 0) { throw "virsh define failed: $out" }
        if ($Start) {
            $out = & virsh -c qemu:///system start $Name 2>&1
            if ($LASTEXITCODE -ne 0) { throw "virsh start failed: $out" }
        }
    }
    finally { Remove-Item $file -ErrorAction SilentlyContinue }
    $Name
}

function Remove-SystemTestVm([string] $Name) {
    if ($Name -notlike 'kvmps-t-*') { throw "Refusing to remove '$Name': not a test object." }
    & virsh -c qemu:///system destroy $Name *> $null
    & virsh -c qemu:///system undefine $Name --nvram *> $null
    & virsh -c qemu:///system undefine $Name *> $null
}

# Removes every VM and volume on qemu:///system whose name starts with $Prefix (a test's own unique prefix).
function Remove-SystemTestObjects([string] $Prefix) {
    if ($Prefix -notlike 'kvmps-t-*') { throw "Refusing to clean '$Prefix': not a test prefix." }
    foreach ($name in (& virsh -c qemu:///system list --all --name 2>$null) | ForEach-Object Trim | Where-Object { $_ -like "$Prefix*" }) {
        & virsh -c qemu:///system destroy $name *> $null
        & virsh -c qemu:///system undefine $name --managed-save --snapshots-metadata --checkpoints-metadata --nvram *> $null
        & virsh -c qemu:///system undefine $name *> $null
    }
    foreach ($pool in (& virsh -c qemu:///system pool-list --name 2>$null) | ForEach-Object Trim | Where-Object { $_ }) {
        & virsh -c qemu:///system pool-refresh $pool *> $null
        foreach ($line in (& virsh -c qemu:///system vol-list $pool 2>$null) | Select-Object -Skip 2) {
            $vol = ($line.Trim() -split '\s+')[0]
            if ($vol -like "$Prefix*") { & virsh -c qemu:///system vol-delete $vol --pool $pool *> $null }
        }
    }
    # Files a test made beside the volumes (snapshot overlays, memory files) carry the same unique prefix.
    Get-ChildItem /var/lib/libvirt/images -Filter "$Prefix*" -ErrorAction SilentlyContinue | Remove-Item -Force -ErrorAction SilentlyContinue
}

# Whether the daemon at qemu:///system offers the kvm domain type: the host is asked, not guessed from /dev/kvm.
function Test-HostOffersKvm {
    if ($null -eq $script:HostOffersKvm) {
        $script:HostOffersKvm = [bool](& virsh -c qemu:///system capabilities 2>$null | Select-String -SimpleMatch "<domain type='kvm'")
    }
    $script:HostOffersKvm
}

# The test VM's domain type on this machine: Kvm where the host offers it, else Qemu (TCG).
function Get-ExpectedAccelerator { if (Test-HostOffersKvm) { 'Kvm' } else { 'Qemu' } }

# A random number in [Minimum, Maximum) from this backend's half of the range. Both backend passes run at the same time
# against one daemon, so the subnets their tests make (which must not overlap) come from disjoint halves.
function Get-TestOctet([int] $Minimum, [int] $Maximum) {
    $middle = [int][math]::Floor(($Minimum + $Maximum) / 2)
    if ($env:KVMPS_BACKEND -eq 'Managed') { Get-Random -Minimum $middle -Maximum $Maximum } else { Get-Random -Minimum $Minimum -Maximum $middle }
}

# A private libvirtd for tests that freeze, kill or reconfigure a daemon (never the shared one): session mode, as
# 'nobody', its socket in $Dir/run. -Config adds lines to its libvirtd.conf, -Environment NAME=value pairs to its
# environment, -Listen passes --listen. Returns its pid once its socket exists (and -ReadyWhen, if given, holds).
function Start-PrivateLibvirtd {
    param([string] $Dir, [string[]] $Config = @(), [string[]] $Environment = @(), [switch] $Listen, [scriptblock] $ReadyWhen)
    foreach ($d in 'run', 'xdg', 'cfg', 'cache', 'data') { $null = New-Item -ItemType Directory -Force -Path "$Dir/$d" }
    Set-Content -Path "$Dir/libvirtd.conf" -Value (@("unix_sock_dir = `"$Dir/run`"") + $Config)
    & chmod -R a+rwX $Dir
    Remove-Item "$Dir/pid", "$Dir/run/libvirt-sock" -ErrorAction SilentlyContinue
    $envArgs = @("HOME=$Dir", "XDG_RUNTIME_DIR=$Dir/xdg", "XDG_CONFIG_HOME=$Dir/cfg", "XDG_CACHE_HOME=$Dir/cache", "XDG_DATA_HOME=$Dir/data") + $Environment
    $daemonArgs = @('-f', "$Dir/libvirtd.conf", '-p', "$Dir/pid", '-d') + @(if ($Listen) { '--listen' })
    & setpriv --reuid=65534 --regid=65534 --clear-groups env @envArgs libvirtd @daemonArgs
    $sw = [Diagnostics.Stopwatch]::StartNew()
    while (-not ((Test-Path "$Dir/run/libvirt-sock") -and (Test-Path "$Dir/pid") -and (-not $ReadyWhen -or (& $ReadyWhen)))) {
        if ($sw.Elapsed.TotalSeconds -gt 20) { throw "the private libvirtd did not start in $Dir" }
        Start-Sleep -Milliseconds 50
    }
    [int](Get-Content "$Dir/pid" -Raw)
}

# Stops a private libvirtd of Start-PrivateLibvirtd (thawed first if frozen): SIGTERM (or SIGKILL with -Kill), SIGKILL
# after 10 s; QEMU processes it started (their command line names $Dir) are killed too.
function Stop-PrivateLibvirtd([string] $Dir, [switch] $Kill) {
    if (Test-Path "$Dir/pid") {
        $daemonPid = [int](Get-Content "$Dir/pid" -Raw)
        & kill -CONT $daemonPid 2>$null
        & kill $(if ($Kill) { '-KILL' } else { '-TERM' }) $daemonPid 2>$null
        $sw = [Diagnostics.Stopwatch]::StartNew()
        while ((Test-Path "/proc/$daemonPid") -and $sw.Elapsed.TotalSeconds -lt 10) { Start-Sleep -Milliseconds 50 }
        & kill -KILL $daemonPid 2>$null
        Remove-Item "$Dir/pid" -ErrorAction SilentlyContinue
    }
    Get-Process qemu-system-x86_64 -ErrorAction SilentlyContinue | Where-Object { $_.CommandLine -like "*$Dir*" } | ForEach-Object { & kill -KILL $_.Id 2>$null }
}

# Starts bash -c SCRIPT in the background (each argument passed as is, no re-splitting); returns the process.
function Start-Bash([string] $Script) {
    $psi = [Diagnostics.ProcessStartInfo]::new('bash')
    $psi.ArgumentList.Add('-c')
    $psi.ArgumentList.Add($Script)
    $psi.UseShellExecute = $false
    [Diagnostics.Process]::Start($psi)
}

# Waits up to $TimeoutSec for $Condition; true when it held.
function Wait-Until([scriptblock] $Condition, [double] $TimeoutSec = 30) {
    $sw = [Diagnostics.Stopwatch]::StartNew()
    while ($sw.Elapsed.TotalSeconds -lt $TimeoutSec) {
        if (& $Condition) { return $true }
        Start-Sleep -Milliseconds 200
    }
    [bool](& $Condition)
}

# Writes a byte pattern through a running VM's first virtio disk (QEMU's monitor, no guest OS needed) and
# flushes it, so another reader of the image file sees it.
function Write-DiskPattern([string] $Vm, [string] $Pattern, [string] $Offset, [string] $Length, [string] $Uri = 'qemu:///system') {
    foreach ($io in "write -P $Pattern $Offset $Length", 'flush') {
        $out = & virsh -c $Uri qemu-monitor-command $Vm --hmp "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend `"$io`"" 2>&1
        if ($LASTEXITCODE -ne 0 -or "$out" -match 'error|failed') { throw "qemu-io $io failed: $out" }
    }
}

# True when the image (read through its backing chain, shared with a running QEMU) holds the pattern.
function Test-DiskPattern([string] $Image, [string] $Pattern, [string] $Offset, [string] $Length) {
    $out = & qemu-io -r -U -f qcow2 -c "read -P $Pattern $Offset $Length" $Image 2>&1 | Out-String
    $LASTEXITCODE -eq 0 -and $out -notmatch 'Pattern verification failed|Could not|error'
}

# The second libvirt host for migration tests (.ci/peer-libvirtd; what works and how is in .ci/peer-libvirtd.md). It is
# shared by both concurrent backend passes and left running: tests only create and remove objects with their own prefix.
$script:PeerScript = [IO.Path]::Combine($PSScriptRoot, '..', '.ci', 'peer-libvirtd')
$script:PeerRunDir = if ($env:KVMPS_PEER_RUN) { $env:KVMPS_PEER_RUN } else { '/run/kvmps-peer' }
$script:PeerStateDir = if ($env:KVMPS_PEER_STATE) { $env:KVMPS_PEER_STATE } else { '/var/lib/kvmps-peer' }
# The same directory on both hosts (shared storage).
$script:SharedDir = if ($env:KVMPS_SHARED_DIR) { $env:KVMPS_SHARED_DIR } else { '/var/lib/kvmps-shared' }

# The peer's URI (qemu+unix:///system?socket=...), starting it when it is not running.
function Get-PeerUri {
    if (-not $script:PeerUri) {
        $out = @(& bash $script:PeerScript start 2>&1)
        if ($LASTEXITCODE -ne 0) { throw "could not start the peer libvirtd: $($out -join ' ')" }
        $script:PeerUri = "$($out[-1])".Trim()
    }
    $script:PeerUri
}

# The host daemon's URI that means the host daemon inside the peer's mount namespace too (a peer-to-peer migration
# from the peer back must name it: plain qemu:///system there is the peer itself).
function Get-PeerMainUri { "qemu+unix:///system?socket=$script:PeerRunDir/main/libvirt-sock" }

# Where a file the peer sees at /var/lib/libvirt/images/<File> (its pool default) really is.
function Get-PeerImagePath([string] $File) { [IO.Path]::Combine($script:PeerStateDir, 'lib', 'images', $File) }

# The user QEMU runs as under the system daemon (libvirt-qemu on Debian, qemu elsewhere).
function Get-QemuUser { foreach ($u in 'libvirt-qemu', 'qemu') { & id -u $u *> $null; if ($LASTEXITCODE -eq 0) { return $u } } ; throw 'no qemu user' }

# Defines (and with -Start starts) a small firmware-only guest that can migrate, with one 64 MiB qcow2 virtio disk
# (vda, alias virtio-disk0) on $Uri; returns its name. -Shared: the disk is $SharedDir/<Name>.qcow2 (or -DiskPath),
# owned by the qemu user and never relabelled (<seclabel model='dac' relabel='no'/>), so neither daemon hands it back
# to root when a migration ends on the other one. -Local: the disk is /var/lib/libvirt/images/<Name>.qcow2 (or
# -DiskPath) on the host daemon, labelled by libvirt as usual: for --copy-storage-all (the copy the target creates is
# root's until libvirt labels it, so it must not carry relabel='no'). An existing file at the path is kept.
function New-MigratableTestVm {
    param([Parameter(Mandatory)] [string] $Name, [string] $Uri = 'qemu:///system', [string] $DiskPath,
        [switch] $Shared, [switch] $Local, [int] $MemoryMiB = 64, [switch] $Start)
    if ($Name -notlike 'kvmps-t-*') { throw "Refusing to create '$Name': not a test name." }
    if ($Shared -eq $Local) { throw 'New-MigratableTestVm: give exactly one of -Shared and -Local.' }
    if (-not $DiskPath) { $DiskPath = if ($Shared) { "$script:SharedDir/$Name.qcow2" } else { "/var/lib/libvirt/images/$Name.qcow2" } }
    if (-not (Test-Path $DiskPath)) {
        $out = & qemu-img create -q -f qcow2 $DiskPath 64M 2>&1
        if ($LASTEXITCODE -ne 0) { throw "qemu-img create failed: $out" }
    }
    $qemuUser = Get-QemuUser
    & chown "${qemuUser}:" $DiskPath
    $type = (Get-ExpectedAccelerator).ToLowerInvariant()
    $esc = { param($s) [Security.SecurityElement]::Escape($s) }
    $seclabel = if ($Shared) { "<seclabel model='dac' relabel='no'/>" } else { '' }
    $xml = @"
<domain type='$type'>
  <name>$(& $esc $Name)</name>
  <title>KvmPS migration test $(& $esc $Name)</title>
  <memory unit='MiB'>$MemoryMiB</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$(& $esc $DiskPath)'>$seclabel</source>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"@
    $file = [IO.Path]::GetTempFileName()
    try {
        Set-Content -Path $file -Value $xml
        $out = & virsh -c $Uri define $file 2>&1
        if ($LASTEXITCODE -ne 0) { throw "virsh define failed: $out" }
        if ($Start) {
            $out = & virsh -c $Uri start $Name 2>&1
            if ($LASTEXITCODE -ne 0) { throw "virsh start failed: $out" }
        }
    }
    finally { Remove-Item $file -ErrorAction SilentlyContinue }
    $Name
}

# Removes from the peer every VM, volume and network whose name starts with $Prefix, and files with that prefix in its
# image directory and in the shared directory. Never starts or stops the peer (a no-op when it is not running).
function Remove-PeerTestObjects([string] $Prefix) {
    if ($Prefix -notlike 'kvmps-t-*') { throw "Refusing to clean '$Prefix': not a test prefix." }
    if (Test-Path "$script:PeerRunDir/libvirt-sock") {
        $uri = "qemu+unix:///system?socket=$script:PeerRunDir/libvirt-sock"
        foreach ($name in (& virsh -c $uri list --all --name 2>$null) | ForEach-Object Trim | Where-Object { $_ -like "$Prefix*" }) {
            & virsh -c $uri destroy $name *> $null
            & virsh -c $uri undefine $name --managed-save --snapshots-metadata --checkpoints-metadata --nvram *> $null
            & virsh -c $uri undefine $name *> $null
        }
        foreach ($pool in (& virsh -c $uri pool-list --name 2>$null) | ForEach-Object Trim | Where-Object { $_ }) {
            & virsh -c $uri pool-refresh $pool *> $null
            foreach ($line in (& virsh -c $uri vol-list $pool 2>$null) | Select-Object -Skip 2) {
                $vol = ($line.Trim() -split '\s+')[0]
                if ($vol -like "$Prefix*") { & virsh -c $uri vol-delete $vol --pool $pool *> $null }
            }
        }
        foreach ($net in (& virsh -c $uri net-list --all --name 2>$null) | ForEach-Object Trim | Where-Object { $_ -like "$Prefix*" }) {
            & virsh -c $uri net-destroy $net *> $null
            & virsh -c $uri net-undefine $net *> $null
        }
    }
    foreach ($dir in [IO.Path]::Combine($script:PeerStateDir, 'lib', 'images'), $script:SharedDir) {
        Get-ChildItem $dir -Filter "$Prefix*" -ErrorAction SilentlyContinue | Remove-Item -Force -ErrorAction SilentlyContinue
    }
}
