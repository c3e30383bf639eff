#requires -Version 7.2
<# Build-time MAML help generator: merges each cmdlet's reflected syntax with the prose in <Source>/<Verb-Noun>.md (platyPS
   section names) into <Destination>/<Assembly>.dll-Help.xml. Exits 1 listing every undocumented or stale item. Run it in a child:
   pwsh -NoProfile -File New-KvmPSMaml.ps1 -Manifest out/KvmPS/KvmPS.psd1 -Source docs -Destination out/KvmPS/en-US #>
using namespace System.Collections.Generic
using namespace System.Management.Automation
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Manifest,     # KvmPS.psd1 in the built output folder
    [Parameter(Mandatory)] [string] $Source,       # folder with <Verb-Noun>.md files
    [Parameter(Mandatory)] [string] $Destination   # e.g. out/KvmPS/en-US
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ns = @{
    maml = 'http://schemas.microsoft.com/maml/2004/10'; command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev = 'http://schemas.microsoft.com/maml/dev/2004/10'; MSHelp = 'http://msdn.microsoft.com/mshelp'
}
$knownSections = 'SYNOPSIS', 'SYNTAX', 'DESCRIPTION', 'EXAMPLES', 'PARAMETERS', 'INPUTS', 'OUTPUTS', 'NOTES', 'RELATED LINKS'
$fence = '^\s*(```|~~~)'
# Common parameters are not documented. -WhatIf/-Confirm stay in the syntax, with stock text unless the .md has its own.
$common = [HashSet[string]]::new([string[]]([Cmdlet]::CommonParameters + 'UseTransaction'), [StringComparer]::OrdinalIgnoreCase)
$stock = @{ WhatIf = 'Shows what would happen if the cmdlet runs. The cmdlet is not run.'
    Confirm = 'Prompts you for confirmation before running the cmdlet.' }

# --- Markdown ------------------------------------------------------------------------------------
# '# Title', '## SECTION' and '### Sub' headings (not inside fenced code) -> @{ Title; Sections = @{ NAME = @{ Lines; Subs } } }
function Split-Markdown([string] $Path) {
    $doc = @{ Title = $null; Sections = @{} }; $section = $null; $sub = $null; $inCode = $false
    foreach ($line in [IO.File]::ReadAllLines($Path)) {
        if ($line -match $fence) { $inCode = -not $inCode }
        elseif (-not $inCode -and $line -match '^(#{1,3})\s+(.+?)(\s+#+)?\s*$') {
            $level, $text = $Matches[1].Length, $Matches[2]
            if ($level -eq 1) { if (-not $doc.Title) { $doc.Title = $text } }
            elseif ($level -eq 2) { $sub = $null; $section = $doc.Sections[$text] = @{ Lines = [List[string]]::new(); Subs = [List[object]]::new() } }
            elseif ($section) { $sub = @{ Title = $text; Lines = [List[string]]::new() }; $section.Subs.Add($sub) }
            continue
        }
        if ($sub) { $sub.Lines.Add($line) } elseif ($section) { $section.Lines.Add($line) }
    }
    $doc
}

# Blank-line separated blocks -> @{ Code; Text }. Each list item starts a block; a fenced code block is one block.
function Get-Block([string[]] $Lines) {
    $buf = [List[string]]::new(); $code = $null
    $flush = { if ($buf.Count) { [pscustomobject]@{ Code = $false; Text = $buf -join ' ' }; $buf.Clear() } }
    foreach ($line in $Lines) {
        if ($null -ne $code) {
            if ($line -match $fence) { [pscustomobject]@{ Code = $true; Text = $code -join "`n" }; $code = $null } else { $code.Add($line) }
        }
        elseif ($line -match $fence) { & $flush; $code = [List[string]]::new() }
        elseif ($line -match '^\s*$') { & $flush }
        else { if ($line -match '^\s*([-*+]|\d+\.)\s') { & $flush }; $buf.Add($line.Trim()) }
    }
    & $flush
    if ($null -ne $code) { [pscustomobject]@{ Code = $true; Text = $code -join "`n" } }
}
function Get-Para([string[]] $Lines) { @(Get-Block $Lines | ForEach-Object Text) }

