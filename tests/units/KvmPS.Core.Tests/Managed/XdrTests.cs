using KvmPS.Core.Backend;
using KvmPS.Core.Managed;

namespace KvmPS.Core.Tests.Managed;

/// <summary>The XDR codec: round trips, byte layout, and every length checked before it allocates.</summary>
public sealed class XdrTests
{
    private static XdrReader Reader(Action<XdrWriter> write) => new(FakeDaemon.Xdr(write));

    [Fact]
    public void Scalars_RoundTrip_BigEndian()
    {
        byte[] bytes = FakeDaemon.Xdr(w =>
        {
            w.WriteInt32(-2);
            w.WriteUInt32(0xDEADBEEF);
            w.WriteInt64(long.MinValue);
            w.WriteUInt64(ulong.MaxValue - 1);
            w.WriteDouble(3.25);
            w.WriteBool(true);
        });
        Assert.Equal(4 + 4 + 8 + 8 + 8 + 4, bytes.Length);
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFE, 0xDE, 0xAD, 0xBE, 0xEF }, bytes[..8]);
        var r = new XdrReader(bytes);
        Assert.Equal(-2, r.ReadInt32());
        Assert.Equal(0xDEADBEEFu, r.ReadUInt32());
        Assert.Equal(long.MinValue, r.ReadInt64());
        Assert.Equal(ulong.MaxValue - 1, r.ReadUInt64());
        Assert.Equal(3.25, r.ReadDouble());
        Assert.True(r.ReadBool());
        Assert.Equal(0, r.Remaining);
    }

    [Theory]
    [InlineData("", 4)]
    [InlineData("a", 8)]
    [InlineData("abcd", 8)]
    [InlineData("abcde", 12)]
    [InlineData("été ✓", 16)]   // UTF-8: 9 bytes + 3 padding + 4 length
    public void Strings_ArePaddedToFour_AndRoundTrip(string value, int expectedLength)
    {
        byte[] bytes = FakeDaemon.Xdr(w => w.WriteString(value));
        Assert.Equal(expectedLength, bytes.Length);
        Assert.Equal(value, new XdrReader(bytes).ReadString());
    }

    [Fact]
    public void OptionalValues_CarryADiscriminant()
    {
        byte[] none = FakeDaemon.Xdr(w => w.WriteOptionalString(null));
        Assert.Equal(new byte[] { 0, 0, 0, 0 }, none);
        var r = Reader(w =>
        {
            w.WriteOptionalString("x");
            w.WriteOptionalString(null);
            w.WriteOptionalDomain(null);
            w.WriteOptionalDomain(new DomainRef("vm", Guid.NewGuid(), 3));
        });
        Assert.Equal("x", r.ReadOptionalString());
        Assert.Null(r.ReadOptionalString());
        Assert.Null(r.ReadOptionalDomain());
        Assert.Equal("vm", r.ReadOptionalDomain()!.Value.Name);
    }

    [Fact]
    public void Uuid_IsWrittenInRfc4122ByteOrder()
    {
        var g = Guid.Parse("6695eb01-f6a4-8304-79aa-97f2502e193f");
        byte[] bytes = FakeDaemon.Xdr(w => w.WriteUuid(g));
        Assert.Equal(Convert.FromHexString("6695eb01f6a4830479aa97f2502e193f"), bytes);
        Assert.Equal(g, new XdrReader(bytes).ReadUuid());
    }

    [Fact]
    public void Domain_RoundTrips()
    {
        var d = new DomainRef("kvmps-t-x", Guid.NewGuid(), -1);
        Assert.Equal(d, Reader(w => w.WriteDomain(d)).ReadDomain());
    }

    [Fact]
    public void Opaque_FixedAndVariable_RoundTrip()
    {
        var r = Reader(w =>
        {
            w.WriteOpaqueFixed(new byte[] { 1, 2, 3 });
            w.WriteOpaque(new byte[] { 9, 8, 7, 6, 5 });
        });
        Assert.Equal(new byte[] { 1, 2, 3 }, r.ReadOpaqueFixed(3));
        Assert.Equal(new byte[] { 9, 8, 7, 6, 5 }, r.ReadOpaque(16));
        Assert.Equal(0, r.Remaining);
    }

    [Fact]
    public void TypedParameters_EveryType_RoundTrips()
    {
        TypedParameter[] ps =
        [
            new("i", TypedParameterType.Int, -5),
            new("ui", TypedParameterType.UInt, 5u),
            new("l", TypedParameterType.LLong, -5L),
            new("ul", TypedParameterType.ULLong, 5UL),
            new("d", TypedParameterType.Double, 0.5),
            new("b", TypedParameterType.Boolean, true),
            new("s", TypedParameterType.String, "text"),
            new("balloon.maximum", TypedParameterType.ULLong, 1024UL),
        ];
        TypedParameter[] back = Reader(w => w.WriteTypedParameters(ps)).ReadTypedParameters();
        Assert.Equal(ps, back);
        Assert.Same("balloon.maximum", back[7].Name);   // known stats names are interned
    }

    [Fact]
    public void Arrays_RoundTrip()
    {
        int[] items = [1, 2, 3];
        IReadOnlyList<int> back = Reader(w => w.WriteArray(items, (x, i) => x.WriteInt32(i))).ReadArray(r => r.ReadInt32(), 10);
        Assert.Equal(items, back);
    }

    [Fact]
    public void StringLongerThanTheLimit_IsRejected_BeforeAllocation()
    {
        var r = Reader(w => w.WriteUInt32(XdrLimits.StringMax + 1));
        var e = Assert.Throws<LibvirtException>(() => r.ReadString());
        Assert.Equal(LibvirtErrorCode.Rpc, e.Code);
        Assert.Equal(LibvirtErrorDomain.Rpc, e.ErrorDomain);
    }

    [Fact]
    public void StringLongerThanTheMessage_IsRejected()
    {
        var r = Reader(w =>
        {
            w.WriteUInt32(100);
            w.WriteUInt32(0);
        });
        Assert.Equal(LibvirtErrorCode.Rpc, Assert.Throws<LibvirtException>(() => r.ReadString()).Code);
    }

    [Fact]
    public void ArrayCountAboveMaximum_OrAboveWhatIsLeft_IsRejected()
    {
        Assert.Equal(LibvirtErrorCode.Rpc,
            Assert.Throws<LibvirtException>(() => Reader(w => w.WriteUInt32(11)).ReadArray(r => r.ReadInt32(), 10)).Code);
        // a huge count with a short message: refused before allocating the array
        Assert.Equal(LibvirtErrorCode.Rpc,
            Assert.Throws<LibvirtException>(() => Reader(w => w.WriteUInt32(16000)).ReadArray(r => r.ReadInt32(), 16384)).Code);
        Assert.Equal(LibvirtErrorCode.Rpc,
            Assert.Throws<LibvirtException>(() => Reader(w => w.WriteUInt32(uint.MaxValue)).ReadTypedParameters()).Code);
    }

    [Fact]
    public void TruncatedInput_AndBadDiscriminants_AreRejected()
    {
        Assert.Throws<LibvirtException>(() => new XdrReader([0, 0, 1]).ReadInt32());
        Assert.Throws<LibvirtException>(() => new XdrReader([0, 0, 0, 0, 0, 0, 0]).ReadUInt64());
        Assert.Throws<LibvirtException>(() => Reader(w => w.WriteUInt32(2)).ReadOptionalString());
        Assert.Throws<LibvirtException>(() => Reader(w => w.WriteUInt32(7)).ReadOpaque(4));
        Assert.Throws<LibvirtException>(() => new XdrReader(new byte[8]).ReadUuid());
        var unknownType = Reader(w =>
        {
            w.WriteUInt32(1);
            w.WriteString("f");
            w.WriteInt32(99);
        });
        Assert.Throws<LibvirtException>(() => unknownType.ReadTypedParameters());
    }

    [Fact]
    public void WritingAStringAboveTheLimit_Throws()
    {
        using var w = new XdrWriter();
        Assert.Throws<LibvirtException>(() => w.WriteString(new string('x', XdrLimits.StringMax + 1)));
    }

    [Fact]
    public void Writer_ReservesRoomForTheHeader()
    {
        using var w = new XdrWriter(28);
        w.WriteInt32(7);
        Assert.Equal(32, w.Length);
    }
}
