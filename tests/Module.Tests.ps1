BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $script:cmdlets = @((Import-PowerShellDataFile $script:ModulePath).CmdletsToExport | ForEach-Object { @{ Name = $_ } })
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
}

Describe 'KvmPS module' {
    It 'exports exactly the cmdlets in the manifest' {
        $expected = (Import-PowerShellDataFile $script:ModulePath).CmdletsToExport | Sort-Object
        (Get-Command -Module KvmPS -CommandType Cmdlet).Name | Sort-Object | Should -Be $expected
    }

    It 'uses approved verbs only' {
        $approved = (Get-Verb).Verb
        (Get-Command -Module KvmPS).Verb | Where-Object { $_ -notin $approved } | Should -BeNullOrEmpty
    }

    It 'ships a format view for every output type' {
        foreach ($type in 'KvmPS.Core.KvmVm', 'KvmPS.Core.Services.KvmConnection', 'KvmPS.Core.KvmHostInfo', 'KvmPS.Core.KvmHostCapability', 'KvmPS.Core.KvmHostCheck', 'KvmPS.Core.KvmVmDisk', 'KvmPS.Core.KvmVmNetworkAdapter', 'KvmPS.Core.KvmVmConsole', 'KvmPS.Core.KvmSnapshot', 'KvmPS.Core.KvmBackup', 'KvmPS.Core.KvmStoragePool', 'KvmPS.Core.KvmVolume', 'KvmPS.Core.KvmGuestInfo', 'KvmPS.Core.KvmGuestCommandResult', 'KvmPS.Core.KvmNetwork', 'KvmPS.Core.KvmNetworkLease', 'KvmPS.Core.KvmVmMetrics') {
            Get-FormatData -TypeName $type | Should -Not -BeNullOrEmpty -Because "$type needs a view"
        }
    }
}

Describe 'Help for <Name>' -ForEach $script:cmdlets {
    BeforeAll {
        $script:help = Get-Help $Name -Full
        $script:command = Get-Command $Name
    }

    It 'has a real synopsis, not the generated one' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -BeLike "*``[``<CommonParameters``>``]*"
    }

    It 'has a description' {
        ($help.Description.Text -join '') | Should -Not -BeNullOrEmpty
    }

    It 'has at least one example with code' {
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 1
        $help.Examples.Example[0].Code | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter' {
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        $own = @($command.Parameters.Keys | Where-Object { $_ -notin $common })
        $own | Should -Not -BeNullOrEmpty -Because 'every KvmPS cmdlet has parameters of its own'
        # the help lists exactly the cmdlet's parameters, each with a description
        @($help.Parameters.Parameter.Name | Where-Object { $_ -notin $common } | Sort-Object) | Should -Be @($own | Sort-Object)
        foreach ($p in $own) {
            $ph = $help.Parameters.Parameter | Where-Object Name -eq $p
            ($ph.Description.Text -join '') | Should -Not -BeNullOrEmpty -Because "-$p needs a description"
        }
    }

    It 'declares its output type' {
        $command.OutputType | Should -Not -BeNullOrEmpty
    }

    It 'takes -Connection unless it manages connections itself or reads only files' {
        if ($Name -in 'Connect-KvmHost', 'Get-KvmConnection', 'Get-KvmBackup') {
            $command.Parameters.Keys | Should -Not -Contain 'Connection'
            $command.Parameters.Keys | Should -Contain $(if ($Name -eq 'Get-KvmBackup') { 'Path' } else { 'Uri' })
        }
        else {
            $command.Parameters.Keys | Should -Contain 'Connection'
        }
    }
}
