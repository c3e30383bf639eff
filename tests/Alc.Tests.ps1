BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    # The pwsh running these tests, also when it is the dotnet tool (dotnet <PSHOME>/pwsh.dll).
    $script:pwsh = [Diagnostics.Process]::GetCurrentProcess().MainModule.FileName
    [string[]] $script:pwshArgs = if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { [IO.Path]::Combine($PSHOME, 'pwsh.dll') } else { @() }
}

Describe 'Assembly load contexts' -Tag TestDriver {
    It 'loads the cmdlet assembly in the KvmPS context and Core in Default' {
        $kvmps = (Get-Command Get-KvmVm).ImplementingType.Assembly
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($kvmps).Name | Should -Be 'KvmPS'
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext([KvmPS.Core.KvmVm].Assembly).Name | Should -Be 'Default'
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext([KvmPS.Loader.LoadContext].Assembly).Name | Should -Be 'Default'
    }

    It 'does not leak YamlDotNet into the session' {
        'YamlDotNet.Serialization.SerializerBuilder' -as [type] | Should -BeNullOrEmpty
    }

    It 'imports beside an older YamlDotNet already loaded in the session' {
        $old = [IO.Path]::Combine($env:KVMPS_PACKAGES, 'yamldotnet', '11.2.1', 'lib', 'netstandard2.1', 'YamlDotNet.dll')
        if (-not (Test-Path $old)) { $old = (Get-ChildItem ([IO.Path]::Combine($env:KVMPS_PACKAGES, 'yamldotnet', '11.2.1', 'lib')) -Recurse -Filter YamlDotNet.dll | Select-Object -First 1).FullName }
        $old | Should -Exist
        $script = @'
$ErrorActionPreference = 'Stop'
Add-Type -Path $args[0]
$sessionYaml = [YamlDotNet.Serialization.SerializerBuilder].Assembly.GetName().Version.ToString()
Import-Module $args[1]
$vm = Get-KvmVm -Connection test:///default -Name test
$alc = [System.Runtime.Loader.AssemblyLoadContext]::All | Where-Object Name -eq 'KvmPS'
$moduleYaml = $alc.LoadFromAssemblyName([Reflection.AssemblyName]'YamlDotNet')
$sb = $moduleYaml.GetType('YamlDotNet.Serialization.SerializerBuilder')
$yaml = $sb::new().Build().Serialize(@{ name = $vm.Name; cpu = $vm.CpuCount })
"$sessionYaml|$($moduleYaml.GetName().Version)|$([System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($moduleYaml).Name)|$($vm.State)|$($yaml -replace "`r?`n", ';')"
'@
        $file = Join-Path $TestDrive 'side-by-side.ps1'
        Set-Content -Path $file -Value $script
        $out = & $pwsh @pwshArgs -NoProfile -NonInteractive -File $file $old $ModulePath 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($out | Out-String)
        $parts = ($out | Select-Object -Last 1) -split '\|'
        $parts[0] | Should -BeLike '11.*'
        $parts[1] | Should -BeLike '18.*'
        $parts[2] | Should -Be 'KvmPS'
        $parts[3] | Should -Be 'Running'
        $parts[4] | Should -Match 'name: test'
    }

    It 'survives Import-Module -Force with its cmdlets still exported' {
        $out = & $pwsh @pwshArgs -NoProfile -NonInteractive -Command "Import-Module '$ModulePath'; Import-Module '$ModulePath' -Force; (Get-Command -Module KvmPS).Count" 
        [int]($out | Select-Object -Last 1) | Should -Be (Import-PowerShellDataFile $ModulePath).CmdletsToExport.Count
    }
}
