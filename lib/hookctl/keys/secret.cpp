#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/keyring_file.hpp>
#include <hookctl/keys/secret.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/openssl_ptr.hpp>
#include <hookctl/util/time.hpp>

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
    cleanse(m_bytes);
}

void cleanse(std::string& s) {
    if (!s.empty()) {
        OPENSSL_cleanse(s.data(), s.size());
    }
    s.clear();
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

// The secret bytes of `text` for the length rule: a `whsec_` secret's decoded key, else `text`.
std::size_t key_length(std::string_view text) {
    if (text.starts_with("whsec_")) {
        if (auto decoded = util::base64_decode(text.substr(6)); decoded && !decoded->empty()) {
            std::size_t n = decoded->size();
            OPENSSL_cleanse(decoded->data(), decoded->size());
            return n;
        }
    }
    return text.size();
}

// Reads the secret file `path` ('-': stdin) whole, after check_secret_file.
Result<std::string> read_secret_file(const std::string& path) {
    auto source = util::FileSource::open(path);
    HOOKCTL_RETURN_IF_ERROR(source);
    if (path != "-") {
        if (auto safe = check_secret_file(source->fd(), path, "secret file"); !safe) {
            return std::unexpected(safe.error());
        }
    }
    return util::read_all(*source);
}

std::mutex g_sink_mutex;
WarningSink g_sink;

void warn(const std::string& message) {
    std::lock_guard lock(g_sink_mutex);
    if (g_sink) {
        g_sink(message);
    }
}

// Applies check_secret_text to `secret`: the refusal, or the warning sent to the sink.
Result<void> apply_text_rule(const SecretText& secret) {
    auto checked = check_secret_text(secret.text.view(), secret.origin);
    HOOKCTL_RETURN_IF_ERROR(checked);
    if (*checked) {
        warn(**checked);
    }
    return {};
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
        auto content = read_secret_file(source.where);
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
    SecretText secret{SecretBytes(std::move(text)), source.describe(), source.is_stdin()};
    if (auto ok = apply_text_rule(secret); !ok) {
        return std::unexpected(ok.error());
    }
    return secret;
}

std::optional<std::string> ed25519_public_from_seed(std::string_view seed) {
    util::EvpPkeyPtr pkey(EVP_PKEY_new_raw_private_key(
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
                                             std::int64_t at_s) {
    std::vector<SecretText> out;
    bool stdin_used = false;
    for (const auto& source : sources) {
        if (source.kind == SecretSource::Kind::keyring) {
            auto secrets = keyring_secrets(source.where, at_s);
            HOOKCTL_RETURN_IF_ERROR(secrets);
            for (auto& secret : *secrets) {
                if (auto ok = apply_text_rule(secret); !ok) {
                    return std::unexpected(ok.error());
                }
                out.push_back(std::move(secret));
            }
            continue;
        }
        if (source.is_stdin()) {
            if (stdin_used) {
                return fail(ExitCode::usage,
                            "secret: stdin (--secret-file -) can be read only once");
            }
            stdin_used = true;
        }
        auto secret = load_one(source);
        HOOKCTL_RETURN_IF_ERROR(secret);
        out.push_back(std::move(*secret));
    }
    return out;
}

Result<void> check_secret_file(int fd, const std::string& path, std::string_view what,
                               bool regular_only) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return fail(ExitCode::usage,
                    "cannot stat " + std::string(what) + " " + path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        if (regular_only) {
            return fail(ExitCode::usage, std::string(what) + " " + path + " is not a regular file");
        }
        return {}; // a pipe or a device: no permissions of its own to judge
    }
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return fail(ExitCode::usage,
                    std::string(what) + " " + path + ": permissions " + mode +
                        " are too open: others may read or change the secret in it, so "
                        "hookctl refuses it. Run 'chmod 600 " +
                        path + "', and rotate the secret if others may have read it");
    }
    return {};
}

Result<std::optional<std::string>> check_secret_text(std::string_view text,
                                                     const std::string& origin) {
    bool blank = std::all_of(text.begin(), text.end(),
                             [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
    if (blank) {
        return fail(ExitCode::usage, "secret from " + origin +
                                         (text.empty() ? " is empty" : " is only whitespace") +
                                         ": put the webhook secret there");
    }
    constexpr std::size_t k_min_bytes = 16;
    if (std::size_t n = key_length(text); n < k_min_bytes) {
        return std::optional<std::string>(
            "secret from " + origin + " is only " + std::to_string(n) +
            (n == 1 ? " byte" : " bytes") +
            " long: a short secret can be guessed offline from one signed request; use at least "
            "16 random bytes ('hookctl secret new' makes 32)");
    }
    return std::optional<std::string>();
}

void set_warning_sink(WarningSink sink) {
    std::lock_guard lock(g_sink_mutex);
    g_sink = std::move(sink);
}

Result<void> write_secret_file(const std::string& path, const SecretBytes& secret, bool overwrite) {
    std::string text = std::string(secret.view()) + "\n";
    auto wipe = [&text] { OPENSSL_cleanse(text.data(), text.size()); };
    if (overwrite) {
        auto written = util::write_file_atomic(path, text, 0600);
        wipe();
        return written;
    }
    util::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) {
        int err = errno;
        wipe();
        if (err == EEXIST) {
            return fail(ExitCode::usage, path +
                                             " already exists: hookctl does not overwrite a "
                                             "secret file (its secret may be in use); give a new "
                                             "path, or add --force to replace it");
        }
        return fail(ExitCode::environment,
                    "cannot create " + path + ": " + std::strerror(err) + " (check the folder)");
    }
    // The umask may have taken the owner's bits: the file is the owner's, read-write.
    bool ok = ::fchmod(fd.get(), 0600) == 0;
    std::size_t done = 0;
    while (ok && done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        ok = n > 0;
        done += ok ? static_cast<std::size_t>(n) : 0;
    }
    ok = ok && ::fsync(fd.get()) == 0;
    int err = errno;
    wipe();
    if (!ok) {
        ::unlink(path.c_str());
        return fail(ExitCode::environment,
                    "cannot write " + path + ": " + std::strerror(err) + " (nothing was kept)");
    }
    return {};
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
        HOOKCTL_RETURN_IF_ERROR(bytes);
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
        HOOKCTL_RETURN_IF_ERROR(bytes);
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
    HOOKCTL_RETURN_IF_ERROR(bytes);
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
        HOOKCTL_RETURN_IF_ERROR(key);
        keys.push_back(std::move(*key));
    }
    return keys;
}

} // namespace hookctl::keys
