#Requires -Version 7.4
<#
.SYNOPSIS
    Issue 15's figures: Move-KvmVm against virsh migrate with the same options on the same VM, and Copy-KvmVm
    against virsh vol-clone, between the host's libvirtd and the peer daemon (.ci/peer-libvirtd).
.DESCRIPTION
    A running guest with -MemoryMiB of memory (firmware only, TCG) moves to the peer and back, -Runs times each way,
    alternating KvmPS and virsh:
      - shared storage: its disk in a directory both daemons see, in a pool on each (virsh --unsafe, KvmPS -AllowUnsafe);
      - with its disk copied: a -DiskGiB qcow2 disk holding -DataMiB of data (virsh --copy-storage-all after creating
        the target volume, as KvmPS does; KvmPS -IncludeStorage).
    Then a shut-off copy of the same disk: Copy-KvmVm (full) against virsh vol-clone.
    Median wall times; prints a Markdown table and appends it to bench/results-migration.md. Objects are named
    kvmpsbench-<random>-* and removed on both hosts in a finally block.
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Measure-KvmPSMigration.ps1 -Backend Native
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 20)] [int] $Runs = 3,
    [int] $MemoryMiB = 256,
    [int] $DiskGiB = 1,
    [int] $DataMiB = 256,
    [ValidateSet('Native', 'Managed')] [string] $Backend = 'Native',
    [string] $ModulePath = ([IO.Path]::Combine($PSScriptRoot, '..', 'out', 'KvmPS', 'KvmPS.psd1')),
    [string] $ResultPath = ([IO.Path]::Combine($PSScriptRoot, 'results-migration.md'))
)
$ErrorActionPreference = 'Stop'
$env:KVMPS_BACKEND = $Backend
Import-Module $ModulePath
$peer = @(& bash ([IO.Path]::Combine($PSScriptRoot, '..', '.ci', 'peer-libvirtd')) start)[-1].Trim()
$main = 'qemu:///system'
$p = "kvmpsbench-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
$shared = "/var/lib/kvmps-shared/$p"
$pool = "$p-sh"
$src = Connect-KvmHost $main -NotDefault
$dst = Connect-KvmHost $peer -NotDefault
$qemuUser = 'libvirt-qemu'
$net = @('--migrateuri', 'tcp://127.0.0.1', '--listen-address', '127.0.0.1')

function Time([scriptblock] $Block) { $sw = [Diagnostics.Stopwatch]::StartNew(); & $Block | Out-Null; $sw.Stop(); $sw.Elapsed.TotalSeconds }
function Median([double[]] $x) { $s = $x | Sort-Object; if ($s.Count % 2) { $s[[int][math]::Floor($s.Count / 2)] } else { ($s[$s.Count / 2 - 1] + $s[$s.Count / 2]) / 2 } }
function Invoke-BenchVirsh([string] $Uri) { $out = & virsh -c $Uri @args 2>&1; if ($LASTEXITCODE -ne 0) { throw "virsh $($args -join ' '): $out" }; $out }
function New-BenchVm([string] $Name, [string] $Disk, [switch] $SharedDisk) {
    $seclabel = if ($SharedDisk) { "<seclabel model='dac' relabel='no'/>" } else { '' }
    $f = New-TemporaryFile
    Set-Content $f @"
<domain type='qemu'><name>$Name</name><memory unit='MiB'>$MemoryMiB</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$Disk'>$seclabel</source><target dev='vda' bus='virtio'/></disk></devices></domain>
"@
    $null = Invoke-BenchVirsh $main define $f; Remove-Item $f
}
function New-Image([string] $Path) {
    & qemu-img create -q -f qcow2 $Path "$($DiskGiB)G"
    $null = & qemu-io -f qcow2 -c "write -P 0x5a 0 $($DataMiB)M" $Path
    & chown "${qemuUser}:" $Path
}

