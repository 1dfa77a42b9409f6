#include <algorithm>
#include <zstd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <hookctl/archive/body_cipher.hpp>
#include <hookctl/util/openssl_ptr.hpp>

namespace hookctl::archive {
namespace {

// Version 1: the ciphertext is of the value itself. Version 2: of the value compressed as one
// zstd frame (which records the value's length), written when that is shorter.
constexpr unsigned char k_version_plain = 1;
constexpr unsigned char k_version_zstd = 2;
// Values shorter than this are sealed as they are: too short to gain from compression.
constexpr std::size_t k_min_compress = 128;
// zstd's fast level -3: a 2 KiB email event in about 7 us (1.2 times smaller), 8 KiB in 16 us
// (1.5 times; `zstd -b1 --fast=3`). Level 1 shrinks 1.7-2 times but took 21 us on 2 KiB, more than
// the pages it saves cost listen (bench/atrest.sh).
constexpr int k_zstd_level = -3;
// A frame that says it holds more than this is not opened (it authenticated, so only a key
// holder can write one; the bound keeps even that from allocating without limit).
constexpr unsigned long long k_max_plain = 1ULL << 32;
constexpr std::size_t k_nonce_bytes = 12;
constexpr std::size_t k_tag_bytes = 16;
constexpr std::size_t k_max_key_id = 64;

using Ctx = util::EvpCipherCtxPtr;

// The parts of a well-formed envelope (views into it).
struct Envelope {
    std::string_view header; // magic .. key id: authenticated
    std::string_view key_id;
    std::string_view nonce;
    std::string_view ciphertext;
    std::string_view tag;
};

std::optional<Envelope> split(std::string_view bytes) {
    if (!is_sealed(bytes) || bytes.size() < 6) {
        return std::nullopt;
    }
    std::size_t id_len = static_cast<unsigned char>(bytes[5]);
    std::size_t header = 6 + id_len;
    if (id_len == 0 || id_len > k_max_key_id ||
        bytes.size() < header + k_nonce_bytes + k_tag_bytes) {
        return std::nullopt;
    }
    Envelope e;
    e.header = bytes.substr(0, header);
    e.key_id = bytes.substr(6, id_len);
    e.nonce = bytes.substr(header, k_nonce_bytes);
    e.ciphertext =
        bytes.substr(header + k_nonce_bytes, bytes.size() - header - k_nonce_bytes - k_tag_bytes);
    e.tag = bytes.substr(bytes.size() - k_tag_bytes);
    return e;
}

// What authenticates a value besides its header: the field and the event id, NUL-separated.
std::string associated_tail(std::string_view field, std::string_view event_id) {
    std::string out;
    out.reserve(field.size() + event_id.size() + 2);
    out += '\0';
    out += field;
    out += '\0';
    out += event_id;
    return out;
}

const unsigned char* bytes_of(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

std::string describe(std::string_view field, std::string_view event_id) {
    return "the " + std::string(field) + " of event " + std::string(event_id);
}

struct ZstdCCtxFree {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
    void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// `value` as one zstd frame when that is shorter, else nothing. One context per thread: making
// one costs more than compressing a body.
std::optional<std::string> compressed(std::string_view value) {
    if (value.size() < k_min_compress) {
        return std::nullopt;
    }
    thread_local std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx(ZSTD_createCCtx());
    if (!cctx) {
        return std::nullopt;
    }
    std::string out(ZSTD_compressBound(value.size()), '\0');
    std::size_t n = ZSTD_compressCCtx(cctx.get(), out.data(), out.size(), value.data(),
                                      value.size(), k_zstd_level);
    if (ZSTD_isError(n) != 0 || n >= value.size()) {
        return std::nullopt;
    }
    out.resize(n);
    return out;
}

// The value in an authenticated zstd frame, or nothing when the frame is not one this writer
// makes (unknown or oversized length, or not decoding to exactly that length).
std::optional<std::string> decompressed(std::string_view frame) {
    unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size > k_max_plain) {
        return std::nullopt;
    }
    thread_local std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx(ZSTD_createDCtx());
    if (!dctx) {
        return std::nullopt;
    }
    std::string out(static_cast<std::size_t>(size), '\0');
    std::size_t n =
        ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), frame.data(), frame.size());
    if (ZSTD_isError(n) != 0 || n != out.size()) {
        return std::nullopt;
    }
    return out;
}

} // namespace

