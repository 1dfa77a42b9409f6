#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <hookctl/util/error.hpp>

namespace hookctl::util {

// An IPv4 or IPv6 address. An IPv4-mapped IPv6 address (::ffff:192.0.2.1, as a dual-stack
// socket reports IPv4 peers) is held as the IPv4 address, so IPv4 ranges match it.
struct IpAddress {
    std::array<std::uint8_t, 16> bytes{}; // IPv4: the first 4
    bool v4 = true;

    bool operator==(const IpAddress&) const = default;
};

// Parses "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (kept as IPv4) and "[2001:db8::1]";
// nothing for anything else (host names, ports, zones).
std::optional<IpAddress> parse_ip(std::string_view text);

// "192.0.2.1", "2001:db8::1".
std::string to_string(const IpAddress& address);

// An address range: the first `prefix` bits of `base` (the rest are zero).
struct Cidr {
    IpAddress base;
    int prefix = 32;

    bool operator==(const Cidr&) const = default;
};

// Parses "10.0.0.0/8", "2001:db8::/32", or a single address ("192.0.2.7" is /32, "::1" is
// /128). Fails (exit 2) saying what is wrong: not an address, a prefix out of range, or host
// bits set after the prefix ("10.0.0.1/8": did you mean 10.0.0.0/8 or 10.0.0.1/32?).
Result<Cidr> parse_cidr(std::string_view text);

// "10.0.0.0/8".
std::string to_string(const Cidr& cidr);

// True when `address` is inside `range` (an IPv4 address is never inside an IPv6 range, and
// the other way round).
bool contains(const Cidr& range, const IpAddress& address);

// True when any of `ranges` contains `address`.
bool contains_any(std::span<const Cidr> ranges, const IpAddress& address);

} // namespace hookctl::util
