#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <hookctl/keys/secret.hpp>
#include <hookctl/util/error.hpp>

// TLS as a client (send, replay, probe, listen --forward-to): which CAs to trust and which
// certificate to present.
//
// Trust, first match wins:
//   1. --cacert FILE / --capath DIR: exactly these (the system store is not used then);
//   2. a target's ca_file / ca_path, the same way;
//   3. SSL_CERT_FILE / SSL_CERT_DIR when set, each in place of the system default it names, as
//      OpenSSL-based tools read them;
//   4. the system trust store (libcurl's built-in bundle and directory).
// Client certificate (mutual TLS): --cert FILE and --key FILE (PEM; the key may sit in the
// certificate file), or a target's client_cert / client_key. The key is a secret: its file must
// not be readable by group or others (mode 0600), and an encrypted key takes its passphrase from
// an environment variable or a file, never from argv.
namespace hookctl::http {

// TLS client settings as given (flags, or a target's keys), before anything is read.
struct TlsClientSpec {
    std::string ca_file;             // --cacert / ca_file
    std::string ca_path;             // --capath / ca_path
    std::string cert;                // --cert / client_cert
    std::string key;                 // --key / client_key (empty: the key is in `cert`)
    std::string key_passphrase_env;  // --key-passphrase-env / client_key_passphrase_env
    std::string key_passphrase_file; // --key-passphrase-file / client_key_passphrase_file

    bool has_trust() const { return !ca_file.empty() || !ca_path.empty(); }
    bool has_client_cert() const {
        return !cert.empty() || !key.empty() || !key_passphrase_env.empty() ||
               !key_passphrase_file.empty();
    }
};

// The CAs a client trusts. Each location: nothing = libcurl's built-in default, "" = none.
struct Trust {
    std::optional<std::string> ca_file;
    std::optional<std::string> ca_path;
    std::string label; // how messages name it: "--cacert ca.pem", "the system trust store", ...
};

// Picks the trust of the rules above from the flags, the target's settings and the values of
// SSL_CERT_FILE / SSL_CERT_DIR (empty when unset). Pure.
Trust choose_trust(const TlsClientSpec& flags, const TlsClientSpec& target,
                   std::string_view env_cert_file, std::string_view env_cert_dir);

// A client certificate and its key, read and checked: the bytes libcurl is handed.
struct ClientCertificate {
    std::string cert_pem;             // the certificate (and any chain after it)
    keys::SecretBytes key_pem;        // the private key as in its file (maybe encrypted)
    keys::SecretBytes key_passphrase; // empty when the key is not encrypted
    std::string subject;              // the certificate's subject, for messages
    std::string label;                // "--cert client.pem", "client_cert of target 'x'"
};

// The resolved TLS client settings of an http::Client.
struct TlsClient {
    Trust trust;
    std::optional<ClientCertificate> client_cert;
};

// Resolves `flags` (which win as a group over `target`'s settings of the same group: trust, or
// client certificate) into what the client uses. Reads and checks every file now, so a mistake
// fails (exit 2) before anything is sent, naming the flag or config key and what to do: a CA
// file without a PEM certificate, a missing CA directory, a certificate or key that cannot be
// read or parsed, a key file others can read, an encrypted key without its passphrase (or with
// a wrong one), a key that does not match the certificate. `getenv` reads the environment
// (SSL_CERT_FILE, SSL_CERT_DIR, the passphrase variable).
Result<TlsClient>
resolve_tls_client(const TlsClientSpec& flags, const TlsClientSpec& target,
                   std::string_view target_name,
                   const std::function<std::optional<std::string>(const std::string&)>& getenv);

// The process environment, for resolve_tls_client.
std::optional<std::string> process_env(const std::string& name);

// A TLS failure of a transfer, told to a person: what went wrong and which flag fixes it.
struct TlsFailure {
    std::string reason;     // reason code: `tls_error`
    std::string message;    // the problem and the fix, one line
    bool permanent = false; // retrying cannot help (the certificate will not change by itself)
};

// Describes a TLS failure from libcurl's `curl_code` and its error text `detail`, or nothing
// when the failure is not about TLS. `trust` says which CAs were trusted; `has_client_cert`
// whether a client certificate was presented. Never suggests --insecure. Pure.
std::optional<TlsFailure> describe_tls_failure(int curl_code, std::string_view detail,
                                               const Trust& trust, bool has_client_cert);

} // namespace hookctl::http
