#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <hookctl/http/tls.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/openssl_ptr.hpp>

namespace hookctl::http {
namespace {

using util::BioPtr;
using util::X509Ptr;
using PkeyPtr = util::EvpPkeyPtr;

// OpenSSL's queued errors as one line ("" when none), clearing the queue: libcurl reads the
// same thread's queue after a failed handshake, so nothing of ours may be left in it.
std::string openssl_errors() {
    std::string out;
    while (unsigned long code = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        // "error:0480006C:PEM routines::no start line" -> "no start line"
        std::string_view line(text);
        auto at = line.rfind(':');
        out += (out.empty() ? "" : "; ") +
               std::string(at == std::string_view::npos ? line : line.substr(at + 1));
    }
    return out;
}

BioPtr memory_bio(std::string_view bytes) {
    return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string mode_octal(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

// Reads a file that holds a secret (a private key, a passphrase): refused when group or others
// may read or change it, as keyrings are. `what` names it in messages (its setting and path).
Result<keys::SecretBytes> read_private_file(const std::string& path, const std::string& what) {
    util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return fail(ExitCode::usage,
                    what + ": cannot open: " + std::strerror(errno) + " (check the path)");
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return fail(ExitCode::usage, what + ": not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        return fail(ExitCode::usage,
                    what + ": permissions " + mode_octal(st.st_mode) +
                        " are too open: it holds a secret that group or others can read, so "
                        "hookctl refuses it. Run 'chmod 600 " +
                        path + "' (and replace the key if others may have read it)");
    }
    std::string bytes;
    char buffer[16384];
    for (;;) {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int err = errno;
            keys::SecretBytes wipe(std::move(bytes));
            OPENSSL_cleanse(buffer, sizeof buffer);
            return fail(ExitCode::usage, what + ": cannot read: " + std::strerror(err));
        }
        if (n == 0) {
            break;
        }
        bytes.append(buffer, static_cast<std::size_t>(n));
    }
    OPENSSL_cleanse(buffer, sizeof buffer);
    return keys::SecretBytes(std::move(bytes));
}

Result<std::string> read_public_file(const std::string& path, const std::string& what) {
    auto bytes = util::read_file(path);
    if (!bytes) {
        return fail(ExitCode::usage, what + ": " + bytes.error().message);
    }
    return std::move(*bytes);
}

// A certificate's subject, one line in RFC 2253 order ("CN=client,O=Example").
std::string subject_of(X509* cert) {
    BioPtr out(BIO_new(BIO_s_mem()));
    if (!out ||
        X509_NAME_print_ex(out.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
        return "";
    }
    char* data = nullptr;
    long size = BIO_get_mem_data(out.get(), &data);
    return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

// How many PEM certificates `bytes` holds.
int count_certificates(std::string_view bytes) {
    auto bio = memory_bio(bytes);
    int count = 0;
    while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
        ++count;
    }
    ERR_clear_error(); // the read past the last one always "fails"
    return count;
}

struct PassphraseState {
    const keys::SecretBytes* passphrase = nullptr;
    bool asked = false;
};

int passphrase_callback(char* buffer, int size, int, void* user) {
    auto* state = static_cast<PassphraseState*>(user);
    state->asked = true;
    if (state->passphrase == nullptr || state->passphrase->empty()) {
        return -1; // no passphrase given: fail rather than prompt on the terminal
    }
    auto text = state->passphrase->view();
    if (text.size() > static_cast<std::size_t>(size)) {
        return -1;
    }
    std::memcpy(buffer, text.data(), text.size());
    return static_cast<int>(text.size());
}

TlsSettingNames target_names(std::string_view target) {
    std::string of = " of target '" + std::string(target) + "'";
    return {"ca_file" + of,
            "ca_path" + of,
            "client_cert" + of,
            "client_key" + of,
            "client_key_passphrase_env" + of,
            "client_key_passphrase_file" + of};
}

Result<void> check_trust(const TlsClientSpec& spec, const TlsSettingNames& names) {
    if (!spec.ca_file.empty()) {
        std::string what = names.ca_file + " " + spec.ca_file;
        auto bytes = read_public_file(spec.ca_file, what);
        HOOKCTL_RETURN_IF_ERROR(bytes);
        if (count_certificates(*bytes) == 0) {
            return fail(ExitCode::usage,
                        what + ": no PEM certificate in it; give the CA certificate(s) in PEM "
                               "form (-----BEGIN CERTIFICATE-----)");
        }
    }
    if (!spec.ca_path.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_directory(spec.ca_path, ec)) {
            return fail(ExitCode::usage, names.ca_path + " " + spec.ca_path +
                                             ": not a directory; give a directory of CA "
                                             "certificates prepared with 'openssl rehash DIR'");
        }
    }
    return {};
}

Result<keys::SecretBytes>
load_passphrase(const TlsClientSpec& spec, const TlsSettingNames& names,
                const std::function<std::optional<std::string>(const std::string&)>& getenv) {
    if (!spec.key_passphrase_env.empty() && !spec.key_passphrase_file.empty()) {
        return fail(ExitCode::usage, names.passphrase_env + " and " + names.passphrase_file +
                                         " both given: pass one of them");
    }
    std::string text;
    if (!spec.key_passphrase_env.empty()) {
        auto value = getenv(spec.key_passphrase_env);
        if (!value || value->empty()) {
            return fail(ExitCode::usage, names.passphrase_env + " " + spec.key_passphrase_env +
                                             ": the variable is not set or empty; export the "
                                             "key's passphrase in it");
        }
        text = std::move(*value);
    } else if (!spec.key_passphrase_file.empty()) {
        if (spec.key_passphrase_file == "-") {
            return fail(ExitCode::usage,
                        names.passphrase_file + ": give a file path (stdin is not read for it)");
        }
        auto bytes = read_private_file(spec.key_passphrase_file,
                                       names.passphrase_file + " " + spec.key_passphrase_file);
        HOOKCTL_RETURN_IF_ERROR(bytes);
        text = std::string(bytes->view());
    } else {
        return keys::SecretBytes();
    }
    if (text.ends_with('\n')) {
        text.pop_back();
        if (text.ends_with('\r')) {
            text.pop_back();
        }
    }
    return keys::SecretBytes(std::move(text));
}

Result<ClientCertificate> load_client_certificate(
    const TlsClientSpec& spec, const TlsSettingNames& names,
    const std::function<std::optional<std::string>(const std::string&)>& getenv) {
    if (spec.cert.empty()) {
        return fail(ExitCode::usage, names.key + " or a key passphrase given without " +
                                         names.cert + ": pass the client certificate too");
    }
    ClientCertificate out;
    out.label = names.cert + " " + spec.cert;
    const std::string& key_path = spec.key.empty() ? spec.cert : spec.key;
    std::string key_label = spec.key.empty()
                                ? names.cert + " " + spec.cert + " (which holds the key)"
                                : names.key + " " + spec.key;

    auto cert_bytes = spec.key.empty() ? Result<std::string>(std::string())
                                       : read_public_file(spec.cert, out.label);
    HOOKCTL_RETURN_IF_ERROR(cert_bytes);
    auto key_bytes = read_private_file(key_path, key_label);
    HOOKCTL_RETURN_IF_ERROR(key_bytes);
    if (spec.key.empty()) {
        *cert_bytes = std::string(key_bytes->view());
    }
    auto passphrase = load_passphrase(spec, names, getenv);
    HOOKCTL_RETURN_IF_ERROR(passphrase);

    ERR_clear_error();
    auto cert_bio = memory_bio(*cert_bytes);
    X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
        std::string why = openssl_errors();
        return fail(ExitCode::usage, out.label + ": no PEM certificate in it (" + why +
                                         "); give the client certificate in PEM form");
    }
    PassphraseState state{&*passphrase, false};
    auto key_bio = memory_bio(key_bytes->view());
    PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, passphrase_callback, &state));
    std::string why = openssl_errors();
    if (!key) {
        if (state.asked && passphrase->empty()) {
            return fail(ExitCode::usage, key_label + " is encrypted: give its passphrase with " +
                                             names.passphrase_env + " NAME or " +
                                             names.passphrase_file +
                                             " PATH (never on the command line)");
        }
        if (state.asked) {
            return fail(ExitCode::usage, key_label +
                                             ": cannot decrypt it with the passphrase "
                                             "given (" +
                                             why + "); check the passphrase");
        }
        return fail(ExitCode::usage,
                    key_label + ": no PEM private key in it (" + why + ")" +
                        (spec.key.empty() ? "; pass " + names.key + " FILE" : std::string()));
    }
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        openssl_errors();
        return fail(ExitCode::usage, key_label + " does not match the certificate in " + out.label +
                                         "; give the key the certificate was "
                                         "issued for");
    }
    out.subject = subject_of(cert.get());
    out.cert_pem = std::move(*cert_bytes);
    out.key_pem = std::move(*key_bytes);
    out.key_passphrase = state.asked ? std::move(*passphrase) : keys::SecretBytes();
    return out;
}

