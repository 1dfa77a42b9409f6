#include <algorithm>

#include <hookctl/receive/access.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::receive {
namespace {

// Splits `text` at `separator`, trimming blanks around each part; quoted strings are kept whole.
std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    bool quoted = false;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i < text.size() && text[i] == '"' && (i == 0 || text[i - 1] != '\\')) {
            quoted = !quoted;
        }
        if (i == text.size() || (text[i] == separator && !quoted)) {
            out.push_back(util::trim(text.substr(start, i - start)));
            start = i + 1;
        }
    }
    return out;
}

// An address as proxies write it: "192.0.2.1", "192.0.2.1:4711", "2001:db8::1",
// "[2001:db8::1]", "[2001:db8::1]:4711"; nothing for anything else.
std::optional<util::IpAddress> hop_address(std::string_view text) {
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty() && !rest.starts_with(':')) {
            return std::nullopt;
        }
        return util::parse_ip(text.substr(1, close - 1));
    }
    if (auto address = util::parse_ip(text)) {
        return address;
    }
    // IPv4 with a port: exactly one colon.
    auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
        auto address = util::parse_ip(text.substr(0, colon));
        if (address && address->v4) {
            return address;
        }
    }
    return std::nullopt;
}

std::string_view unquote(std::string_view value) {
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        return value.substr(1, value.size() - 2);
    }
    return value;
}

// The hops, leftmost (the original client) first, as written.
std::vector<std::string_view> forwarded_hops(std::span<const std::string_view> values) {
    std::vector<std::string_view> hops;
    for (auto value : values) {
        for (auto element : split(value, ',')) {
            std::string_view hop = "unknown"; // an element without for= names no address
            for (auto pair : split(element, ';')) {
                auto eq = pair.find('=');
                if (eq == std::string_view::npos) {
                    continue;
                }
                std::string name(util::trim(pair.substr(0, eq)));
                std::ranges::transform(name, name.begin(),
                                       [](char c) { return static_cast<char>(std::tolower(c)); });
                if (name == "for") {
                    hop = unquote(util::trim(pair.substr(eq + 1)));
                }
            }
            hops.push_back(hop);
        }
    }
    return hops;
}

std::vector<std::string_view> x_forwarded_hops(std::span<const std::string_view> values) {
    std::vector<std::string_view> hops;
    for (auto value : values) {
        for (auto hop : split(value, ',')) {
            hops.push_back(hop);
        }
    }
    return hops;
}

} // namespace

ClientAddress client_address(std::span<const util::Cidr> trusted_proxies,
                             const util::IpAddress& peer,
                             std::span<const std::string_view> forwarded,
                             std::span<const std::string_view> x_forwarded_for) {
    ClientAddress out{peer, util::to_string(peer), false};
    if (!util::contains_any(trusted_proxies, peer)) {
        return out;
    }
    auto hops = !forwarded.empty() ? forwarded_hops(forwarded) : x_forwarded_hops(x_forwarded_for);
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        out.forwarded = true;
        auto address = hop_address(*it);
        if (!address) {
            out.address.reset();
            out.text = it->empty() ? "(empty)" : std::string(*it);
            return out;
        }
        out.address = *address;
        out.text = util::to_string(*address);
        if (!util::contains_any(trusted_proxies, *address)) {
            return out;
        }
    }
    return out;
}

AccessDecision decide_access(const AccessOptions& options, const util::IpAddress& peer,
                             std::span<const std::string_view> forwarded,
                             std::span<const std::string_view> x_forwarded_for) {
    AccessDecision out;
    out.client = client_address(options.trusted_proxies, peer, forwarded, x_forwarded_for);
    if (options.allow_from.empty()) {
        return out;
    }
    std::string via =
        out.client.forwarded ? " (forwarded by trusted proxy " + util::to_string(peer) + ")" : "";
    if (!out.client.address) {
        out.allowed = false;
        out.reason = "the client address '" + out.client.text + "'" + via +
                     " is not an IP address, so --allow-from cannot admit it";
        return out;
    }
    if (!util::contains_any(options.allow_from, *out.client.address)) {
        out.allowed = false;
        out.reason = "source " + out.client.text + via + " is not in --allow-from";
    }
    return out;
}

} // namespace hookctl::receive
