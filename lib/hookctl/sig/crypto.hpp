#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/util/error.hpp>
#include <hookctl/util/file.hpp>

struct evp_mac_ctx_st;

namespace hookctl::sig {

// Streaming HMAC-SHA256 (OpenSSL EVP_MAC): feed any number of chunks, then finish.
class HmacSha256 {
public:
    explicit HmacSha256(std::string_view key);
    HmacSha256(HmacSha256&&) noexcept;
    HmacSha256& operator=(HmacSha256&&) noexcept;
    ~HmacSha256();

    void update(std::string_view bytes);
    // The 32-byte MAC. The object cannot be updated afterwards.
    std::string finish();

private:
    struct CtxDeleter {
        void operator()(evp_mac_ctx_st* ctx) const;
    };
    std::unique_ptr<evp_mac_ctx_st, CtxDeleter> m_ctx;
};

// One-shot HMAC-SHA256 of `message` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view message);

// HMAC-SHA256 of `prefix` followed by every byte of `body`, for several keys in one pass over
// the body (so a 100 MB body is read once, in 64 KiB chunks, whatever the number of keys).
Result<std::vector<std::string>> hmac_sha256_stream(const std::vector<std::string_view>& keys,
                                                    std::string_view prefix,
                                                    util::ByteSource& body);

// Ed25519 signature (64 bytes) of `message` by the 32-byte `seed`.
Result<std::string> ed25519_sign(std::string_view seed, std::string_view message);

// True when `signature` is a valid ed25519 signature of `message` by `public_key`.
bool ed25519_verify(std::string_view public_key, std::string_view message,
                    std::string_view signature);

} // namespace hookctl::sig
