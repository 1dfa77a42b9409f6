#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <hookctl/keys/secret.hpp>
#include <hookctl/util/error.hpp>

// TLS as a client (send, replay, probe, and listen's forwarding): which CAs to trust and which
// certificate to present.
//
// Trust, first match wins:
//   1. a CA file / directory the caller gives (`flags`): exactly these (the system store is not
//      used then);
//   2. a target's ca_file / ca_path, the same way;
//   3. SSL_CERT_FILE / SSL_CERT_DIR when set, each in place of the system default it names, as
//      OpenSSL-based tools read them;
//   4. the system trust store (libcurl's built-in bundle and directory).
// Client certificate (mutual TLS): a certificate and key the caller gives (PEM; the key may sit
// in the certificate file), or a target's client_cert / client_key. The key is a secret: its file
// must not be readable by group or others (mode 0600), and an encrypted key takes its passphrase
// from an environment variable or a file, never from argv.
namespace hookctl::http {

// How messages name the TLS settings a caller gave, in the caller's words (the commands: their
// flags). Where a message shows how to give one, it adds a placeholder after the name: FILE,
// DIR, NAME or PATH.
struct TlsSettingNames {
    std::string ca_file;
    std::string ca_path;
    std::string cert;
    std::string key;
    std::string passphrase_env;
    std::string passphrase_file;
};

// TLS client settings as given (the caller's flags, or a target's keys), before anything is read.
struct TlsClientSpec {
    std::string ca_file;             // CAs to trust, a PEM bundle (a target's ca_file)
    std::string ca_path;             // CAs to trust, a rehashed directory (ca_path)
    std::string cert;                // the client certificate, PEM (client_cert)
    std::string key;                 // its key (client_key; empty: the key is in `cert`)
    std::string key_passphrase_env;  // the key's passphrase is in this variable, or
    std::string key_passphrase_file; // in this file (client_key_passphrase_env / _file)
    // How messages name these settings when the caller gave them (a target's are named by its
    // config keys: "ca_file of target 'x'").
    TlsSettingNames names;

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
    std::string label; // how messages name it: "ca_file of target 'x' ca.pem", "the system ..."
};

// Picks the trust of the rules above from the flags, the target's settings and the values of
// SSL_CERT_FILE / SSL_CERT_DIR (empty when unset); the label names the flags by `flags.names`.
// Pure.
Trust choose_trust(const TlsClientSpec& flags, const TlsClientSpec& target,
                   std::string_view env_cert_file, std::string_view env_cert_dir);

// A client certificate and its key, read and checked: the bytes libcurl is handed.
struct ClientCertificate {
    std::string cert_pem;             // the certificate (and any chain after it)
    keys::SecretBytes key_pem;        // the private key as in its file (maybe encrypted)
    keys::SecretBytes key_passphrase; // empty when the key is not encrypted
    std::string subject;              // the certificate's subject, for messages
    std::string label;                // its setting and path: "client_cert of target 'x' c.pem"
};

// The resolved TLS client settings of an http::Client.
struct TlsClient {
    Trust trust;
    std::optional<ClientCertificate> client_cert;
    TlsSettingNames names; // the caller's names of its settings, for describe_tls_failure
};

// Resolves `flags` (which win as a group over `target`'s settings of the same group: trust, or
// client certificate) into what the client uses. Reads and checks every file now, so a mistake
// fails (exit 2) before anything is sent, naming the setting (by `flags.names`, or the config
// key) and what to do: a CA
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

// A TLS failure of a transfer, told to a person: what went wrong and which setting fixes it.
struct TlsFailure {
    std::string reason;     // reason code: `tls_error`
    std::string message;    // the problem and the fix, one line
    bool permanent = false; // retrying cannot help (the certificate will not change by itself)
};

// Describes a TLS failure from libcurl's `curl_code` and its error text `detail`, or nothing
// when the failure is not about TLS. `trust` says which CAs were trusted; `has_client_cert`
// whether a client certificate was presented; the fixes name the settings by `names` (the
// caller's: TlsClient::names). Never suggests skipping verification. Pure.
std::optional<TlsFailure> describe_tls_failure(int curl_code, std::string_view detail,
                                               const Trust& trust, bool has_client_cert,
                                               const TlsSettingNames& names);

} // namespace hookctl::http
