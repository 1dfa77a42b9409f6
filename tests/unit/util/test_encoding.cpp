#include <set>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include <hookctl/util/encoding.hpp>
#include <hookctl/util/headers.hpp>

using namespace hookctl;

TEST_CASE("util::base64 round-trips binary and rejects malformed text") {
    std::string bytes("\0\x01\xff\xfe hello", 10);
    CHECK(util::base64_decode(util::base64_encode(bytes)).value() == bytes);
    CHECK(util::base64_encode("hi") == "aGk=");
    CHECK(util::base64_decode("aGk=").value() == "hi");
    CHECK(util::base64_decode("").value().empty());
    CHECK_FALSE(util::base64_decode("aGk").has_value());    // length
    CHECK_FALSE(util::base64_decode("a=Gk").has_value());   // padding in the middle
    CHECK_FALSE(util::base64_decode("aG!k").has_value());   // bad character
    CHECK_FALSE(util::base64_decode("aGk=\n").has_value()); // stray newline
}

TEST_CASE("util::hex round-trips and rejects odd or non-hex input") {
    CHECK(util::hex_encode(std::string("\x00\xab", 2)) == "00ab");
    CHECK(util::hex_decode("00AB").value() == std::string("\x00\xab", 2));
    CHECK_FALSE(util::hex_decode("abc").has_value());
    CHECK_FALSE(util::hex_decode("zz").has_value());
}

TEST_CASE("util::constant_time_equal compares length and bytes") {
    CHECK(util::constant_time_equal("abc", "abc"));
    CHECK_FALSE(util::constant_time_equal("abc", "abd"));
    CHECK_FALSE(util::constant_time_equal("abc", "abcd"));
}

TEST_CASE("util::parse_header_block reads a curl -D dump") {
    std::string dump = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "X-Signature:  abc \r\nX-Long: one\r\n two\r\n\r\n";
    auto headers = util::parse_header_block(dump, "dump");
    REQUIRE(headers.has_value());
    CHECK(headers->find("x-signature").value() == "abc");
    CHECK(headers->find("X-LONG").value() == "one two");
    CHECK(headers->entries().size() == 3);
}

TEST_CASE("util::parse_header_block names the line without a colon") {
    auto headers = util::parse_header_block("X-Signature: abc\nthis is not a header\n", "h.txt");
    REQUIRE_FALSE(headers.has_value());
    CHECK(headers.error().code == ExitCode::usage);
    CHECK(headers.error().message.find("h.txt line 2") != std::string::npos);
}

TEST_CASE("util::id_bytes gives the length asked and does not repeat") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto id = util::id_bytes(16);
        REQUIRE(id.size() == 16);
        seen.insert(id);
    }
    CHECK(seen.size() == 1000);
    CHECK(util::id_bytes(5).size() == 5);
    CHECK(util::id_bytes(0).empty());
    // Another thread has a generator of its own, seeded apart.
    std::string other;
    std::thread([&] { other = util::id_bytes(16); }).join();
    CHECK_FALSE(seen.contains(other));
}
