#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include <hookctl/util/error.hpp>

// The TLS side of `hookctl listen`, in OpenSSL terms only (the server wraps the SSL_CTX for
// Asio per connection): the server certificate, client certificates (mutual TLS) and reloading
// both when their files change, without dropping a connection.
//
// Threading: current() and reload() may be called from any thread. A connection keeps the
// context it was accepted with (its SSL holds a reference), so a reload changes only the
// connections accepted after it.
namespace hookctl::receive {

struct TlsServerOptions {
    std::string cert_file;                    // --tls-cert: PEM chain
    std::string key_file;                     // --tls-key: PEM key (unencrypted)
    std::string client_ca_file;               // --tls-client-ca: set = client certificate required
    std::vector<std::string> client_subjects; // --tls-client-subject patterns (any may match)
};

// A verified client certificate, as the subject patterns see it.
struct ClientIdentity {
    std::string subject;            // RFC 2253: "CN=billing,O=Example Corp"
    std::vector<std::string> names; // subjectAltNames: "DNS:a.example", "URI:spiffe://...",
                                    // "email:a@example", "IP:192.0.2.1"

    // What is recorded with an event: the subject, or the first subjectAltName when the
    // subject is empty.
    std::string text() const;
};

// True when `patterns` is empty, or one of them (shell-style: `*`, `?`, `[...]`, as fnmatch)
// matches the whole subject or one whole subjectAltName. Pure.
bool subject_allowed(const std::vector<std::string>& patterns, const ClientIdentity& identity);

// Why a handshake that needed a client certificate failed, as a reason code for /metrics and
// the log: `tls_no_client_cert`, `tls_untrusted_client` (not issued by --tls-client-ca, expired,
// ...), `tls_client_subject` (no --tls-client-subject matched); empty when the failure was not
// about the client certificate. `detail` gets the certificate problem in words.
std::string_view handshake_refusal(SSL* ssl, unsigned long error, std::string& detail);

// The identity of the verified client certificate of `ssl` (empty when it presented none).
ClientIdentity peer_identity(SSL* ssl);

// The server's TLS contexts: the current one (for new connections), rebuilt from the files on
// reload().
class TlsServer {
public:
    // Loads the files. Fails (exit 2) naming the flag and the file: unreadable or not PEM, a key
    // that does not match the certificate, a client CA file without a certificate.
    static Result<std::unique_ptr<TlsServer>> create(TlsServerOptions options);

    // The context new connections are made with (never null). The caller holds a reference.
    std::shared_ptr<SSL_CTX> current() const;

    // Builds a new context from the files; on success new connections use it. On failure (a
    // half-written or mismatched certificate) the current context stays and the error says why.
    Result<void> reload();

    // reload(), telling `notice` (message, is_warning) how it went, starting with `cause`.
    void reload_and_report(std::string_view cause,
                           const std::function<void(std::string_view, bool)>& notice);

    // The files a change of which should trigger reload().
    std::vector<std::string> files() const;

    bool requires_client_cert() const { return !m_options.client_ca_file.empty(); }

private:
    explicit TlsServer(TlsServerOptions options, std::shared_ptr<SSL_CTX> context);

    TlsServerOptions m_options;
    std::atomic<std::shared_ptr<SSL_CTX>> m_current;
    std::mutex m_reload_mutex;
};

} // namespace hookctl::receive
