#include <chrono>
#include <cstdlib>
#include <memory>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/secret.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>

namespace hookctl::keys {

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : m_bytes(std::move(other.m_bytes)) {
    other.wipe();
}

SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
    if (this != &other) {
        wipe();
        m_bytes = other.m_bytes;
    }
    return *this;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
        wipe();
        m_bytes = std::move(other.m_bytes);
        other.wipe();
    }
    return *this;
}

SecretBytes::~SecretBytes() {
    wipe();
}

void SecretBytes::wipe() {
    if (!m_bytes.empty()) {
        OPENSSL_cleanse(m_bytes.data(), m_bytes.size());
    }
    m_bytes.clear();
}

std::string SecretSource::describe() const {
    switch (kind) {
    case Kind::env:
        return "env " + where;
    case Kind::file:
        return where == "-" ? std::string("file - (stdin)") : "file " + where;
    case Kind::keyring:
        return "keyring " + where;
    }
    return where;
}

namespace {

void drop_trailing_newline(std::string& s) {
    if (!s.empty() && s.back() == '\n') {
        s.pop_back();
        if (!s.empty() && s.back() == '\r') {
            s.pop_back();
        }
    }
}

Result<SecretText> load_one(const SecretSource& source) {
    std::string text;
    switch (source.kind) {
    case SecretSource::Kind::env: {
        const char* value = std::getenv(source.where.c_str());
        if (value == nullptr) {
            return fail(ExitCode::usage, "secret: environment variable " + source.where +
                                             " is not set (export it, or use --secret-file)");
        }
        text = value;
        break;
    }
    case SecretSource::Kind::file: {
        auto content = util::read_file(source.where);
        if (!content) {
            return fail(ExitCode::usage, "secret: " + content.error().message);
        }
        text = std::move(*content);
        break;
    }
    case SecretSource::Kind::keyring:
        // Handled by load_secrets: a keyring yields several secrets.
        return fail(ExitCode::usage, "secret: " + source.describe() + ": internal error");
    }
    drop_trailing_newline(text);
    SecretText secret{SecretBytes(std::move(text)), source.describe()};
    if (secret.text.empty()) {
        return fail(ExitCode::usage,
                    "secret from " + secret.origin + " is empty: put the webhook secret there");
    }
    return secret;
}

struct PkeyDeleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

std::optional<std::string> ed25519_public_from_seed(std::string_view seed) {
    std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey(EVP_PKEY_new_raw_private_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()),
        seed.size()));
    if (!pkey) {
        return std::nullopt;
    }
    std::string pub(32, '\0');
    std::size_t len = pub.size();
    if (EVP_PKEY_get_raw_public_key(pkey.get(), reinterpret_cast<unsigned char*>(pub.data()),
                                    &len) != 1 ||
        len != 32) {
        return std::nullopt;
    }
    return pub;
}

} // namespace

Result<std::vector<SecretText>> load_secrets(const std::vector<SecretSource>& sources,
                                             std::optional<std::int64_t> at) {
    std::vector<SecretText> out;
    bool stdin_used = false;
    for (const auto& source : sources) {
        if (source.kind == SecretSource::Kind::keyring) {
            std::int64_t now = at ? *at
                                  : std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
            auto secrets = keyring_secrets(source.where, now);
            if (!secrets) {
                return std::unexpected(secrets.error());
            }
            for (auto& secret : *secrets) {
                out.push_back(std::move(secret));
            }
            continue;
        }
        if (source.kind == SecretSource::Kind::file && source.where == "-") {
            if (stdin_used) {
                return fail(ExitCode::usage,
                            "secret: stdin (--secret-file -) can be read only once");
            }
            stdin_used = true;
        }
        auto secret = load_one(source);
        if (!secret) {
            return std::unexpected(secret.error());
        }
        out.push_back(std::move(*secret));
    }
    return out;
}

std::string fingerprint(std::string_view key_bytes) {
    return util::hex_encode(util::sha256(key_bytes)).substr(0, 8);
}