bool is_sealed(std::string_view bytes) {
    if (bytes.size() <= k_sealed_magic.size() || !bytes.starts_with(k_sealed_magic)) {
        return false;
    }
    auto version = static_cast<unsigned char>(bytes[k_sealed_magic.size()]);
    return version == k_version_plain || version == k_version_zstd;
}

std::optional<std::string> sealed_key_id(std::string_view bytes) {
    auto e = split(bytes);
    if (!e) {
        return std::nullopt;
    }
    return std::string(e->key_id);
}

struct BodyCipher::Impl {
    std::vector<keys::ArchiveKey> keys;
    util::EvpCipherPtr cipher;
};

BodyCipher::BodyCipher(std::unique_ptr<Impl> impl)
    : m_impl(std::move(impl)) {}
BodyCipher::~BodyCipher() = default;

Result<std::shared_ptr<const BodyCipher>> BodyCipher::make(std::vector<keys::ArchiveKey> keys) {
    if (keys.empty()) {
        return fail(ExitCode::usage, "no archive key given");
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (keys[i].bytes.size() != keys::k_archive_key_bytes) {
            return fail(ExitCode::usage,
                        "archive key from " + keys[i].origin + " is not 32 bytes long");
        }
        if (keys[i].id.empty() || keys[i].id.size() > k_max_key_id) {
            return fail(ExitCode::usage, "archive key from " + keys[i].origin + " has no id");
        }
    }
    // The same key given twice (a key file and the keyring it came from): keep the first.
    std::vector<keys::ArchiveKey> unique;
    for (auto& key : keys) {
        if (std::none_of(unique.begin(), unique.end(),
                         [&](const keys::ArchiveKey& k) { return k.id == key.id; })) {
            unique.push_back(std::move(key));
        }
    }
    auto impl = std::make_unique<Impl>();
    impl->keys = std::move(unique);
    impl->cipher.reset(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
    if (!impl->cipher) {
        return fail(ExitCode::environment,
                    "OpenSSL has no AES-256-GCM (check the OpenSSL 3 installation)");
    }
    return std::shared_ptr<const BodyCipher>(new BodyCipher(std::move(impl)));
}

const std::string& BodyCipher::write_key_id() const {
    return m_impl->keys.front().id;
}

std::vector<std::string> BodyCipher::key_ids() const {
    std::vector<std::string> out;
    for (const auto& k : m_impl->keys) {
        out.push_back(k.id);
    }
    return out;
}

bool BodyCipher::has_key(std::string_view id) const {
    return std::any_of(m_impl->keys.begin(), m_impl->keys.end(),
                       [&](const keys::ArchiveKey& k) { return k.id == id; });
}

Result<std::string> BodyCipher::seal(std::string_view plaintext, std::string_view field,
                                     std::string_view event_id) const {
    const auto& key = m_impl->keys.front();
    const std::size_t header = 6 + key.id.size();
    const std::optional<std::string> packed = compressed(plaintext);
    if (packed) {
        plaintext = *packed;
    }
    std::string out(header + k_nonce_bytes + plaintext.size() + k_tag_bytes, '\0');
    out.replace(0, k_sealed_magic.size(), k_sealed_magic);
    out[4] = static_cast<char>(packed ? k_version_zstd : k_version_plain);
    out[5] = static_cast<char>(key.id.size());
    out.replace(6, key.id.size(), key.id);
    auto* data = reinterpret_cast<unsigned char*>(out.data());
    auto oops = [&](const char* what) {
        return fail(ExitCode::environment, std::string("cannot encrypt ") +
                                               describe(field, event_id) + ": OpenSSL " + what +
                                               " failed");
    };
    if (RAND_bytes(data + header, static_cast<int>(k_nonce_bytes)) != 1) {
        return oops("RAND_bytes");
    }
    Ctx ctx(EVP_CIPHER_CTX_new());
    if (!ctx || EVP_EncryptInit_ex2(ctx.get(), m_impl->cipher.get(), bytes_of(key.bytes.view()),
                                    data + header, nullptr) != 1) {
        return oops("EVP_EncryptInit");
    }
    const std::string tail = associated_tail(field, event_id);
    int len = 0;
    if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, data, static_cast<int>(header)) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes_of(tail),
                          static_cast<int>(tail.size())) != 1) {
        return oops("EVP_EncryptUpdate (associated data)");
    }
    unsigned char* cipher_out = data + header + k_nonce_bytes;
    std::size_t done = 0;
    // EVP takes int lengths: feed large values in chunks.
    constexpr std::size_t k_chunk = 1 << 30;
    while (done < plaintext.size()) {
        std::size_t n = std::min(k_chunk, plaintext.size() - done);
        if (EVP_EncryptUpdate(ctx.get(), cipher_out + done, &len, bytes_of(plaintext) + done,
                              static_cast<int>(n)) != 1) {
            return oops("EVP_EncryptUpdate");
        }
        done += static_cast<std::size_t>(len);
    }
    if (EVP_EncryptFinal_ex(ctx.get(), cipher_out + done, &len) != 1) {
        return oops("EVP_EncryptFinal");
    }
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(k_tag_bytes),
                            data + out.size() - k_tag_bytes) != 1) {
        return oops("EVP_CTRL_GCM_GET_TAG");
    }
    return out;
}

