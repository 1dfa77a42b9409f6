#include <vector>

#include <doctest/doctest.h>

#include <hookctl/util/cidr.hpp>

using namespace hookctl;

namespace {

util::IpAddress ip(std::string_view text) {
    auto address = util::parse_ip(text);
    REQUIRE_MESSAGE(address, text);
    return *address;
}

util::Cidr cidr(std::string_view text) {
    auto range = util::parse_cidr(text);
    REQUIRE_MESSAGE(range, text);
    return *range;
}

} // namespace

TEST_CASE("util::parse_ip reads IPv4, IPv6, bracketed IPv6 and keeps IPv4-mapped as IPv4") {
    CHECK(util::to_string(ip("192.0.2.1")) == "192.0.2.1");
    CHECK(ip("192.0.2.1").v4);
    CHECK(util::to_string(ip("2001:DB8::1")) == "2001:db8::1");
    CHECK_FALSE(ip("2001:db8::1").v4);
    CHECK(util::to_string(ip("[::1]")) == "::1");
    CHECK(ip("::ffff:192.0.2.1") == ip("192.0.2.1"));
    for (auto bad : {"", "localhost", "192.0.2", "192.0.2.1:80", "256.0.0.1", "[::1",
                     "fe80::1%eth0", "1.2.3.4/8", " 192.0.2.1"}) {
        CHECK_MESSAGE(!util::parse_ip(bad), bad);
    }
}

TEST_CASE("util::parse_cidr reads ranges and single addresses, and refuses host bits") {
    CHECK(util::to_string(cidr("10.0.0.0/8")) == "10.0.0.0/8");
    CHECK(util::to_string(cidr("192.0.2.7")) == "192.0.2.7/32");
    CHECK(util::to_string(cidr("::1")) == "::1/128");
    CHECK(util::to_string(cidr("2001:db8::/32")) == "2001:db8::/32");
    CHECK(util::to_string(cidr("0.0.0.0/0")) == "0.0.0.0/0");
    CHECK(util::to_string(cidr("::/0")) == "::/0");

    auto host_bits = util::parse_cidr("10.0.0.1/8");
    REQUIRE_FALSE(host_bits);
    CHECK(host_bits.error().code == ExitCode::usage);
    CHECK(host_bits.error().message.find("did you mean 10.0.0.0/8 (the range) or 10.0.0.1/32") !=
          std::string::npos);
    for (auto bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1", "nonsense",
                     "[::1]/128", "10.0.0.0/8/8"}) {
        auto parsed = util::parse_cidr(bad);
        CHECK_MESSAGE(!parsed, bad);
    }
}

TEST_CASE("util::contains matches by prefix and never across address families") {
    CHECK(util::contains(cidr("127.0.0.2/32"), ip("127.0.0.2")));
    CHECK_FALSE(util::contains(cidr("127.0.0.2/32"), ip("127.0.0.1")));
    CHECK(util::contains(cidr("10.0.0.0/8"), ip("10.255.255.255")));
    CHECK_FALSE(util::contains(cidr("10.0.0.0/8"), ip("11.0.0.0")));
    CHECK(util::contains(cidr("192.168.4.0/22"), ip("192.168.7.255")));
    CHECK_FALSE(util::contains(cidr("192.168.4.0/22"), ip("192.168.8.0")));
    CHECK(util::contains(cidr("0.0.0.0/0"), ip("203.0.113.9")));
    CHECK_FALSE(util::contains(cidr("0.0.0.0/0"), ip("::1")));
    CHECK_FALSE(util::contains(cidr("::/0"), ip("127.0.0.1")));
    CHECK(util::contains(cidr("2001:db8::/32"), ip("2001:db8:ffff::1")));
    CHECK_FALSE(util::contains(cidr("2001:db8::/32"), ip("2001:db9::1")));
    CHECK(util::contains(cidr("2001:db8::/33"), ip("2001:db8:7fff::1")));
    CHECK_FALSE(util::contains(cidr("2001:db8::/33"), ip("2001:db8:8000::1")));
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they match IPv4 ranges.
    CHECK(util::contains(cidr("127.0.0.0/8"), ip("::ffff:127.0.0.1")));
    std::vector<util::Cidr> ranges = {cidr("10.0.0.0/8"), cidr("::1")};
    CHECK(util::contains_any(ranges, ip("::1")));
    CHECK(util::contains_any(ranges, ip("10.1.2.3")));
    CHECK_FALSE(util::contains_any(ranges, ip("127.0.0.1")));
    CHECK_FALSE(util::contains_any({}, ip("127.0.0.1")));
}
