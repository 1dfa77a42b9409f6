#pragma once

// hookctl::sig::explain: why a signature does not match (verify --explain). The check is run
// again under each usual mistake (a secret with whitespace, with or without its whsec_ prefix,
// decoded the wrong way; the body re-serialised; a timestamp in milliseconds or too old; the
// wrong scheme for the headers; a key whose keyring window ended) and the one that makes the
// signature match is the finding. Pure: no clock, no I/O (the time is in the request), so every
// mistake is a unit test. Candidates are tried in memory and never returned: an Explanation
// names a candidate by what was changed and by the origin of the secret it came from, never by
// its bytes or a fingerprint of them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/verify.hpp>
#include <hookctl/util/error.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::sig {

// What explains a verdict. The order is the order in which the candidates are tried.
enum class Cause {
    valid,                  // the signature matches: nothing to explain
    secret_whitespace,      // the secret with surrounding whitespace or a trailing newline
    secret_prefix,          // the secret with or without its whsec_/whsk_ prefix
    secret_encoding,        // the secret read as base64, raw text or hex the wrong way
    body_key_order,         // the body re-serialised with its keys in another order
    body_spacing,           // the body re-serialised with other spacing or indentation
    body_escaped_slashes,   // the body re-serialised with `/` written `\/` (or back)
    body_unicode_escapes,   // the body re-serialised with non-ASCII written \uXXXX (or back)
    body_trailing_newline,  // a newline added to or dropped from the end of the body
    body_line_endings,      // LF line endings turned into CRLF (or back)
    body_form_encoded,      // the body signed form-encoded (payload=...) instead of raw
    timestamp_milliseconds, // the timestamp in milliseconds where seconds are meant
    clock_skew,             // the signature matches, but the timestamp is outside the tolerance
    wrong_scheme,           // the headers or the signature belong to another scheme
    key_outside_window,     // signed by a keyring secret that is no longer valid (window ended)
    missing_header,         // a header the scheme needs is absent, and no other scheme's either
    malformed_header,       // the signature header cannot be read, and nothing else explains it
    unexplained,            // no usual mistake makes the signature match
};

// The stable code of a cause (`secret_whitespace`, ...), as JSON output and tests name it.
std::string_view to_string(Cause cause);

// A secret the operator holds that does not verify now: a keyring secret that is retired or
// whose verify-only window has ended.
struct PastKey {
    keys::SecretText secret;               // origin `keyring PATH (ID)`
    std::string id;                        // the keyring id, e.g. `k1`
    std::string fingerprint;               // as the keyring lists it (of the decoded key)
    std::string state;                     // `verify-only` or `retired`
    std::optional<std::int64_t> not_after; // the last second its window covered, when it had one
};

// One candidate tried: what was changed (in words, never the candidate's bytes) and whether the
// signature matched with that change.
struct Trial {
    Cause cause = Cause::unexplained;
    std::string tried;
    bool matched = false;
};

struct Explanation {
    Verdict verdict;                  // the plain check, as `verify` reports it
    Cause cause = Cause::unexplained; // the finding
    std::optional<Cause> also;        // a second finding (a stale timestamp AND a mismatch)
    std::string finding;              // one line: what explains the verdict
    std::string advice;               // one line: what to do about it
    std::vector<Trial> evidence;      // every candidate tried, in order (empty when valid)
    // The exit code `verify` gives this verdict: 0 valid, 1 invalid, 2 unreadable header or a
    // secret that cannot be decoded for the scheme.
    ExitCode exit_code = ExitCode::check_failed;
    std::string secret_error; // why the given secret could not be decoded, when it could not
};

// Explains why `body` does or does not verify against `headers` with `secrets` (as loaded, not
// yet decoded: a secret that fails to decode is itself a finding) under `request` (scheme,
// tolerance, now). `past` are the operator's secrets that do not verify now (keyring history).
// Fails only when no secret is given (exit 2).
Result<Explanation> explain(const VerifyRequest& request, const util::HeaderList& headers,
                            const std::vector<keys::SecretText>& secrets,
                            const std::vector<PastKey>& past, std::string_view body);

// The secrets of the keyrings at `paths` that are not valid at `now`: retired ones and
// verify-only ones whose window has ended. Fails (exit 2) when a keyring cannot be read.
Result<std::vector<PastKey>> keys_outside_window(const std::vector<std::string>& paths,
                                                 std::int64_t now);

// The explanation for a person: the finding first, the advice, the verdict, then the evidence
// (one line per candidate). A valid signature is one line.
std::string to_text(const Explanation& explanation);

// {"valid", "scheme", "outcome", "reason", "cause", "also", "finding", "advice", "evidence":
// [{"cause", "tried", "matched"}], "timestamp", "skew"} (the fields `verify --json` has, plus
// the explanation).
nlohmann::json to_json(const Explanation& explanation);

} // namespace hookctl::sig
