using System.Xml.Linq;
using KvmPS.Core.Services;
using KvmPS.Core.Xml;

namespace KvmPS.Core.Tests;

public sealed class DeviceTests
{
    [Theory]
    [InlineData("52:54:00:AB:cd:01", "52:54:00:ab:cd:01")]
    [InlineData("52-54-00-ab-cd-01", "52:54:00:ab:cd:01")]
    [InlineData("525400abcd01", "52:54:00:ab:cd:01")]
    [InlineData(" 02:00:00:00:00:01 ", "02:00:00:00:00:01")]
    public void NormalizeMac_AcceptsUnicastInAnySpelling(string input, string expected)
        => Assert.Equal(expected, DeviceService.NormalizeMac(input));

    [Theory]
    [InlineData("01:00:5e:00:00:01")]   // multicast
    [InlineData("ff:ff:ff:ff:ff:ff")]   // broadcast
    [InlineData("00:00:00:00:00:00")]
    [InlineData("52:54:00:12:34")]      // 5 octets
    [InlineData("52:54:00:12:34:56:78")]
    [InlineData("52:54-00:12:34:56")]   // mixed separators
    [InlineData("52:54:00:12:34:5g")]
    public void NormalizeMac_RefusesWithInvalidMacAddress(string input)
    {
        KvmOperationException e = Assert.Throws<KvmOperationException>(() => DeviceService.NormalizeMac(input));
        Assert.Equal("InvalidMacAddress", e.ErrorId);
        Assert.Equal(KvmErrorKind.InvalidArgument, e.Kind);
        Assert.Equal(input, e.Target);
    }

    [Theory]
    [InlineData(0, "a")]
    [InlineData(1, "b")]
    [InlineData(25, "z")]
    [InlineData(26, "aa")]
    [InlineData(27, "ab")]
    [InlineData(51, "az")]
    [InlineData(52, "ba")]
    [InlineData(701, "zz")]
    public void DiskLetters_FollowLibvirtsNaming(int index, string letters)
        => Assert.Equal(letters, DeviceService.DiskLetters(index));

    [Fact]
    public void Interface_LinkState_RoundTrips()
    {
        XElement down = DomainXml.BuildInterface(new KvmVmNetworkAdapter { Type = "network", Source = "lab", MacAddress = "52:54:00:00:00:01", Model = "virtio", LinkState = KvmLinkState.Down });
        Assert.Equal("down", (string?)down.Element("link")?.Attribute("state"));
        Assert.Equal(KvmLinkState.Down, DomainXml.ParseInterface(down).LinkState);

        XElement up = DomainXml.BuildInterface(new KvmVmNetworkAdapter { Type = "bridge", Source = "br0" });
        Assert.Null(up.Element("link"));
        Assert.Equal("br0", (string?)up.Element("source")?.Attribute("bridge"));
        Assert.Equal(KvmLinkState.Up, DomainXml.ParseInterface(up).LinkState);
    }
}