$rows = [Collections.Generic.List[object]]::new()
try {
    $null = New-Item -ItemType Directory -Force $shared
    foreach ($u in $main, $peer) { $null = Invoke-BenchVirsh $u pool-create-as $pool dir --target $shared }

    # --- shared storage
    $vm = "$p-shared"
    New-Image "$shared/$vm.qcow2"
    New-BenchVm $vm "$shared/$vm.qcow2" -SharedDisk
    $null = Invoke-BenchVirsh $main start $vm
    foreach ($u in $main, $peer) { $null = Invoke-BenchVirsh $u pool-refresh $pool }
    $k = @(); $v = @()
    foreach ($i in 1..$Runs) {
        $k += Time { Move-KvmVm -Connection $src -Name $vm -DestinationConnection $dst -MigrationAddress 127.0.0.1 -AllowUnsafe }
        $k += Time { Move-KvmVm -Connection $dst -Name $vm -DestinationConnection $src -MigrationAddress 127.0.0.1 -AllowUnsafe }
        $v += Time { Invoke-BenchVirsh $main migrate --live --persistent --undefinesource --unsafe $vm $peer @net }
        $v += Time { Invoke-BenchVirsh $peer migrate --live --persistent --undefinesource --unsafe $vm $main @net }
    }
    $rows.Add([pscustomobject]@{ What = "Live move, shared storage, $MemoryMiB MiB guest (one way)"; KvmPS = Median $k; Virsh = Median $v })
    $null = Invoke-BenchVirsh $main destroy $vm

    # --- disk copied (NBD), target volumes created first (thin) for both
    $vm = "$p-copy"
    New-Image "/var/lib/libvirt/images/$vm.qcow2"
    New-BenchVm $vm "/var/lib/libvirt/images/$vm.qcow2"
    $null = Invoke-BenchVirsh $main pool-refresh default
    $null = Invoke-BenchVirsh $main start $vm
    $k = @(); $v = @()
    foreach ($i in 1..$Runs) {
        $k += Time { Move-KvmVm -Connection $src -Name $vm -DestinationConnection $dst -MigrationAddress 127.0.0.1 -IncludeStorage }
        $k += Time { Move-KvmVm -Connection $dst -Name $vm -DestinationConnection $src -MigrationAddress 127.0.0.1 -IncludeStorage }
        $v += Time {
            $null = Invoke-BenchVirsh $peer vol-create-as default "$vm.qcow2" "$($DiskGiB)G" --format qcow2
            Invoke-BenchVirsh $main migrate --live --persistent --undefinesource --copy-storage-all $vm $peer @net
            $null = Invoke-BenchVirsh $main vol-delete --pool default "$vm.qcow2"
        }
        $v += Time {
            $null = Invoke-BenchVirsh $main vol-create-as default "$vm.qcow2" "$($DiskGiB)G" --format qcow2
            Invoke-BenchVirsh $peer migrate --live --persistent --undefinesource --copy-storage-all $vm $main @net
            $null = Invoke-BenchVirsh $peer vol-delete --pool default "$vm.qcow2"
        }
    }
    $rows.Add([pscustomobject]@{ What = "Live move with a $DiskGiB GiB disk holding $DataMiB MiB copied (one way)"; KvmPS = Median $k; Virsh = Median $v })
    $null = Invoke-BenchVirsh $main destroy $vm

    # --- full copy of the shut-off VM's disk on the same host
    $k = @(); $v = @()
    foreach ($i in 1..$Runs) {
        $k += Time { Copy-KvmVm -Connection $src -Name $vm -NewName "$vm-c$i" }
        $v += Time { Invoke-BenchVirsh $main vol-clone --pool default "$vm.qcow2" "$vm-v$i.qcow2" }
    }
    $rows.Add([pscustomobject]@{ What = "Copy-KvmVm (full, $DiskGiB GiB disk, $DataMiB MiB data) vs virsh vol-clone"; KvmPS = Median $k; Virsh = Median $v })
}
finally {
    foreach ($u in $main, $peer) {
        foreach ($n in @(& virsh -c $u list --all --name) | Where-Object { $_ -like "$p*" }) { & virsh -c $u destroy $n *> $null; & virsh -c $u undefine $n *> $null }
        foreach ($pl in 'default', $pool) {
            & virsh -c $u pool-refresh $pl *> $null
            foreach ($line in @(& virsh -c $u vol-list $pl 2>$null | Select-Object -Skip 2)) { $vol = ($line.Trim() -split '\s+')[0]; if ($vol -like "$p*") { & virsh -c $u vol-delete --pool $pl $vol *> $null } }
        }
        & virsh -c $u pool-destroy $pool *> $null
    }
    Remove-Item $shared -Recurse -Force -ErrorAction SilentlyContinue
}

$table = @("| What ($Backend backend, median of $Runs) | Move/Copy-KvmVm s | virsh s | ratio |", '|---|---|---|---|') +
    ($rows | ForEach-Object { '| {0} | {1:0.00} | {2:0.00} | {3:0.00}x |' -f $_.What, $_.KvmPS, $_.Virsh, ($_.KvmPS / $_.Virsh) })
$text = "`n## $(Get-Date -Format 'yyyy-MM-dd HH:mm') on $([Environment]::MachineName) ($([Environment]::ProcessorCount) cores)`n`n$($table -join "`n")`n"
$text
Add-Content -Path $ResultPath -Value $text
