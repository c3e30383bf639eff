# Bootstrap: KvmPS.Core is shared in the Default load context (scripts can name its types);
# the cmdlet assembly and YamlDotNet load into the 'KvmPS' AssemblyLoadContext.
# (LoadFromAssemblyPath and GetCmdlet instead of Add-Type and Get-Command: both cost tens of ms at import.)
$bin = [IO.Path]::Combine($PSScriptRoot, 'bin', 'net8.0')
$importModule = $ExecutionContext.InvokeCommand.GetCmdlet('Microsoft.PowerShell.Core\Import-Module')
$isReload = $true
if (-not ('KvmPS.Loader.LoadContext' -as [type])) {
    $isReload = $false
    $default = [System.Runtime.Loader.AssemblyLoadContext]::Default
    $null = $default.LoadFromAssemblyPath([IO.Path]::Combine($bin, 'KvmPS.Core.dll'))
    $null = $default.LoadFromAssemblyPath([IO.Path]::Combine($bin, 'KvmPS.Loader.dll'))
}
$asm = [KvmPS.Loader.LoadContext]::Initialize([IO.Path]::Combine($bin, 'KvmPS.dll'))
$inner = & $importModule -Assembly $asm -PassThru:$isReload
if ($inner) {
    # Import-Module -Force loses the exported cmdlets of an ALC-loaded assembly (PowerShell/PowerShell#20710).
    $add = [System.Management.Automation.PSModuleInfo].GetMethod('AddExportedCmdlet', [Reflection.BindingFlags]'Instance, NonPublic')
    foreach ($cmd in $inner.ExportedCmdlets.Values) {
        $add.Invoke($ExecutionContext.SessionState.Module, @(, $cmd))
    }
}
