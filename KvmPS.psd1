@{
    RootModule           = 'KvmPS.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '08c86f2a-382d-47cf-aa2e-e36dbfe81c5b'
    Author               = 'KvmPS contributors'
    CompanyName          = 'KvmPS'
    Copyright            = '(c) KvmPS contributors'
    Description          = 'Manage KVM/QEMU virtual machines and hosts through libvirt, the PowerShell way.'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @('KvmPS.Format.ps1xml', 'KvmPS.Storage.Format.ps1xml', 'KvmPS.Network.Format.ps1xml', 'KvmPS.Devices.Format.ps1xml', 'KvmPS.Metrics.Format.ps1xml', 'KvmPS.Placement.Format.ps1xml')
    CmdletsToExport      = @(
        'Backup-KvmVm'
        'Checkpoint-KvmVm'
        'Connect-KvmHost'
        'Disconnect-KvmHost'
        'Export-KvmVm'
        'Get-KvmBackup'
        'Get-KvmConnection'
        'Get-KvmHost'
        'Get-KvmHostCapability'
        'Get-KvmSnapshot'
        'Get-KvmVm'
        'Get-KvmVmConsole'
        'Get-KvmVmGuestInfo'
        'Import-KvmVm'
        'Invoke-KvmVmGuestCommand'
        'New-KvmVm'
        'Remove-KvmSnapshot'
        'Remove-KvmVm'
        'Rename-KvmSnapshot'
        'Rename-KvmVm'
        'Restart-KvmVm'
        'Restore-KvmBackup'
        'Restore-KvmSnapshot'
        'Resume-KvmVm'
        'Set-KvmVm'
        'Start-KvmVm'
        'Stop-KvmVm'
        'Move-KvmVm'
        'Copy-KvmVm'
        'Move-KvmVmStorage'
        'Suspend-KvmVm'
        'Wait-KvmVm'
        # storage cmdlets (kept together)
        'Copy-KvmVolume'
        'Export-KvmVolume'
        'Get-KvmStoragePool'
        'Get-KvmVolume'
        'Import-KvmVolume'
        'New-KvmStoragePool'
        'New-KvmVolume'
        'Remove-KvmStoragePool'
        'Remove-KvmVolume'
        'Resize-KvmVolume'
        'Start-KvmStoragePool'
        'Stop-KvmStoragePool'
        'Update-KvmStoragePool'
        # network cmdlets (kept together)
        'Get-KvmNetwork'
        'Get-KvmNetworkLease'
        'New-KvmNetwork'
        'Remove-KvmNetwork'
        'Set-KvmNetwork'
        'Start-KvmNetwork'
        'Stop-KvmNetwork'
        # VM device cmdlets (kept together)
        'Add-KvmVmDisk'
        'Add-KvmVmDvdDrive'
        'Add-KvmVmNetworkAdapter'
        'Get-KvmVmDisk'
        'Get-KvmVmNetworkAdapter'
        'Remove-KvmVmDisk'
        'Remove-KvmVmNetworkAdapter'
        'Resize-KvmVmDisk'
        'Set-KvmVmDvdDrive'
        'Set-KvmVmNetworkAdapter'
        # metrics cmdlets (kept together)
        'Measure-KvmVm'
        # placement cmdlets (kept together)
        'Find-KvmHost'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('KVM', 'libvirt', 'QEMU', 'Linux', 'Virtualization', 'PSEdition_Core')
            ProjectUri = 'https://example.invalid/KvmPS'
        }
    }
}