bool contains(std::string_view text, std::string_view word) {
    return text.find(word) != std::string_view::npos;
}

// "SSL certificate problem: self-signed certificate" -> "self-signed certificate"
std::string problem_of(std::string_view detail) {
    for (std::string_view prefix : {"SSL certificate problem: ", "SSL: "}) {
        if (auto at = detail.find(prefix); at != std::string_view::npos) {
            return std::string(detail.substr(at + prefix.size()));
        }
    }
    // "OpenSSL/3.0.19: error:0A000418:SSL routines::tlsv1 alert unknown ca" -> the last part
    if (auto at = detail.rfind("::"); at != std::string_view::npos) {
        std::string_view rest = detail.substr(at + 2);
        if (auto comma = rest.find(','); comma != std::string_view::npos) {
            rest = rest.substr(0, comma); // ", errno 0"
        }
        return std::string(rest);
    }
    return std::string(detail);
}

} // namespace

Trust choose_trust(const TlsClientSpec& flags, const TlsClientSpec& target,
                   std::string_view env_cert_file, std::string_view env_cert_dir) {
    Trust trust;
    auto exactly = [&](const TlsClientSpec& spec, const std::string& file_name,
                       const std::string& dir_name) {
        trust.ca_file = spec.ca_file;
        trust.ca_path = spec.ca_path;
        if (!spec.ca_file.empty()) {
            trust.label = file_name + " " + spec.ca_file;
        }
        if (!spec.ca_path.empty()) {
            trust.label += (trust.label.empty() ? "" : " and ") + dir_name + " " + spec.ca_path;
        }
    };
    if (flags.has_trust()) {
        exactly(flags, flags.names.ca_file, flags.names.ca_path);
    } else if (target.has_trust()) {
        exactly(target, "ca_file", "ca_path");
    } else if (!env_cert_file.empty() || !env_cert_dir.empty()) {
        if (!env_cert_file.empty()) {
            trust.ca_file = std::string(env_cert_file);
            trust.label = "SSL_CERT_FILE=" + std::string(env_cert_file);
        }
        if (!env_cert_dir.empty()) {
            trust.ca_path = std::string(env_cert_dir);
            trust.label += (trust.label.empty() ? "" : " and ") +
                           ("SSL_CERT_DIR=" + std::string(env_cert_dir));
        }
        trust.label += " (from the environment)";
    } else {
        trust.label = "the system trust store";
    }
    return trust;
}

