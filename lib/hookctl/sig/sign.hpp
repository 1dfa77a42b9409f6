#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::sig {

struct SignRequest {
    Scheme scheme = Scheme::mailparse;
    std::int64_t timestamp = 0;
    std::string id; // signed by `standard` and `svix`; ignored by the others
};

struct Signed {
    util::HeaderList headers;              // the headers to send, signature header included
    std::vector<std::string> fingerprints; // the keys that signed, in header order
};

// Signs `body` (read once, byte for byte) with every key, in the scheme's multi-signature form
// and in the order given (the primary first). Fails (exit 2) when there is no key, when a
// single-signature scheme (github, slack, shopify) is given several keys, when an ed25519 key
// is used with a scheme other than standard/svix, or when `id` is missing for a scheme that
// signs one.
Result<Signed> sign(const SignRequest& request, const std::vector<keys::Key>& keys,
                    util::ByteSource& body);

// Reads Unix seconds given for a signature's time (`sign --timestamp`, `verify --now`): a whole
// number of seconds, 0 or more. Refuses (exit 2), saying why, a negative value and one of 13 or
// more digits: that is milliseconds (JavaScript's Date.now()), which would date the signature
// tens of thousands of years ahead.
Result<std::int64_t> parse_timestamp(std::string_view text);

// A fresh message id: `msg_` and 26 base32 characters of random.
std::string new_message_id();

} // namespace hookctl::sig
