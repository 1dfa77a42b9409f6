#include <arpa/inet.h>
#include <charconv>
#include <cstring>

#include <hookctl/util/cidr.hpp>

namespace hookctl::util {

std::optional<IpAddress> parse_ip(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
        text = text.substr(1, text.size() - 2);
    }
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
        return std::nullopt;
    }
    std::string z(text); // inet_pton wants a terminated string
    IpAddress out;
    if (z.find(':') == std::string::npos) {
        if (::inet_pton(AF_INET, z.c_str(), out.bytes.data()) != 1) {
            return std::nullopt;
        }
        out.v4 = true;
        return out;
    }
    if (::inet_pton(AF_INET6, z.c_str(), out.bytes.data()) != 1) {
        return std::nullopt;
    }
    static constexpr std::array<std::uint8_t, 12> k_mapped = {0, 0, 0, 0, 0,    0,
                                                              0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(k_mapped.begin(), k_mapped.end(), out.bytes.begin())) {
        std::array<std::uint8_t, 16> v4{};
        std::copy(out.bytes.begin() + 12, out.bytes.end(), v4.begin());
        out.bytes = v4;
        out.v4 = true;
        return out;
    }
    out.v4 = false;
    return out;
}

std::string to_string(const IpAddress& address) {
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(address.v4 ? AF_INET : AF_INET6, address.bytes.data(), text, sizeof text);
    return text;
}

namespace {

// `address` with every bit after the first `prefix` cleared.
IpAddress masked(IpAddress address, int prefix) {
    int bits = address.v4 ? 32 : 128;
    for (int i = prefix; i < bits; ++i) {
        address.bytes[static_cast<std::size_t>(i / 8)] &=
            static_cast<std::uint8_t>(~(0x80U >> static_cast<unsigned>(i % 8)));
    }
    return address;
}

} // namespace

Result<Cidr> parse_cidr(std::string_view text) {
    auto slash = text.find('/');
    std::string_view address_text = text.substr(0, slash);
    auto address = parse_ip(address_text);
    if (!address || address_text.starts_with('[')) {
        return fail(ExitCode::usage, "'" + std::string(text) +
                                         "' is not an IP address or range; write 10.0.0.0/8, "
                                         "192.0.2.7, 2001:db8::/32 or ::1");
    }
    int bits = address->v4 ? 32 : 128;
    Cidr out{*address, bits};
    if (slash != std::string_view::npos) {
        std::string_view prefix_text = text.substr(slash + 1);
        int prefix = -1;
        auto [end, ec] =
            std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
        if (prefix_text.empty() || ec != std::errc() ||
            end != prefix_text.data() + prefix_text.size() || prefix < 0 || prefix > bits) {
            return fail(ExitCode::usage, "'" + std::string(text) + "': the prefix length must be " +
                                             "a whole number from 0 to " + std::to_string(bits));
        }
        out.prefix = prefix;
    }
    if (masked(out.base, out.prefix) != out.base) {
        Cidr network{masked(out.base, out.prefix), out.prefix};
        return fail(ExitCode::usage,
                    "'" + std::string(text) + "' has bits set after its prefix: did you mean " +
                        to_string(network) + " (the range) or " + to_string(out.base) + "/" +
                        std::to_string(bits) + " (the one address)?");
    }
    return out;
}

std::string to_string(const Cidr& cidr) {
    return to_string(cidr.base) + "/" + std::to_string(cidr.prefix);
}

bool contains(const Cidr& range, const IpAddress& address) {
    return range.base.v4 == address.v4 && masked(address, range.prefix) == range.base;
}

bool contains_any(std::span<const Cidr> ranges, const IpAddress& address) {
    for (const auto& range : ranges) {
        if (contains(range, address)) {
            return true;
        }
    }
    return false;
}

} // namespace hookctl::util