function Read-HelpMarkdown([string] $Path, [string] $Name) {
    $md = Split-Markdown $Path
    $sec = @{}; foreach ($k in $knownSections) { $sec[$k] = @{ Lines = @(); Subs = @() } }   # missing sections read as empty
    foreach ($k in $md.Sections.Keys) {
        if ($k -notin $knownSections) { Write-Warning "${Path}: unknown section '## $k' ignored" }
        $sec[$k] = $md.Sections[$k]
    }
    if ($md.Title -and $md.Title -ne $Name) { Write-Warning "${Path}: title '# $($md.Title)' is not '# $Name'" }
    $typed = { param($s) @(foreach ($t in $s.Subs) { [pscustomobject]@{ Name = $t.Title.Trim('`'); Paras = Get-Para $t.Lines } }) }
    $h = [pscustomobject]@{
        Synopsis = (Get-Para $sec['SYNOPSIS'].Lines) -join ' '; Description = Get-Para $sec['DESCRIPTION'].Lines
        Inputs = & $typed $sec['INPUTS']; Outputs = & $typed $sec['OUTPUTS']; Notes = Get-Para $sec['NOTES'].Lines
        Examples = [List[object]]::new(); Parameters = @{}; Links = [List[object]]::new()
    }
    if (-not $h.Synopsis) { $problems.Add("${Name}: no text under '## SYNOPSIS'") }
    if (-not $h.Description) { $problems.Add("${Name}: no text under '## DESCRIPTION'") }
    foreach ($s in $sec['EXAMPLES'].Subs) {   # the first fenced block is the code, every other block a remark
        $blocks = @(Get-Block $s.Lines); $i = [array]::FindIndex($blocks, [Predicate[object]] { $args[0].Code })
        if ($i -lt 0) { Write-Warning "${Name}: '### $($s.Title)' has no fenced code block; skipped"; continue }
        $remarks = @(for ($j = 0; $j -lt $blocks.Count; $j++) { if ($j -ne $i) { $blocks[$j].Text } })
        $h.Examples.Add([pscustomobject]@{ Title = $s.Title; Code = $blocks[$i].Text; Remarks = $remarks })
    }
    if (-not $h.Examples.Count) { $problems.Add("${Name}: no '### Example N: title' with a fenced code block under '## EXAMPLES'") }
    foreach ($s in $sec['PARAMETERS'].Subs) {
        $param = $s.Title.Trim('`').TrimStart('-'); $default = $null
        if ($param -eq 'CommonParameters') { continue }
        if ($h.Parameters.ContainsKey($param)) { $problems.Add("${Name}: '### -$param' appears twice") }
        $lines = foreach ($l in $s.Lines) { if ($l -match '^\s*Default value:\s*(.*?)\s*$') { $default = $Matches[1] } else { $l } }
        $h.Parameters[$param] = [pscustomobject]@{ Paras = Get-Para $lines; Default = $default }
    }
    foreach ($l in @($sec['RELATED LINKS'].Lines) -replace '^\s*([-*+]\s+)?' -replace '\s+$' -ne '') {   # [text](uri), <uri> or text
        $text, $uri = if ($l -match '^\[(.*)\]\((.*)\)$') { $Matches[1], $Matches[2] }
                      elseif ($l -match '^<?(https?://[^\s>]+)>?$') { '', $Matches[1] } else { $l, '' }
        if ($uri -notmatch '^[a-z][a-z0-9+.-]*:') { $uri = '' }   # relative (.md) links mean nothing to Get-Help -Online
        $h.Links.Add([pscustomobject]@{ Text = $text; Uri = $uri })
    }
    $h
}

# --- Reflection ----------------------------------------------------------------------------------
function Get-TypeName([type] $Type) {   # as shown in syntax: String[], List[String]; Nullable[T] shows as T
    if ($Type.IsArray) { return (Get-TypeName $Type.GetElementType()) + '[]' }
    if ($u = [Nullable]::GetUnderlyingType($Type)) { return Get-TypeName $u }
    if (-not $Type.IsGenericType) { return $Type.Name }
    ($Type.Name -replace '`\d+$') + '[' + (@($Type.GenericTypeArguments | ForEach-Object { Get-TypeName $_ }) -join ', ') + ']'
}
function Get-SyntaxParameter($Set) {   # one parameter set -> records; positional ones first (by position), then mandatory
    $records = foreach ($p in $Set.Parameters) {
        if ($common.Contains($p.Name)) { continue }
        [pscustomobject]@{
            Name = $p.Name; Type = $p.ParameterType; Required = $p.IsMandatory; Position = $p.Position; Aliases = @($p.Aliases)
            ByValue = $p.ValueFromPipeline; ByProp = $p.ValueFromPipelineByPropertyName
            Globbing = [bool]@($p.Attributes | Where-Object { $_ -is [SupportsWildcardsAttribute] }).Count
        }
    }
    $records | Sort-Object -Stable { if ($_.Position -eq [int]::MinValue) { [int]::MaxValue } else { $_.Position } }, { -not $_.Required }
}

