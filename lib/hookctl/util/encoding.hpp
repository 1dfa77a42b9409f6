#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hookctl::util {

// Standard base64 (RFC 4648, with padding), by OpenSSL's EVP encoder.
std::string base64_encode(std::string_view bytes);

// Decodes standard base64 with padding. Returns nothing for anything else (bad characters,
// wrong length, bad padding), so callers can say which input was malformed.
std::optional<std::string> base64_decode(std::string_view text);

// Lowercase hex of `bytes`.
std::string hex_encode(std::string_view bytes);

// Decodes hex (either case); nothing for odd length or a non-hex character.
std::optional<std::string> hex_decode(std::string_view text);

// True when `a` and `b` are equal, in time that depends only on their lengths (CRYPTO_memcmp).
bool constant_time_equal(std::string_view a, std::string_view b);

// The SHA-256 digest of `bytes` (32 raw bytes).
std::string sha256(std::string_view bytes);

// `n` bytes from OpenSSL's CSPRNG.
std::string random_bytes(std::size_t n);

// `n` bytes for identifiers that must be unique but need not be secret (W3C trace and span
// ids): a per-thread generator seeded from the CSPRNG, without its per-call cost.
std::string id_bytes(std::size_t n);

} // namespace hookctl::util
