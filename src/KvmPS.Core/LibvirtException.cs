namespace KvmPS.Core;

/// <summary>libvirt's virErrorNumber values that KvmPS distinguishes (others keep their number).</summary>
public enum LibvirtErrorCode
{
    /// <summary>Not a libvirt code: the libvirt library itself could not be loaded.</summary>
    LibraryNotLoaded = -2,
    /// <summary>Not a libvirt code: the connection was lost and will be reopened on the next call.</summary>
    ConnectionLost = -3,
    Ok = 0,
    InternalError = 1,
    NoMemory = 2,
    NoSupport = 3,
    UnknownHost = 4,
    NoConnect = 5,
    InvalidConn = 6,
    InvalidDomain = 7,
    InvalidArg = 8,
    OperationFailed = 9,
    GetFailed = 10,
    PostFailed = 11,
    HttpError = 12,
    SexprSerial = 13,
    NoXen = 14,
    XenCall = 15,
    OsType = 16,
    NoKernel = 17,
    NoRoot = 18,
    NoSource = 19,
    NoTarget = 20,
    NoName = 21,
    NoOs = 22,
    NoDevice = 23,
    NoXenstore = 24,
    DriverFull = 25,
    CallFailed = 26,
    XmlError = 27,
    DomExist = 28,
    OperationDenied = 29,
    OpenFailed = 30,
    ReadFailed = 31,
    ParseFailed = 32,
    ConfSyntax = 33,
    WriteFailed = 34,
    XmlDetail = 35,
    InvalidNetwork = 36,
    NetworkExist = 37,
    SystemError = 38,
    Rpc = 39,
    GnutlsError = 40,
    NoNetworkStart = 41,
    NoDomain = 42,
    NoNetwork = 43,
    InvalidMac = 44,
    AuthFailed = 45,
    InvalidStoragePool = 46,
    InvalidStorageVol = 47,
    NoStorage = 48,
    NoStoragePool = 49,
    NoStorageVol = 50,
    NoNode = 51,
    InvalidNodeDevice = 52,
    NoNodeDevice = 53,
    NoSecurityModel = 54,
    OperationInvalid = 55,
    NoInterface = 56,
    NoDomainSnapshot = 72,
    InvalidDomainSnapshot = 71,
    ArgumentUnsupported = 74,
    OperationAborted = 78,
    AuthCancelled = 79,
    OperationTimeout = 68,
    NoDomainMetadata = 80,
    MigrateUnsafe = 81,
    Overflow = 82,
    BlockCopyActive = 83,
    OperationUnsupported = 84,
    AgentUnresponsive = 86,
    ResourceBusy = 87,
    AccessDenied = 88,
    DbusService = 89,
    StorageVolExist = 90,
    CpuIncompatible = 91,
    XmlInvalidSchema = 92,
    MigrateFinishOk = 93,
    AuthUnavailable = 94,
    NoServer = 95,
    NoClient = 96,
    AgentUnsynced = 97,
    Libssh = 98,
    DeviceMissing = 99,
    InvalidNwfilterBinding = 100,
    NoNwfilterBinding = 101,
    InvalidDomainCheckpoint = 102,
    NoDomainCheckpoint = 103,
    NoDomainBackup = 104,
    InvalidNetworkPort = 105,
    NetworkPortExist = 106,
    NoNetworkPort = 107,
    NoHostname = 108,
    CheckpointInconsistent = 109,
    MultipleDomains = 110,
    NoNetworkMetadata = 111,
}

/// <summary>libvirt's virErrorDomain values (where the error came from).</summary>
public enum LibvirtErrorDomain
{
    None = 0,
    Xen = 1,
    Xend = 2,
    Xenstore = 3,
    Sexpr = 4,
    Xml = 5,
    Dom = 6,
    Rpc = 7,
    Proxy = 8,
    Conf = 9,
    Qemu = 10,
    Net = 11,
    Test = 12,
    Remote = 13,
    Storage = 18,
    Network = 19,
    Domain = 20,
    Nodedev = 22,
    Security = 24,
    Interface = 26,
    Secret = 30,
    Cpu = 31,
    DomainSnapshot = 35,
    Streams = 38,
    Capabilities = 44,
    Uri = 45,
    Auth = 46,
    Ssh = 50,
    Libssh = 66,
    DomainCheckpoint = 69,
}

/// <summary>An error reported by libvirt (or by KvmPS about libvirt), with libvirt's code and domain.</summary>
public class LibvirtException : Exception
{
    public LibvirtException(LibvirtErrorCode code, LibvirtErrorDomain domain, string message, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        ErrorDomain = domain;
    }

    /// <summary>libvirt's error number (virErrorNumber).</summary>
    public LibvirtErrorCode Code { get; }

    /// <summary>libvirt's error domain (virErrorDomain).</summary>
    public LibvirtErrorDomain ErrorDomain { get; }

    /// <summary>libvirt's error level (1 warning, 2 error).</summary>
    public int Level { get; init; } = 2;

    /// <summary>The libvirt function that failed.</summary>
    public string? Function { get; init; }

    /// <summary>What the user can do about it, when known.</summary>
    /// <summary>A more precise PowerShell ErrorId than the code gives (SshHostKeyUnknown, TlsCertificateUntrusted ...); null: from the code.</summary>
    public string? ErrorId { get; init; }

    public string? Hint { get; init; }

    /// <summary>True when the error means the connection to the daemon is gone.</summary>
    public bool IsConnectionFailure =>
        Code is LibvirtErrorCode.ConnectionLost or LibvirtErrorCode.NoConnect or LibvirtErrorCode.InvalidConn
        || (Code is LibvirtErrorCode.InternalError or LibvirtErrorCode.SystemError && ErrorDomain == LibvirtErrorDomain.Rpc);
}
