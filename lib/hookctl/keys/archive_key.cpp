#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <hookctl/keys/archive_key.hpp>
#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/keyring_file.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>

namespace hookctl::keys {
namespace {

bool is_hex64(std::string_view s) {
    return s.size() == 2 * k_archive_key_bytes && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
           });
}

std::string hex_decode(std::string_view s) {
    auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    std::string out(s.size() / 2, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<char>((nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]));
    }
    return out;
}

ArchiveKey make_key(std::string& bytes, const std::string& origin) {
    ArchiveKey key;
    key.id = fingerprint(bytes);
    key.bytes = SecretBytes(bytes);
    key.origin = origin;
    cleanse(bytes);
    return key;
}

// Reads the whole file open on `fd`, wiping what it read on failure.
Result<std::string> read_fd(int fd, const std::string& path) {
    std::string text;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int err = errno;
            cleanse(text);
            OPENSSL_cleanse(buffer, sizeof buffer);
            return fail(ExitCode::usage,
                        "cannot read archive key " + path + ": " + std::strerror(err));
        }
        if (n == 0) {
            break;
        }
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > 1 << 20) {
            cleanse(text);
            OPENSSL_cleanse(buffer, sizeof buffer);
            return fail(ExitCode::usage,
                        "archive key " + path + " is larger than 1 MiB: not a key file or keyring");
        }
    }
    OPENSSL_cleanse(buffer, sizeof buffer);
    return text;
}

} // namespace

bool is_archive_key_text(std::string_view text) {
    return text.starts_with(k_archive_key_prefix);
}

Result<ArchiveKey> decode_archive_key(std::string_view text, const std::string& origin) {
    const std::string forms = " (give `hkak_` + base64 of 32 bytes as `hookctl secret new "
                              "--kind archive` prints, 64 hex digits, or exactly 32 raw bytes)";
    if (text.size() == k_archive_key_bytes && !is_archive_key_text(text)) {
        std::string bytes(text);
        return make_key(bytes, origin);
    }
    std::string_view trimmed = text;
    if (trimmed.ends_with('\n')) {
        trimmed.remove_suffix(1);
        if (trimmed.ends_with('\r')) {
            trimmed.remove_suffix(1);
        }
    }
    if (trimmed.empty()) {
        return fail(ExitCode::usage, "archive key from " + origin + " is empty" + forms);
    }
    if (is_archive_key_text(trimmed)) {
        auto decoded = util::base64_decode(trimmed.substr(k_archive_key_prefix.size()));
        if (!decoded || decoded->size() != k_archive_key_bytes) {
            if (decoded) {
                cleanse(*decoded);
            }
            return fail(ExitCode::usage, "archive key from " + origin +
                                             " is malformed: hkak_ must be followed by the "
                                             "base64 of exactly 32 bytes" +
                                             forms);
        }
        return make_key(*decoded, origin);
    }
    if (is_hex64(trimmed)) {
        std::string bytes = hex_decode(trimmed);
        return make_key(bytes, origin);
    }
    return fail(ExitCode::usage, "archive key from " + origin + " is not an archive key" + forms);
}

SecretBytes generate_archive_key_text() {
    std::string bytes = util::random_bytes(k_archive_key_bytes);
    std::string text = std::string(k_archive_key_prefix) + util::base64_encode(bytes);
    cleanse(bytes);
    SecretBytes out(text);
    cleanse(text);
    return out;
}

Result<std::vector<ArchiveKey>> load_archive_keys(const std::string& path) {
    if (path.empty()) {
        return fail(ExitCode::usage, "--archive-key: give the path of an archive key file");
    }
    util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        return fail(ExitCode::usage,
                    "cannot open archive key " + path + ": " + std::strerror(err) +
                        (err == ENOENT ? " (make one with `hookctl secret new --kind archive "
                                         "--keyring FILE`, or check the path)"
                                       : ""));
    }
    if (auto safe = check_secret_file(fd.get(), path, "archive key"); !safe) {
        return std::unexpected(safe.error());
    }
    auto text = read_fd(fd.get(), path);
    HOOKCTL_RETURN_IF_ERROR(text);
    std::vector<ArchiveKey> out;
    if (text->starts_with("{")) {
        auto keyring = parse_keyring(*text, path);
        cleanse(*text);
        HOOKCTL_RETURN_IF_ERROR(keyring);
        const KeyEntry* primary = keyring->primary();
        auto add = [&](const KeyEntry& entry) -> Result<void> {
            auto key =
                decode_archive_key(entry.secret.view(), "keyring " + path + " (" + entry.id + ")");
            HOOKCTL_RETURN_IF_ERROR(key);
            out.push_back(std::move(*key));
            return {};
        };
        if (primary != nullptr && primary->family == KeyFamily::archive) {
            if (auto added = add(*primary); !added) {
                return std::unexpected(added.error());
            }
        }
        for (auto it = keyring->keys.rbegin(); it != keyring->keys.rend(); ++it) {
            if (it->family == KeyFamily::archive && &*it != primary) {
                if (auto added = add(*it); !added) {
                    return std::unexpected(added.error());
                }
            }
        }
        if (out.empty()) {
            return fail(ExitCode::usage, "keyring " + path +
                                             " holds no archive key: add one with `hookctl "
                                             "secret new --kind archive --keyring " +
                                             path + "`");
        }
        return out;
    }
    auto key = decode_archive_key(*text, "file " + path);
    cleanse(*text);
    HOOKCTL_RETURN_IF_ERROR(key);
    out.push_back(std::move(*key));
    return out;
}

} // namespace hookctl::keys
