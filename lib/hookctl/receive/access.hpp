#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/util/cidr.hpp>

// Which sources may post to `listen` (--allow-from), and whose word to take for the client
// address (--trust-proxy). Pure functions: the server passes the peer and the headers in.
namespace hookctl::receive {

struct AccessOptions {
    std::vector<util::Cidr> allow_from;      // empty: every source is allowed
    std::vector<util::Cidr> trusted_proxies; // empty: the TCP peer is the client

    bool any() const { return !allow_from.empty() || !trusted_proxies.empty(); }
};

// The client a request comes from.
struct ClientAddress {
    std::optional<util::IpAddress> address; // none: a proxy named it in a form we cannot read
    std::string text;                       // the address, or what the proxy wrote instead
    bool forwarded = false;                 // taken from Forwarded / X-Forwarded-For
};

// The client address of a request from `peer`. Unless `peer` is inside `trusted_proxies`, the
// client is `peer` and the headers are not read (anyone can write them). From a trusted proxy,
// the hops its header lists are read from the right (the hop nearest to us) to the left, and
// the first one that is not itself a trusted proxy is the client; when every hop is trusted, the
// leftmost is. `forwarded` (RFC 7239 `Forwarded` field values, in order; the `for=` of each
// element) is used when present, else `x_forwarded_for` (comma-separated addresses). A hop that
// is not an address (`unknown`, an obfuscated `_name`, garbage) ends the walk with no address.
ClientAddress client_address(std::span<const util::Cidr> trusted_proxies,
                             const util::IpAddress& peer,
                             std::span<const std::string_view> forwarded,
                             std::span<const std::string_view> x_forwarded_for);

struct AccessDecision {
    bool allowed = true;
    ClientAddress client;
    std::string reason; // why not, one line for the log and the 403 body
};

// Decides whether a request from `peer` (with these headers) may be served: its client address
// (client_address) must be inside one of `options.allow_from`, when that is set.
AccessDecision decide_access(const AccessOptions& options, const util::IpAddress& peer,
                             std::span<const std::string_view> forwarded,
                             std::span<const std::string_view> x_forwarded_for);

} // namespace hookctl::receive
