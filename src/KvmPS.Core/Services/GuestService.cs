using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KvmPS.Core.Backend;

namespace KvmPS.Core.Services;

/// <summary>Talks to the QEMU guest agent: guest facts, commands, readiness, addresses.</summary>
public static class GuestService
{
    private const uint InfoUsers = 1, InfoOs = 2, InfoTimezone = 4, InfoHostname = 8, InfoFilesystem = 16;

    /// <summary>Guest facts through virDomainGetGuestInfo; GuestAgentUnavailable when no agent answers.</summary>
    public static KvmGuestInfo GetInfo(KvmVm vm)
    {
        RequireRunning(vm);
        IReadOnlyList<TypedParameter> p;
        try
        {
            p = vm.Connection.Invoke(c => c.GetGuestInfo(vm.Ref, InfoUsers | InfoOs | InfoTimezone | InfoHostname | InfoFilesystem));
        }
        catch (LibvirtException e) when (IsAgentProblem(e))
        {
            throw Unavailable(vm, e);
        }

        var map = p.GroupBy(x => x.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Value, StringComparer.Ordinal);
        string? S(string k) => map.TryGetValue(k, out object? v) ? v?.ToString() : null;
        ulong? U(string k) => map.TryGetValue(k, out object? v) ? new TypedParameter(k, TypedParameterType.ULLong, v!).AsUInt64() : null;
        var users = new List<KvmGuestUser>();
        for (int i = 0; i < (int)(U("user.count") ?? 0); i++)
        {
            ulong? login = U($"user.{i}.login-time");
            users.Add(new KvmGuestUser(S($"user.{i}.name") ?? string.Empty, S($"user.{i}.domain"),
                login is { } ms and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds((long)ms).LocalDateTime : null));
        }

        var fs = new List<KvmGuestFileSystem>();
        for (int i = 0; i < (int)(U("fs.count") ?? 0); i++)
        {
            fs.Add(new KvmGuestFileSystem(S($"fs.{i}.mountpoint") ?? string.Empty, S($"fs.{i}.name"), S($"fs.{i}.fstype"),
                U($"fs.{i}.total-bytes"), U($"fs.{i}.used-bytes")));
        }

        return new KvmGuestInfo
        {
            VMName = vm.Name,
            OsName = S("os.pretty-name") ?? S("os.name"),
            OsVersion = S("os.version") ?? S("os.version-id"),
            OsId = S("os.id"),
            KernelRelease = S("os.kernel-release"),
            KernelVersion = S("os.kernel-version"),
            Machine = S("os.machine"),
            HostName = S("hostname"),
            TimeZone = S("timezone.name"),
            UtcOffset = map.TryGetValue("timezone.offset", out object? off) && off is int seconds ? TimeSpan.FromSeconds(seconds) : null,
            Users = users,
            FileSystems = fs,
            Connection = vm.Connection,
        };
    }

    /// <summary>True when the guest agent answers a ping.</summary>
    public static bool Ping(KvmVm vm)
    {
        try
        {
            string answer = vm.Connection.Invoke(c => c.QemuAgentCommand(vm.Ref, """{"execute":"guest-ping"}""", 5));
            return answer.Contains("\"return\"", StringComparison.Ordinal);
        }
        catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
        {
            return false;
        }
    }

    /// <summary>The guest's IP addresses (not loopback/link-local): from the agent, else the DHCP lease. Empty when unknown.</summary>
    public static IReadOnlyList<string> Addresses(KvmVm vm, System.Net.Sockets.AddressFamily? family, out string? source)
    {
        foreach ((int src, string name) in new[] { (1, "Agent"), (0, "Lease") })
        {
            try
            {
                IReadOnlyList<GuestInterface> ifaces = vm.Connection.Invoke(c => c.GetInterfaceAddresses(vm.Ref, src));
                var found = ifaces.Where(i => i.Name != "lo").SelectMany(i => i.Addresses)
                    .Select(a => a.Address)
                    .Where(a => System.Net.IPAddress.TryParse(a, out System.Net.IPAddress? ip)
                        && !System.Net.IPAddress.IsLoopback(ip) && !ip.IsIPv6LinkLocal
                        && (family is null || ip.AddressFamily == family))
                    .Distinct().ToList();
                if (found.Count > 0)
                {
                    source = name;
                    return found;
                }
            }
            catch (LibvirtException e) when (!e.IsConnectionFailure && e.Code != LibvirtErrorCode.ConnectionLost)
            {
                // this source cannot answer (no agent, no lease support): try the next
            }
        }

        source = null;
        return [];
    }