Result<std::string> BodyCipher::open(std::string_view sealed, std::string_view field,
                                     std::string_view event_id) const {
    auto e = split(sealed);
    if (!e) {
        return fail(ExitCode::environment,
                    describe(field, event_id) +
                        " is not a well-formed encrypted value (truncated or altered)");
    }
    const keys::ArchiveKey* key = nullptr;
    for (const auto& k : m_impl->keys) {
        if (k.id == e->key_id) {
            key = &k;
        }
    }
    if (key == nullptr) {
        std::string given;
        for (const auto& k : m_impl->keys) {
            given += (given.empty() ? "" : ", ") + k.id;
        }
        return fail(ExitCode::environment,
                    describe(field, event_id) + " is encrypted under archive key " +
                        std::string(e->key_id) + ", which was not given (given: " + given +
                        "): pass --archive-key with key " + std::string(e->key_id));
    }
    auto oops = [&](const char* what) {
        return fail(ExitCode::environment, std::string("cannot decrypt ") +
                                               describe(field, event_id) + ": OpenSSL " + what +
                                               " failed");
    };
    Ctx ctx(EVP_CIPHER_CTX_new());
    if (!ctx || EVP_DecryptInit_ex2(ctx.get(), m_impl->cipher.get(), bytes_of(key->bytes.view()),
                                    bytes_of(e->nonce), nullptr) != 1) {
        return oops("EVP_DecryptInit");
    }
    const std::string tail = associated_tail(field, event_id);
    int len = 0;
    if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes_of(e->header),
                          static_cast<int>(e->header.size())) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes_of(tail),
                          static_cast<int>(tail.size())) != 1) {
        return oops("EVP_DecryptUpdate (associated data)");
    }
    std::string out(e->ciphertext.size(), '\0');
    auto* plain = reinterpret_cast<unsigned char*>(out.data());
    std::size_t done = 0;
    constexpr std::size_t k_chunk = 1 << 30;
    while (done < e->ciphertext.size()) {
        std::size_t n = std::min(k_chunk, e->ciphertext.size() - done);
        if (EVP_DecryptUpdate(ctx.get(), plain + done, &len, bytes_of(e->ciphertext) + done,
                              static_cast<int>(n)) != 1) {
            return oops("EVP_DecryptUpdate");
        }
        done += static_cast<std::size_t>(len);
    }
    std::string tag(e->tag);
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(k_tag_bytes),
                            tag.data()) != 1) {
        return oops("EVP_CTRL_GCM_SET_TAG");
    }
    if (EVP_DecryptFinal_ex(ctx.get(), plain + done, &len) != 1) {
        OPENSSL_cleanse(out.data(), out.size());
        return fail(ExitCode::environment,
                    describe(field, event_id) + " failed authentication under archive key " +
                        key->id +
                        ": it was altered, or moved from another event or column; nothing "
                        "was read from it (restore the archive from a copy)");
    }
    if (static_cast<unsigned char>(e->header[4]) == k_version_zstd) {
        auto value = decompressed(out);
        OPENSSL_cleanse(out.data(), out.size());
        if (!value) {
            return fail(ExitCode::environment,
                        describe(field, event_id) + " authenticated under archive key " + key->id +
                            " but does not hold a valid compressed value; nothing was read "
                            "from it (it was written by a faulty writer: restore the archive "
                            "from a copy)");
        }
        return std::move(*value);
    }
    return out;
}

} // namespace hookctl::archive