Result<Key> decode_key(const SecretText& secret, SecretEncoding encoding) {
    std::string_view text = secret.text.view();
    Key key;
    key.origin = secret.origin;
    if (encoding == SecretEncoding::raw) {
        key.kind = KeyKind::hmac;
        key.bytes = secret.text;
        key.fingerprint = fingerprint(text);
        // A `whsec_` secret used raw (as Stripe does) is still named by its decoded bytes, so
        // one secret has one fingerprint whichever scheme uses it (keyrings show that one).
        if (text.starts_with("whsec_")) {
            if (auto decoded = util::base64_decode(text.substr(6)); decoded && !decoded->empty()) {
                key.fingerprint = fingerprint(*decoded);
                OPENSSL_cleanse(decoded->data(), decoded->size());
            }
        }
        return key;
    }
    auto decode = [&](std::string_view prefix, std::string_view what) -> Result<SecretBytes> {
        auto bytes = util::base64_decode(text.substr(prefix.size()));
        if (!bytes || bytes->empty()) {
            return fail(ExitCode::usage,
                        "secret from " + secret.origin + ": malformed " + std::string(what) +
                            ": the part after '" + std::string(prefix) +
                            "' must be non-empty standard base64 (copy the secret again from "
                            "the provider's dashboard)");
        }
        return SecretBytes(std::move(*bytes));
    };
    if (text.starts_with("whsk_")) {
        auto bytes = decode("whsk_", "whsk_ signing key");
        if (!bytes) {
            return std::unexpected(bytes.error());
        }
        // Accept the 32-byte seed or the 64-byte seed||public form.
        if (bytes->size() != 32 && bytes->size() != 64) {
            return fail(ExitCode::usage, "secret from " + secret.origin +
                                             ": malformed whsk_ signing key: expected 32 or 64 "
                                             "bytes of ed25519 key, got " +
                                             std::to_string(bytes->size()));
        }
        std::string seed(bytes->view().substr(0, 32));
        auto pub = ed25519_public_from_seed(seed);
        OPENSSL_cleanse(seed.data(), seed.size());
        if (!pub) {
            return fail(ExitCode::usage,
                        "secret from " + secret.origin + ": OpenSSL rejected the ed25519 key");
        }
        key.kind = KeyKind::ed25519_private;
        key.bytes = SecretBytes(std::string(bytes->view().substr(0, 32)));
        key.public_key = *pub;
        key.fingerprint = fingerprint(*pub);
        return key;
    }
    if (text.starts_with("whpk_")) {
        auto bytes = decode("whpk_", "whpk_ public key");
        if (!bytes) {
            return std::unexpected(bytes.error());
        }
        if (bytes->size() != 32) {
            return fail(ExitCode::usage, "secret from " + secret.origin +
                                             ": malformed whpk_ public key: expected 32 bytes, "
                                             "got " +
                                             std::to_string(bytes->size()));
        }
        key.kind = KeyKind::ed25519_public;
        key.public_key = std::string(bytes->view());
        key.bytes = std::move(*bytes);
        key.fingerprint = fingerprint(key.public_key);
        return key;
    }
    std::string_view prefix = text.starts_with("whsec_") ? "whsec_" : "";
    auto bytes = decode(prefix, prefix.empty() ? "secret (Standard Webhooks secrets are base64, "
                                                 "usually written whsec_...)"
                                               : "whsec_ secret");
    if (!bytes) {
        return std::unexpected(bytes.error());
    }
    key.kind = KeyKind::hmac;
    key.fingerprint = fingerprint(bytes->view());
    key.bytes = std::move(*bytes);
    return key;
}

Result<std::vector<Key>> decode_keys(const std::vector<SecretText>& secrets,
                                     SecretEncoding encoding) {
    std::vector<Key> keys;
    for (const auto& secret : secrets) {
        auto key = decode_key(secret, encoding);
        if (!key) {
            return std::unexpected(key.error());
        }
        keys.push_back(std::move(*key));
    }
    return keys;
}

} // namespace hookctl::keys
