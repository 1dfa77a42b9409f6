#include <array>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <hookctl/sig/crypto.hpp>
#include <hookctl/util/openssl_ptr.hpp>

namespace hookctl::sig {
namespace {

const unsigned char* uc(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

EVP_MAC* hmac_algorithm() {
    // Fetched once: fetching per use costs a lock and a provider lookup.
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) {
        throw std::runtime_error("OpenSSL has no HMAC implementation");
    }
    return mac;
}

// A context with the digest already set, one per thread: EVP_MAC_init with the digest parameter
// fetches SHA-256 from the provider on every call (a lock and a lookup, about a third of an
// HMAC of 2 KiB); a copy of this context only needs its key.
EVP_MAC_CTX* hmac_prototype() {
    struct Holder {
        util::EvpMacCtxPtr ctx{EVP_MAC_CTX_new(hmac_algorithm())};
        Holder() {
            char digest[] = "SHA256";
            OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                OSSL_PARAM_construct_end()};
            static const unsigned char dummy = 0;
            if (!ctx || EVP_MAC_init(ctx.get(), &dummy, 1, params) != 1) {
                throw std::runtime_error("OpenSSL HMAC-SHA256 initialisation failed");
            }
        }
    };
    thread_local Holder holder;
    return holder.ctx.get();
}

} // namespace

void HmacSha256::CtxDeleter::operator()(evp_mac_ctx_st* ctx) const {
    EVP_MAC_CTX_free(ctx);
}

HmacSha256::HmacSha256(std::string_view key)
    : m_ctx(EVP_MAC_CTX_dup(hmac_prototype())) {
    // HMAC accepts an empty key, but EVP_MAC_init wants a non-null pointer.
    static const unsigned char empty = 0;
    const unsigned char* k = key.empty() ? &empty : uc(key);
    if (!m_ctx || EVP_MAC_init(m_ctx.get(), k, key.size(), nullptr) != 1) {
        throw std::runtime_error("OpenSSL HMAC-SHA256 initialisation failed");
    }
}

HmacSha256::HmacSha256(HmacSha256&&) noexcept = default;
HmacSha256& HmacSha256::operator=(HmacSha256&&) noexcept = default;
HmacSha256::~HmacSha256() = default;

void HmacSha256::update(std::string_view bytes) {
    EVP_MAC_update(m_ctx.get(), uc(bytes), bytes.size());
}

std::string HmacSha256::finish() {
    std::string out(32, '\0');
    std::size_t len = 0;
    EVP_MAC_final(m_ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, out.size());
    out.resize(len);
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
    HmacSha256 mac(key);
    mac.update(message);
    return mac.finish();
}

Result<std::vector<std::string>> hmac_sha256_stream(const std::vector<std::string_view>& keys,
                                                    std::string_view prefix,
                                                    util::ByteSource& body) {
    std::vector<HmacSha256> macs;
    macs.reserve(keys.size());
    for (auto key : keys) {
        macs.emplace_back(key);
        macs.back().update(prefix);
    }
    auto update_all = [&](std::string_view bytes) {
        for (auto& mac : macs) {
            mac.update(bytes);
        }
    };
    if (auto whole = body.contiguous()) {
        update_all(*whole); // already in memory (a request body): no copy through a buffer
    } else {
        std::vector<char> buffer(1 << 16);
        for (;;) {
            auto n = body.read(buffer);
            HOOKCTL_RETURN_IF_ERROR(n);
            if (*n == 0) {
                break;
            }
            update_all(std::string_view(buffer.data(), *n));
        }
    }
    std::vector<std::string> out;
    out.reserve(macs.size());
    for (auto& mac : macs) {
        out.push_back(mac.finish());
    }
    return out;
}

Result<std::string> ed25519_sign(std::string_view seed, std::string_view message) {
    util::EvpPkeyPtr pkey(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, uc(seed), seed.size()));
    util::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    std::string sig(64, '\0');
    std::size_t len = sig.size();
    if (!pkey || !ctx ||
        EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, uc(message),
                       message.size()) != 1) {
        return fail(ExitCode::usage, "ed25519 signing failed: OpenSSL rejected the key");
    }
    sig.resize(len);
    return sig;
}

bool ed25519_verify(std::string_view public_key, std::string_view message,
                    std::string_view signature) {
    util::EvpPkeyPtr pkey(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, uc(public_key), public_key.size()));
    util::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    return pkey && ctx &&
           EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
           EVP_DigestVerify(ctx.get(), uc(signature), signature.size(), uc(message),
                            message.size()) == 1;
}

} // namespace hookctl::sig