# --- MAML writer ---------------------------------------------------------------------------------
# Writes <prefix:name>; $Content is text, or a scriptblock that writes attributes and child elements.
function Write-Element([string] $Prefix, [string] $Name, $Content) {
    $w.WriteStartElement($Prefix, $Name, $ns[$Prefix])
    if ($Content -is [scriptblock]) { & $Content } elseif ($null -ne $Content) { $w.WriteString([string] $Content) }
    $w.WriteEndElement()
}
function Write-Para([string] $Prefix, [string] $Name, [string[]] $Paras) { Write-Element $Prefix $Name { foreach ($p in $Paras) { Write-Element maml para $p } } }
function Write-DevType([string] $TypeName) { Write-Element dev type { Write-Element maml name $TypeName } }
function Write-TypeList([string] $List, [string] $Item, $Types) {   # inputTypes / returnValues
    Write-Element command $List { foreach ($t in $Types) { Write-Element command $Item { Write-DevType $t.Name; Write-Para maml description $t.Paras } } }
}
function Write-Parameter($P, $Doc, [switch] $WithDefault) {
    Write-Element command parameter {
        $pipe = @(if ($P.ByValue) { 'ByValue' }; if ($P.ByProp) { 'ByPropertyName' })
        $w.WriteAttributeString('required', "$($P.Required)".ToLowerInvariant())
        $w.WriteAttributeString('variableLength', "$($P.Type.IsArray)".ToLowerInvariant())
        $w.WriteAttributeString('globbing', "$($P.Globbing)".ToLowerInvariant())
        $w.WriteAttributeString('pipelineInput', $(if ($pipe) { "True ($($pipe -join ', '))" } else { 'False' }))
        $w.WriteAttributeString('position', $(if ($P.Position -eq [int]::MinValue) { 'named' } else { "$($P.Position)" }))
        $w.WriteAttributeString('aliases', $(if ($P.Aliases) { $P.Aliases -join ', ' } else { 'none' }))
        Write-Element maml name $P.Name
        Write-Para maml description $Doc.Paras
        if ($P.Type -ne [SwitchParameter]) {
            Write-Element command parameterValue {
                $w.WriteAttributeString('required', 'true'); $w.WriteAttributeString('variableLength', 'false')
                $w.WriteString((Get-TypeName $P.Type))
            }
        }
        Write-DevType $P.Type.ToString()
        if ($WithDefault -and $Doc.Default) { Write-Element dev defaultValue $Doc.Default }
    }
}
function Write-Command($Cmd, $Doc, $Sets, $AllParams) {
    Write-Element command command {
        foreach ($p in 'maml', 'dev', 'MSHelp') { $w.WriteAttributeString('xmlns', $p, 'http://www.w3.org/2000/xmlns/', $ns[$p]) }
        Write-Element command details {
            Write-Element command name $Cmd.Name; Write-Para maml description $Doc.Synopsis
            Write-Element command verb $Cmd.Verb; Write-Element command noun $Cmd.Noun
        }
        Write-Para maml description $Doc.Description
        Write-Element command syntax {
            foreach ($set in $Sets) {
                Write-Element command syntaxItem {
                    Write-Element maml name $Cmd.Name
                    foreach ($p in $set) { Write-Parameter $p $Doc.Parameters[$p.Name] }
                }
            }
        }
        Write-Element command parameters { foreach ($p in $AllParams) { Write-Parameter $p $Doc.Parameters[$p.Name] -WithDefault } }
        Write-TypeList inputTypes inputType $Doc.Inputs
        Write-TypeList returnValues returnValue $Doc.Outputs
        if ($Doc.Notes) { Write-Element maml alertSet { Write-Para maml alert $Doc.Notes } }
        Write-Element command examples {
            foreach ($e in $Doc.Examples) {
                Write-Element command example {
                    Write-Element maml title "--------- $($e.Title) ---------"; Write-Element dev code $e.Code
                    Write-Para dev remarks (@($e.Remarks) + '')   # trailing empty para: blank line before the next example
                }
            }
        }
        Write-Element command relatedLinks {
            foreach ($l in $Doc.Links) { Write-Element maml navigationLink { Write-Element maml linkText $l.Text; Write-Element maml uri $l.Uri } }
        }
    }
}

