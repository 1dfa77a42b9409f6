#include <cstdlib>

#include <hookctl/sig/crypto.hpp>
#include <hookctl/sig/verify.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::sig {
namespace {

using keys::KeyKind;

// A signature read from the header: HMAC (32 bytes) or ed25519 (64 bytes).
struct Candidate {
    bool ed25519 = false;
    std::string bytes;
};

// What the signature header says, or why it cannot be read.
struct ParsedHeader {
    std::vector<Candidate> candidates;
    std::optional<std::string> timestamp_text; // stripe carries t= in the signature header
    std::string error;                         // non-empty: malformed
};

std::vector<std::string_view> split(std::string_view s, char separator) {
    std::vector<std::string_view> parts;
    for (;;) {
        auto pos = s.find(separator);
        parts.push_back(util::trim(s.substr(0, pos)));
        if (pos == std::string_view::npos) {
            return parts;
        }
        s.remove_prefix(pos + 1);
    }
}

std::optional<std::string> decode_hmac_hex(std::string_view text) {
    auto bytes = util::hex_decode(text);
    if (!bytes || bytes->size() != 32) {
        return std::nullopt;
    }
    return bytes;
}

ParsedHeader parse_signature_header(Scheme scheme, std::string_view value) {
    ParsedHeader out;
    auto add_hex = [&](std::string_view text, std::string_view what) {
        auto bytes = decode_hmac_hex(text);
        if (!bytes) {
            out.error = std::string(what) + " is not 64 hex digits";
            return false;
        }
        out.candidates.push_back({false, std::move(*bytes)});
        return true;
    };
    switch (scheme) {
    case Scheme::mailparse:
        for (auto part : split(value, ',')) {
            if (!add_hex(part, "a signature")) {
                return out;
            }
        }
        break;
    case Scheme::standard:
    case Scheme::svix:
        for (auto token : split(value, ' ')) {
            if (token.empty()) {
                continue;
            }
            auto comma = token.find(',');
            if (comma == std::string_view::npos) {
                out.error = "a signature is not written version,base64 (e.g. v1,...)";
                return out;
            }
            auto version = token.substr(0, comma);
            if (version != "v1" && version != "v1a") {
                continue; // unknown versions are skipped, as the specification asks
            }
            auto bytes = util::base64_decode(token.substr(comma + 1));
            std::size_t expected = version == "v1" ? 32 : 64;
            if (!bytes || bytes->size() != expected) {
                out.error = "a " + std::string(version) + " signature is not base64 of " +
                            std::to_string(expected) + " bytes";
                return out;
            }
            out.candidates.push_back({version == "v1a", std::move(*bytes)});
        }
        if (out.candidates.empty()) {
            out.error = "no v1 or v1a signature";
        }
        return out;
    case Scheme::stripe:
        for (auto part : split(value, ',')) {
            auto eq = part.find('=');
            if (eq == std::string_view::npos) {
                out.error = "'" + std::string(part.substr(0, 16)) + "' is not key=value";
                return out;
            }
            auto k = part.substr(0, eq);
            auto v = part.substr(eq + 1);
            if (k == "t") {
                if (out.timestamp_text && *out.timestamp_text != v) {
                    out.error = "two different t= timestamps";
                    return out;
                }
                out.timestamp_text = std::string(v);
            } else if (k == "v1" && !add_hex(v, "a v1 signature")) {
                return out;
            }
        }
        if (!out.timestamp_text) {
            out.error = "no t= timestamp";
        } else if (out.candidates.empty()) {
            out.error = "no v1= signature";
        }
        return out;
    case Scheme::github:
        if (!value.starts_with("sha256=")) {
            out.error = "it does not start with sha256=";
            return out;
        }
        add_hex(value.substr(7), "the signature");
        break;
    case Scheme::slack:
        if (!value.starts_with("v0=")) {
            out.error = "it does not start with v0=";
            return out;
        }
        add_hex(value.substr(3), "the signature");
        break;
    case Scheme::shopify: {
        auto bytes = util::base64_decode(value);
        if (!bytes || bytes->size() != 32) {
            out.error = "it is not base64 of 32 bytes";
            return out;
        }
        out.candidates.push_back({false, std::move(*bytes)});
        break;
    }
    }
    if (out.candidates.empty() && out.error.empty()) {
        out.error = "it holds no signature";
    }
    return out;
}

// Every value of the header field `name`, in order (a field may be repeated).
std::vector<std::string_view> field_values(const util::HeaderList& headers, std::string_view name) {
    std::vector<std::string_view> values;
    for (const auto& [n, v] : headers.entries()) {
        if (util::iequals(n, name)) {
            values.emplace_back(v);
        }
    }
    return values;
}

// The signature header as one value. A repeated field is a list (RFC 9110 section 5.3): in a
// scheme that carries several signatures its values are joined with the scheme's separator, so
// two `X-Signature` fields count like one field with two comma-separated signatures; a scheme
// that carries one signature refuses a repeated field (which one would count?). Empty: it
// holds `error`.
std::string signature_value(const SchemeInfo& scheme, const util::HeaderList& headers,
                            std::string& error) {
    auto values = field_values(headers, scheme.signature_header);
    if (values.size() == 1) {
        return std::string(values.front());
    }
    if (!scheme.multi_signature) {
        error = "the field appears " + std::to_string(values.size()) + " times; scheme " +
                std::string(scheme.name) + " carries one signature";
        return {};
    }
    char separator = scheme.scheme == Scheme::standard || scheme.scheme == Scheme::svix ? ' ' : ',';
    std::string joined;
    for (auto v : values) {
        if (!joined.empty()) {
            joined += separator;
        }
        joined += v;
    }
    return joined;
}

// The value of a header that must say one thing (a timestamp, a message id): a repeated field
// with different values is refused, as a sender and a verifier could read different ones.
std::optional<std::string> single_value(const util::HeaderList& headers, std::string_view name) {
    auto values = field_values(headers, name);
    for (auto v : values) {
        if (util::trim(v) != util::trim(values.front())) {
            return std::nullopt;
        }
    }
    return std::string(values.front());
}

std::string plural(std::size_t n, std::string_view word) {
    return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

// "7380 s (2h3m) in the past", "400 s (6m40s) in the future": how far `skew` (now - timestamp)
// is, and which way; `magnitude` is its absolute value.
std::string describe_skew(std::int64_t skew, std::uint64_t magnitude) {
    std::string text = std::to_string(magnitude) + " s";
    constexpr std::uint64_t k_century = 100ULL * 366 * 86400;
    if (magnitude >= 60 && magnitude < k_century) {
        text += " (" +
                util::format_duration(std::chrono::seconds(static_cast<std::int64_t>(magnitude))) +
                ")";
    }
    return text + (skew < 0 ? " in the future" : " in the past");
}

} // namespace

std::string_view to_string(Outcome outcome) {
    switch (outcome) {
    case Outcome::valid:
        return "valid";
    case Outcome::missing_header:
        return "missing_header";
    case Outcome::malformed_header:
        return "malformed_header";
    case Outcome::stale_timestamp:
        return "stale_timestamp";
    case Outcome::no_match:
        return "no_match";
    }
    return "unknown";
}

Result<Verdict> verify(const VerifyRequest& request, const util::HeaderList& headers,
                       const std::vector<keys::Key>& keys, util::ByteSource& body) {
    const SchemeInfo& scheme = info(request.scheme);
    Verdict verdict;
    verdict.scheme = request.scheme;
    verdict.keys = keys.size();
    auto done = [&](Outcome outcome, std::string reason) -> Result<Verdict> {
        verdict.outcome = outcome;
        verdict.reason = std::move(reason);
        return verdict;
    };

    // 1. The headers the scheme needs.
    std::vector<std::string_view> needed{scheme.signature_header};
    if (!scheme.timestamp_header.empty()) {
        needed.push_back(scheme.timestamp_header);
    }
    if (!scheme.id_header.empty()) {
        needed.push_back(scheme.id_header);
    }
    for (auto name : needed) {
        if (!headers.contains(name)) {
            return done(Outcome::missing_header, "missing header " + std::string(name));
        }
    }
    for (auto name : needed) {
        if (name != scheme.signature_header && !single_value(headers, name)) {
            return done(Outcome::malformed_header,
                        "malformed header " + std::string(name) +
                            ": it appears several times with different values");
        }
    }
    std::string id;
    if (!scheme.id_header.empty()) {
        id = *single_value(headers, scheme.id_header);
        verdict.id = id;
    }

    // 2. The signature header can be read (repeated fields are one list, see signature_value).
    std::string value_error;
    std::string value = signature_value(scheme, headers, value_error);
    ParsedHeader parsed;
    if (value_error.empty()) {
        parsed = parse_signature_header(request.scheme, value);
    } else {
        parsed.error = value_error;
    }
    if (!parsed.error.empty()) {
        return done(Outcome::malformed_header, "malformed signature header " +
                                                   std::string(scheme.signature_header) + ": " +
                                                   parsed.error);
    }
    verdict.signatures = parsed.candidates.size();

    // 3. The timestamp is within the tolerance.
    std::int64_t timestamp = 0;
    std::string stale; // why the timestamp is outside the tolerance
    if (scheme.has_timestamp) {
        std::string text = parsed.timestamp_text ? *parsed.timestamp_text
                                                 : *single_value(headers, scheme.timestamp_header);
        auto ts = util::parse_unix_seconds(text);
        if (!ts) {
            std::string where = parsed.timestamp_text ? std::string(scheme.signature_header) + " t="
                                                      : std::string(scheme.timestamp_header);
            return done(Outcome::malformed_header,
                        "malformed timestamp in " + where + ": not a whole number of seconds");
        }
        timestamp = *ts;
        verdict.timestamp = timestamp;
        // Saturating: a timestamp near the int64 limits must not overflow the subtraction.
        std::int64_t skew = 0;
        if (__builtin_sub_overflow(request.now, timestamp, &skew)) {
            skew = timestamp > 0 ? INT64_MIN : INT64_MAX;
        }
        verdict.skew = skew;
        std::uint64_t magnitude =
            skew < 0 ? 0 - static_cast<std::uint64_t>(skew) : static_cast<std::uint64_t>(skew);
        if (magnitude > static_cast<std::uint64_t>(request.tolerance.count())) {
            stale = "timestamp outside tolerance: " + describe_skew(skew, magnitude) +
                    ", beyond the " + std::to_string(request.tolerance.count()) + " s tolerance" +
                    (skew < 0 ? " (is the sender's clock ahead?)" : "");
            if (!request.match_when_stale) {
                return done(Outcome::stale_timestamp, stale);
            }
        }
    }

    // 4. Some signature matches some key.
    std::string prefix = signed_prefix(request.scheme, timestamp, id);
    bool any_ed25519 = false;
    std::vector<std::string_view> hmac_keys;
    for (const auto& key : keys) {
        if (key.kind == KeyKind::hmac) {
            hmac_keys.push_back(key.bytes.view());
        } else {
            any_ed25519 = true;
        }
    }
    std::string whole;
    util::MemorySource held(whole);
    util::ByteSource* source = &body;
    if (any_ed25519) {
        auto all = util::read_all(body);
        HOOKCTL_RETURN_IF_ERROR(all);
        whole = prefix + *all;
        held = util::MemorySource(std::string_view(whole).substr(prefix.size()));
        source = &held;
    }
    auto macs = hmac_sha256_stream(hmac_keys, prefix, *source);
    HOOKCTL_RETURN_IF_ERROR(macs);
    std::size_t next_mac = 0;
    for (const auto& key : keys) {
        bool matched = false;
        if (key.kind == KeyKind::hmac) {
            const std::string& mac = (*macs)[next_mac++];
            for (const auto& c : parsed.candidates) {
                // Compare every candidate (no early exit) so timing says nothing about which.
                matched |= !c.ed25519 && util::constant_time_equal(c.bytes, mac);
            }
        } else {
            for (const auto& c : parsed.candidates) {
                matched |= c.ed25519 && ed25519_verify(key.public_key, whole, c.bytes);
            }
        }
        if (matched && !verdict.fingerprint) {
            verdict.fingerprint = key.fingerprint;
        }
    }
    verdict.signature_matches = verdict.fingerprint.has_value();
    if (!stale.empty()) {
        return done(Outcome::stale_timestamp,
                    stale + (verdict.fingerprint ? "; the signature matches at that timestamp "
                                                   "(secret " +
                                                       *verdict.fingerprint + ")"
                                                 : "; no signature matches either"));
    }
    if (verdict.fingerprint) {
        return done(Outcome::valid, "valid");
    }
    return done(Outcome::no_match, "no signature matched (" +
                                       plural(verdict.signatures, "signature") + ", " +
                                       plural(keys.size(), "secret") + ")");
}

std::optional<Verdict> check_headers(const VerifyRequest& request,
                                     const util::HeaderList& headers) {
    // verify() with no keys and no body runs every check up to the signature comparison, which
    // then finds nothing to match: no_match means the headers passed.
    util::MemorySource empty(std::string_view{});
    auto verdict = verify(request, headers, {}, empty);
    if (!verdict || verdict->outcome == Outcome::no_match) {
        return std::nullopt;
    }
    return std::move(*verdict);
}

} // namespace hookctl::sig