std::optional<std::string> process_env(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

Result<TlsClient>
resolve_tls_client(const TlsClientSpec& flags, const TlsClientSpec& target,
                   std::string_view target_name,
                   const std::function<std::optional<std::string>(const std::string&)>& getenv) {
    TlsClient out;
    out.names = flags.names;
    auto env_file = getenv("SSL_CERT_FILE").value_or("");
    auto env_dir = getenv("SSL_CERT_DIR").value_or("");
    out.trust = choose_trust(flags, target, env_file, env_dir);
    if (flags.has_trust()) {
        if (auto ok = check_trust(flags, flags.names); !ok) {
            return std::unexpected(ok.error());
        }
    } else if (target.has_trust()) {
        if (auto ok = check_trust(target, target_names(target_name)); !ok) {
            return std::unexpected(ok.error());
        }
    }
    const TlsClientSpec* cert_spec = flags.has_client_cert()    ? &flags
                                     : target.has_client_cert() ? &target
                                                                : nullptr;
    if (cert_spec != nullptr) {
        auto names = cert_spec == &flags ? flags.names : target_names(target_name);
        auto cert = load_client_certificate(*cert_spec, names, getenv);
        HOOKCTL_RETURN_IF_ERROR(cert);
        out.client_cert = std::move(*cert);
    }
    return out;
}

std::optional<TlsFailure> describe_tls_failure(int curl_code, std::string_view detail,
                                               const Trust& trust, bool has_client_cert,
                                               const TlsSettingNames& names) {
    std::string problem = problem_of(detail);
    std::string client_fix = "pass " + names.cert + " FILE " + names.key +
                             " FILE (or client_cert/client_key on the target) with a certificate "
                             "from a CA the server trusts";
    TlsFailure f;
    f.reason = "tls_error";
    f.permanent = true;
    switch (curl_code) {
    case CURLE_PEER_FAILED_VERIFICATION:
        if (contains(detail, "subject name") || contains(detail, "host name")) {
            f.message = "TLS: the server's certificate is not valid for this host name (" +
                        problem +
                        "); use the host name the certificate was issued for, or have it "
                        "reissued with this one in its subjectAltName";
        } else if (contains(detail, "expired") || contains(detail, "not yet valid")) {
            f.message =
                "TLS: the server's certificate " +
                std::string(contains(detail, "expired") ? "has expired" : "is not valid yet") +
                " (" + problem +
                "); it must be renewed on the server (and check this machine's clock)";
        } else {
            bool system = !trust.ca_file && !trust.ca_path;
            f.message = "TLS: the server's certificate is not trusted by " + trust.label + " (" +
                        problem + "); " +
                        (system || trust.label.find("environment") != std::string::npos
                             ? "if a private CA signed it, pass " + names.ca_file +
                                   " FILE with that CA's certificate (or " + names.ca_path +
                                   " DIR; ca_file/ca_path on a target)"
                             : "give the certificate of the CA that signed the server's "
                               "certificate");
        }
        return f;
    case CURLE_SSL_CACERT_BADFILE:
        f.message = "TLS: cannot load the CA certificates of " + trust.label + " (" + problem +
                    "); give a readable PEM bundle with " + names.ca_file +
                    " FILE or a directory with " + names.ca_path + " DIR";
        return f;
    case CURLE_SSL_CERTPROBLEM:
        f.message = "TLS: the client certificate could not be used (" + problem + "); check " +
                    names.cert + " and " + names.key;
        return f;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        break;
    default:
        return std::nullopt;
    }
    // A handshake that failed, or (TLS 1.3) an alert right after it.
    if (contains(detail, "certificate required")) {
        f.message =
            "TLS: the server requires a client certificate (" + problem + "); " +
            (has_client_cert ? "the one given was not sent or not accepted; check " + names.cert
                             : client_fix);
        return f;
    }
    if (contains(detail, "alert unknown ca") || contains(detail, "alert bad certificate") ||
        contains(detail, "alert certificate unknown") || contains(detail, "alert access denied") ||
        contains(detail, "alert unsupported certificate")) {
        f.message = has_client_cert
                        ? "TLS: the server refused the client certificate (" + problem +
                              "); it must be issued by a CA the server trusts (and match what "
                              "it accepts)"
                        : "TLS: the server refused the connection (" + problem +
                              "); if it "
                              "requires a "
                              "client "
                              "certificate, " +
                              client_fix;
        return f;
    }
    if (contains(detail, "wrong version number") || contains(detail, "packet length too long") ||
        contains(detail, "http request")) {
        f.message =
            "TLS: the server did not answer in TLS (" + problem + "); is it an http:// endpoint?";
        return f;
    }
    if (contains(detail, "alert protocol version") || contains(detail, "unsupported protocol") ||
        contains(detail, "no protocols available")) {
        f.message = "TLS: no TLS version in common with the server (" + problem +
                    "); hookctl speaks TLS 1.2 and 1.3";
        return f;
    }
    if (curl_code != CURLE_SSL_CONNECT_ERROR) {
        return std::nullopt; // a reset or a read error that is not about TLS
    }
    f.permanent = false;
    f.message = "TLS handshake failed (" + problem + ")" +
                (has_client_cert ? std::string()
                                 : "; if the server requires a client certificate, " + client_fix);
    return f;
}

} // namespace hookctl::http
