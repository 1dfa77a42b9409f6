#pragma once

#include <array>
#include <optional>
#include <string_view>

#include <hookctl/keys/secret.hpp>
#include <hookctl/util/error.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::sig {

// The signature schemes of DESIGN.md §3.
enum class Scheme { mailparse, standard, svix, stripe, github, slack, shopify };

// What a scheme puts where.
struct SchemeInfo {
    Scheme scheme;
    std::string_view name;
    std::string_view signature_header;
    std::string_view timestamp_header; // empty: no timestamp, or inside the signature header
    std::string_view id_header;        // empty: the scheme signs no message id
    bool has_timestamp;
    bool multi_signature; // the header can carry several signatures (rotation)
    keys::SecretEncoding encoding;
};

const std::array<SchemeInfo, 7>& all_schemes();
const SchemeInfo& info(Scheme scheme);

// Parses a scheme name (`mailparse`, `standard`, `svix`, `stripe`, `github`, `slack`,
// `shopify`); fails (exit 2) listing the valid names.
Result<Scheme> parse_scheme(std::string_view name);

// Picks the scheme whose signature header is present (`verify --scheme auto`); nothing when
// no known signature header is there.
std::optional<Scheme> detect_scheme(const util::HeaderList& headers);

// The bytes a scheme signs before the body: `{ts}.`, `{id}.{ts}.`, `v0:{ts}:` or nothing.
std::string signed_prefix(Scheme scheme, std::int64_t timestamp, std::string_view id);

} // namespace hookctl::sig
