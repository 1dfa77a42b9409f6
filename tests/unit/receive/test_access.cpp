#include <doctest/doctest.h>

#include <hookctl/receive/access.hpp>

using namespace hookctl;

namespace {

util::IpAddress ip(std::string_view text) {
    auto address = util::parse_ip(text);
    REQUIRE_MESSAGE(address, text);
    return *address;
}

std::vector<util::Cidr> ranges(std::initializer_list<std::string_view> texts) {
    std::vector<util::Cidr> out;
    for (auto text : texts) {
        auto range = util::parse_cidr(text);
        REQUIRE_MESSAGE(range, text);
        out.push_back(*range);
    }
    return out;
}

using Values = std::vector<std::string_view>;

std::string client(const std::vector<util::Cidr>& trusted, std::string_view peer, Values forwarded,
                   Values xff) {
    auto c = receive::client_address(trusted, ip(peer), forwarded, xff);
    return (c.address ? "" : "!") + c.text;
}

} // namespace

TEST_CASE("receive::client_address ignores forwarding headers from a peer that is not trusted") {
    auto proxies = ranges({"10.0.0.0/8"});
    CHECK(client(proxies, "203.0.113.5", {}, {"127.0.0.2"}) == "203.0.113.5");
    CHECK(client(proxies, "203.0.113.5", {"for=127.0.0.2"}, {}) == "203.0.113.5");
    CHECK(client({}, "10.0.0.1", {}, {"127.0.0.2"}) == "10.0.0.1");
    CHECK_FALSE(receive::client_address(proxies, ip("203.0.113.5"), {}, {}).forwarded);
}

TEST_CASE("receive::client_address walks X-Forwarded-For from the right past trusted proxies") {
    auto proxies = ranges({"10.0.0.0/8", "::1"});
    // The hop nearest to us that is not a proxy: a client cannot pick its own address by
    // writing one at the left of the header.
    CHECK(client(proxies, "10.0.0.1", {}, {"127.0.0.2"}) == "127.0.0.2");
    CHECK(client(proxies, "10.0.0.1", {}, {"1.1.1.1, 198.51.100.7, 10.0.0.9"}) == "198.51.100.7");
    CHECK(client(proxies, "10.0.0.1", {}, {"1.1.1.1", "198.51.100.7,10.0.0.9"}) == "198.51.100.7");
    // Every hop a proxy: the leftmost is the client. No header: the proxy itself.
    CHECK(client(proxies, "10.0.0.1", {}, {"10.0.0.7, 10.0.0.8"}) == "10.0.0.7");
    CHECK(client(proxies, "10.0.0.1", {}, {}) == "10.0.0.1");
    // Ports and brackets as proxies write them; IPv6 peers.
    CHECK(client(proxies, "::1", {}, {"198.51.100.7:4711"}) == "198.51.100.7");
    CHECK(client(proxies, "::1", {}, {"[2001:db8::7]:443"}) == "2001:db8::7");
    CHECK(client(proxies, "::1", {}, {"2001:db8::7"}) == "2001:db8::7");
    // What is not an address stops the walk: the client is unknown.
    CHECK(client(proxies, "10.0.0.1", {}, {"198.51.100.7, garbage"}) == "!garbage");
    CHECK(client(proxies, "10.0.0.1", {}, {"198.51.100.7,,10.0.0.2"}) == "!(empty)");
    CHECK(receive::client_address(proxies, ip("10.0.0.1"), Values{}, Values{"198.51.100.7"})
              .forwarded);
}

TEST_CASE("receive::client_address reads the for= of RFC 7239 Forwarded before X-Forwarded-For") {
    auto proxies = ranges({"10.0.0.0/8"});
    CHECK(client(proxies, "10.0.0.1", {"for=198.51.100.7;proto=https"}, {"203.0.113.1"}) ==
          "198.51.100.7");
    CHECK(client(proxies, "10.0.0.1", {R"(for=192.0.2.60;proto=http, For="[2001:db8::17]:4711")"},
                 {}) == "2001:db8::17");
    CHECK(client(proxies, "10.0.0.1", {"for=192.0.2.60, for=10.1.1.1"}, {}) == "192.0.2.60");
    CHECK(client(proxies, "10.0.0.1", {"for=192.0.2.60", "for=\"10.1.1.1:80\""}, {}) ==
          "192.0.2.60");
    CHECK(client(proxies, "10.0.0.1", {"for=unknown"}, {}) == "!unknown");
    CHECK(client(proxies, "10.0.0.1", {"for=_hidden"}, {}) == "!_hidden");
    CHECK(client(proxies, "10.0.0.1", {"proto=https;by=10.0.0.1"}, {}) == "!unknown");
}

TEST_CASE("receive::decide_access admits only sources inside --allow-from") {
    receive::AccessOptions open;
    CHECK(receive::decide_access(open, ip("203.0.113.5"), Values{}, Values{}).allowed);

    receive::AccessOptions only;
    only.allow_from = ranges({"127.0.0.2/32", "2001:db8::/32"});
    CHECK(receive::decide_access(only, ip("127.0.0.2"), Values{}, Values{}).allowed);
    CHECK(receive::decide_access(only, ip("2001:db8::5"), Values{}, Values{}).allowed);
    auto refused = receive::decide_access(only, ip("127.0.0.1"), Values{}, Values{"127.0.0.2"});
    CHECK_FALSE(refused.allowed);
    CHECK(refused.reason == "source 127.0.0.1 is not in --allow-from");

    receive::AccessOptions proxied = only;
    proxied.trusted_proxies = ranges({"127.0.0.1"});
    auto via = receive::decide_access(proxied, ip("127.0.0.1"), Values{}, Values{"127.0.0.2"});
    CHECK(via.allowed);
    CHECK(via.client.text == "127.0.0.2");
    auto outside =
        receive::decide_access(proxied, ip("127.0.0.1"), Values{}, Values{"198.51.100.7"});
    CHECK_FALSE(outside.allowed);
    CHECK(outside.reason ==
          "source 198.51.100.7 (forwarded by trusted proxy 127.0.0.1) is not in --allow-from");
    auto unknown =
        receive::decide_access(proxied, ip("127.0.0.1"), Values{"for=unknown"}, Values{});
    CHECK_FALSE(unknown.allowed);
    CHECK(unknown.reason.find("'unknown'") != std::string::npos);
    // The proxy itself is judged when it forwards nothing.
    CHECK_FALSE(receive::decide_access(proxied, ip("127.0.0.1"), Values{}, Values{}).allowed);
}