# --- Main ----------------------------------------------------------------------------------------
$Manifest = (Resolve-Path -LiteralPath $Manifest).ProviderPath
$Source = (Resolve-Path -LiteralPath $Source).ProviderPath
$Destination = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Destination)
$moduleName = [IO.Path]::GetFileNameWithoutExtension($Manifest)
Import-Module -Name $Manifest -Force
$cmdlets = @(Get-Command -Module $moduleName -CommandType Cmdlet | Sort-Object Name)
if (-not $cmdlets) { $Host.UI.WriteErrorLine("New-KvmPSMaml: module $moduleName ($Manifest) exports no cmdlets"); exit 1 }

$problems = [List[string]]::new()
foreach ($f in Get-ChildItem -LiteralPath $Source -Filter *.md | Where-Object { $_.BaseName -match '^\w+-\w+$' -and $_.BaseName -notin $cmdlets.Name }) {
    Write-Warning "$($f.FullName): $moduleName exports no cmdlet $($f.BaseName) (stale doc, or missing from CmdletsToExport?)"
}
$work = foreach ($cmd in $cmdlets) {
    $sets = @(foreach ($set in $cmd.ParameterSets) { , @(Get-SyntaxParameter $set) })
    $union = [ordered]@{}   # every parameter once, merged over the sets
    foreach ($p in $sets.ForEach({ $_ })) {
        if (-not $union.Contains($p.Name)) { $union[$p.Name] = $p.PSObject.Copy(); continue }
        $u = $union[$p.Name]; $u.Required = $u.Required -or $p.Required
        $u.ByValue = $u.ByValue -or $p.ByValue; $u.ByProp = $u.ByProp -or $p.ByProp
        if ($u.Position -eq [int]::MinValue) { $u.Position = $p.Position }
    }
    $mdPath = Join-Path $Source "$($cmd.Name).md"
    if (-not (Test-Path -LiteralPath $mdPath -PathType Leaf)) { $problems.Add("$($cmd.Name): no help file $mdPath"); continue }
    $doc = Read-HelpMarkdown $mdPath $cmd.Name
    foreach ($name in $union.Keys) {
        $param = $doc.Parameters[$name]
        if (-not $param -and $stock.ContainsKey($name)) { $param = $doc.Parameters[$name] = [pscustomobject]@{ Paras = $stock[$name]; Default = $null } }
        if (-not $param -or -not $param.Paras) { $problems.Add("$($cmd.Name): parameter -$name has no '### -$name' section with text") }
    }
    foreach ($name in $doc.Parameters.Keys) {
        if (-not $union.Contains($name)) { $problems.Add("$($cmd.Name): '### -$name' documents a parameter the cmdlet does not have (stale docs)") }
    }
    if (-not $doc.Inputs) {   # no INPUTS/OUTPUTS docs: fall back to the pipeline-bound parameter types and [OutputType()]
        $doc.Inputs = @($union.Values | Where-Object { $_.ByValue -or $_.ByProp } | ForEach-Object { "$($_.Type)" } | Select-Object -Unique |
            ForEach-Object { [pscustomobject]@{ Name = $_; Paras = @() } })
    }
    if (-not $doc.Outputs) { $doc.Outputs = @($cmd.OutputType | ForEach-Object { [pscustomobject]@{ Name = $_.Name; Paras = @() } }) }
    [pscustomobject]@{ Cmd = $cmd; Doc = $doc; Sets = $sets; All = @($union.Values | Sort-Object Name) }
}
if ($problems.Count) {
    $Host.UI.WriteErrorLine("New-KvmPSMaml: $($problems.Count) help problem(s) in ${Source}:`n  " + ($problems -join "`n  "))
    exit 1
}

$null = New-Item -ItemType Directory -Path $Destination -Force
$settings = [Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [Text.UTF8Encoding]::new($false) }
foreach ($group in $work | Group-Object { if ($_.Cmd.DLL) { Split-Path -Leaf $_.Cmd.DLL } else { "$moduleName.dll" } }) {
    $file = Join-Path $Destination "$($group.Name)-Help.xml"
    $w = [Xml.XmlWriter]::Create($file, $settings)
    try {
        $w.WriteStartDocument(); $w.WriteStartElement('helpItems', 'http://msh'); $w.WriteAttributeString('schema', 'maml')
        foreach ($i in $group.Group) { Write-Command $i.Cmd $i.Doc $i.Sets $i.All }
        $w.WriteEndElement()
    } finally { $w.Dispose() }
    Write-Host "New-KvmPSMaml: wrote help for $($group.Count) cmdlet(s) to $file"
}
