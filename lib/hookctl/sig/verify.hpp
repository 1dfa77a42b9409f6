#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::sig {

// Why a request passed or did not.
enum class Outcome {
    valid,
    missing_header,   // a header the scheme needs is absent
    malformed_header, // a signature or timestamp header that cannot be read
    stale_timestamp,  // outside the tolerance, in either direction
    no_match,         // well-formed, but no signature matched any key
};

// The stable reason code of an outcome: `valid`, `missing_header`, `malformed_header`,
// `stale_timestamp`, `no_match` (JSON output, metrics, logs).
std::string_view to_string(Outcome outcome);

struct VerifyRequest {
    Scheme scheme = Scheme::mailparse;
    std::chrono::seconds tolerance{300};
    std::int64_t now = 0; // Unix seconds
    // Also check the signature when the timestamp is outside the tolerance, so the verdict can
    // tell a genuine request that is too old (or from a clock ahead) from a forgery. Costs the
    // HMAC over the body: a person's check wants it, a receiver under load does not.
    bool match_when_stale = false;
};

struct Verdict {
    Outcome outcome = Outcome::no_match;
    Scheme scheme = Scheme::mailparse;
    std::string reason;                     // one line for a person: "timestamp outside ..."
    std::optional<std::string> fingerprint; // the key that matched (also when stale)
    std::optional<bool> signature_matches;  // whether one did, when signatures were checked
    std::size_t signatures = 0;             // signatures found in the header
    std::size_t keys = 0;                   // keys tried
    std::optional<std::int64_t> timestamp;
    std::optional<std::int64_t> skew; // now - timestamp
    std::optional<std::string> id;    // the scheme's message id, when it has one

    bool ok() const { return outcome == Outcome::valid; }
};

// Verifies `body` (raw bytes, read once) against `headers` under `request.scheme` with any of
// `keys`: the signature over the raw bytes, compared in constant time, and the timestamp
// within the tolerance in both directions. An invalid request is a Verdict, not an error;
// the error is for a body that cannot be read.
// A signature header field that appears several times is one list: in the schemes that carry
// several signatures (mailparse, standard, svix, stripe) its values count together, as if they
// were one field; in the others a repeated signature field is malformed. A repeated timestamp or
// id header is malformed when its values differ.
Result<Verdict> verify(const VerifyRequest& request, const util::HeaderList& headers,
                       const std::vector<keys::Key>& keys, util::ByteSource& body);

// What verify() can tell from the headers alone, before the body is read: the headers the
// scheme needs are there and readable and the timestamp is inside the tolerance. Returns the
// rejecting Verdict (missing_header, malformed_header, stale_timestamp), or nothing when the
// headers pass (the signature itself is checked once the body is in).
std::optional<Verdict> check_headers(const VerifyRequest& request, const util::HeaderList& headers);

} // namespace hookctl::sig
