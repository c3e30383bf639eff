using Renci.SshNet;

namespace KvmPS.Transport.Ssh;

/// <summary>
/// The remote command's stdin (writes) and stdout (reads) as one duplex stream. Owns the command and the SSH
/// client (and the key files): disposing it sends EOF and closes the session. When the command ends before sending anything (no
/// virt-ssh-helper and no nc, a wrong socket), reading fails with what the command wrote to stderr.
/// </summary>
internal sealed class SshChannelStream : Stream
{
    private readonly SshClient _client;
    private readonly SshCommand _command;
    private readonly Task _execution;
    private readonly Stream _stdin;
    private readonly Stream _stdout;
    private readonly string _target;
    private readonly IReadOnlyList<IDisposable> _owned;
    private long _received;
    private int _disposed;

    public SshChannelStream(SshClient client, SshCommand command, Task execution, string target, IReadOnlyList<IDisposable> owned)
    {
        _owned = owned;
        _client = client;
        _command = command;
        _execution = execution;
        _target = target;
        _stdin = command.CreateInputStream();
        _stdout = command.OutputStream;
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = _stdout.Read(buffer);
        return Received(n);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await _stdout.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Received(n);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => _stdin.Write(buffer, offset, count);

    public override void Write(ReadOnlySpan<byte> buffer) => _stdin.Write(buffer);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        => _stdin.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => _stdin.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => _stdin.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _stdin.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            foreach (Action close in new Action[] { _stdin.Dispose, _command.Dispose, _client.Disconnect, _client.Dispose }.Concat(_owned.Select(o => (Action)o.Dispose)))
            {
                try
                {
                    close();
                }
                catch (Exception)
                {
                    // closing a broken session: nothing more to do
                }
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>EOF before any byte: the remote command failed to start the proxy; say why.</summary>
    private int Received(int n)
    {
        if (n > 0)
        {
            Interlocked.Add(ref _received, n);
            return n;
        }

        if (Interlocked.Read(ref _received) == 0 && Volatile.Read(ref _disposed) == 0)
        {
            string detail = string.Empty;
            try
            {
                if (_execution.Wait(TimeSpan.FromSeconds(5)))
                {
                    detail = (_command.Error ?? string.Empty).Trim();
                }
            }
            catch (AggregateException)
            {
                // the command failed; its stderr (if any) is still the best explanation
                detail = (_command.Error ?? string.Empty).Trim();
            }

            string status = _command.ExitStatus is int code ? $" (exit status {code})" : string.Empty;
            throw new IOException(detail.Length > 0
                ? $"The remote proxy command on {_target} ended{status}: {detail}"
                : $"The remote proxy command on {_target} ended{status} without connecting to libvirt (is virt-ssh-helper or nc installed there?).");
        }

        return 0;
    }
}