    /// <summary>Waits until <paramref name="ready"/> holds, checking every second with progress; false on timeout.</summary>
    public static bool WaitUntil(KvmVm vm, Func<bool> ready, string what, TimeSpan timeout, IKvmLog log, CancellationToken cancel)
    {
        var sw = Stopwatch.StartNew();
        string activity = $"Waiting for {vm.Name}";
        try
        {
            while (true)
            {
                if (ready())
                {
                    return true;
                }

                TimeSpan left = timeout - sw.Elapsed;
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                log.Progress(activity, $"waiting for {what} ({left.TotalSeconds:0} s left)",
                    timeout.TotalMilliseconds <= 0 ? 0 : (int)Math.Min(99, 100 * sw.Elapsed.TotalMilliseconds / timeout.TotalMilliseconds));
                if (cancel.WaitHandle.WaitOne(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1)))
                {
                    cancel.ThrowIfCancellationRequested();
                }
            }
        }
        finally
        {
            log.Progress(activity, "done", 100, completed: true);
        }
    }

    /// <summary>Runs a program in the guest (guest-exec), waits for it, and returns its exit code and output.</summary>
    public static KvmGuestCommandResult Exec(KvmVm vm, string path, IReadOnlyList<string> arguments, TimeSpan timeout, IKvmLog log, CancellationToken cancel)
    {
        RequireRunning(vm);
        var request = new JsonObject
        {
            ["execute"] = "guest-exec",
            ["arguments"] = new JsonObject
            {
                ["path"] = path,
                ["arg"] = new JsonArray(arguments.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
                ["capture-output"] = true,
            },
        };
        string started;
        try
        {
            log.Verbose($"Running '{path}' in VM '{vm.Name}' through the guest agent");
            started = vm.Connection.Invoke(c => c.QemuAgentCommand(vm.Ref, request.ToJsonString(), 10));
        }
        catch (LibvirtException e) when (IsAgentProblem(e))
        {
            throw Unavailable(vm, e);
        }

        long pid = JsonNode.Parse(started)?["return"]?["pid"]?.GetValue<long>()
            ?? throw new KvmOperationException("GuestCommandFailed", $"The guest agent of VM '{vm.Name}' did not start '{path}': {started}", vm.Name);
        var status = new JsonObject { ["execute"] = "guest-exec-status", ["arguments"] = new JsonObject { ["pid"] = pid } };
        JsonNode? result = null;
        bool exited = GuestWait(vm, () =>
        {
            result = JsonNode.Parse(vm.Connection.Invoke(c => c.QemuAgentCommand(vm.Ref, status.ToJsonString(), 10)))?["return"];
            return result?["exited"]?.GetValue<bool>() == true;
        }, $"'{path}' to finish", timeout, log, cancel);
        return new KvmGuestCommandResult
        {
            VMName = vm.Name,
            Command = arguments.Count == 0 ? path : $"{path} {string.Join(' ', arguments)}",
            ExitCode = exited ? result?["exitcode"]?.GetValue<int>() ?? -1 : -1,
            StdOut = Decode(result?["out-data"]),
            StdErr = Decode(result?["err-data"]),
            TimedOut = !exited,
        };
    }

    private static bool GuestWait(KvmVm vm, Func<bool> done, string what, TimeSpan timeout, IKvmLog log, CancellationToken cancel)
        => WaitUntil(vm, done, what, timeout, log, cancel);

    private static string Decode(JsonNode? node)
        => node is null ? string.Empty : Encoding.UTF8.GetString(Convert.FromBase64String(node.GetValue<string>()));

    private static void RequireRunning(KvmVm vm)
    {
        KvmVm now = VmService.Refresh(vm);
        if (now.State != KvmVmState.Running)
        {
            throw new KvmOperationException("GuestAgentUnavailable", $"VM '{vm.Name}' is {now.State}: its guest agent can only answer while it runs.", vm.Name)
            {
                Kind = KvmErrorKind.Unavailable,
                Hint = "Start the VM (and wait for it with Wait-KvmVm -For GuestAgent).",
            };
        }
    }

    internal static bool IsAgentProblem(LibvirtException e)
        => e.Code is LibvirtErrorCode.AgentUnresponsive or LibvirtErrorCode.AgentUnsynced or LibvirtErrorCode.ArgumentUnsupported
           || (e.Code is LibvirtErrorCode.OperationInvalid or LibvirtErrorCode.OperationUnsupported or LibvirtErrorCode.InternalError
               && e.Message.Contains("agent", StringComparison.OrdinalIgnoreCase));

    private static KvmOperationException Unavailable(KvmVm vm, LibvirtException e)
        => new("GuestAgentUnavailable", $"The guest agent of VM '{vm.Name}' does not answer ({e.Message}).", vm.Name, e)
        {
            Kind = KvmErrorKind.Unavailable,
            Hint = "Install and start qemu-guest-agent in the guest; the VM needs the org.qemu.guest_agent.0 channel (New-KvmVm adds it).",
        };
}
