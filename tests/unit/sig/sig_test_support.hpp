#pragma once

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/sig/sign.hpp>
#include <hookctl/sig/verify.hpp>

namespace hookctl::test {

// Decodes `texts` as `scheme` reads its secrets; fails the test on error.
inline std::vector<keys::Key> keys_for(sig::Scheme scheme, std::vector<std::string> texts) {
    std::vector<keys::SecretText> secrets;
    for (auto& t : texts) {
        secrets.push_back({keys::SecretBytes(t), "test"});
    }
    auto decoded = keys::decode_keys(secrets, sig::info(scheme).encoding);
    REQUIRE(decoded.has_value());
    return std::move(*decoded);
}

inline util::HeaderList sign_ok(sig::Scheme scheme, const std::vector<keys::Key>& keys,
                                std::string_view body, std::int64_t ts,
                                std::string id = "msg_test") {
    util::MemorySource source(body);
    auto s = sig::sign({scheme, ts, std::move(id)}, keys, source);
    REQUIRE(s.has_value());
    return s->headers;
}

inline sig::Verdict verify_ok(sig::Scheme scheme, const util::HeaderList& headers,
                              const std::vector<keys::Key>& keys, std::string_view body,
                              std::int64_t now, std::int64_t tolerance = 300) {
    util::MemorySource source(body);
    auto v = sig::verify({scheme, std::chrono::seconds(tolerance), now}, headers, keys, source);
    REQUIRE(v.has_value());
    return *v;
}

} // namespace hookctl::test
