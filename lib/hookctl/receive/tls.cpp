#include <arpa/inet.h>
#include <fnmatch.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <hookctl/receive/tls.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/openssl_ptr.hpp>

namespace hookctl::receive {
namespace {

using util::BioPtr;

// OpenSSL's queued errors as one line, clearing the queue.
std::string openssl_errors() {
    std::string out;
    while (unsigned long code = ERR_get_error()) {
        const char* reason = ERR_reason_error_string(code);
        out += (out.empty() ? "" : "; ") + std::string(reason != nullptr ? reason : "error");
    }
    return out.empty() ? "unknown error" : out;
}

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

std::string asn1_text(const ASN1_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
}

ClientIdentity identity_of(X509* cert) {
    ClientIdentity out;
    out.subject = subject_of(cert);
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (names == nullptr) {
        return out;
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
        switch (name->type) {
        case GEN_DNS:
            out.names.push_back("DNS:" + asn1_text(name->d.dNSName));
            break;
        case GEN_URI:
            out.names.push_back("URI:" + asn1_text(name->d.uniformResourceIdentifier));
            break;
        case GEN_EMAIL:
            out.names.push_back("email:" + asn1_text(name->d.rfc822Name));
            break;
        case GEN_IPADD: {
            const ASN1_OCTET_STRING* ip = name->d.iPAddress;
            int length = ASN1_STRING_length(ip);
            char text[INET6_ADDRSTRLEN] = {};
            if ((length == 4 || length == 16) &&
                ::inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text,
                            sizeof text) != nullptr) {
                out.names.push_back(std::string("IP:") + text);
            }
            break;
        }
        default:
            break;
        }
    }
    GENERAL_NAMES_free(names);
    return out;
}

// The --tls-client-subject patterns of a context, kept in its ex_data and freed with it.
int patterns_index() {
    static const int index = SSL_CTX_get_ex_new_index(
        0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
            delete static_cast<std::vector<std::string>*>(ptr);
        });
    return index;
}

// Checks the subject patterns on the client's own certificate (depth 0) once the chain has
// verified; a mismatch fails the handshake with X509_V_ERR_APPLICATION_VERIFICATION.
int verify_client(int preverified, X509_STORE_CTX* store) {
    if (preverified != 1 || X509_STORE_CTX_get_error_depth(store) != 0) {
        return preverified;
    }
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (ssl == nullptr) {
        return preverified;
    }
    auto* patterns = static_cast<const std::vector<std::string>*>(
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), patterns_index()));
    if (patterns == nullptr || patterns->empty()) {
        return preverified;
    }
    X509* cert = X509_STORE_CTX_get_current_cert(store);
    if (cert != nullptr && subject_allowed(*patterns, identity_of(cert))) {
        return 1;
    }
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

Result<std::shared_ptr<SSL_CTX>> build_context(const TlsServerOptions& o) {
    ERR_clear_error();
    std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), util::SslCtxFree{});
    if (!ctx) {
        return fail(ExitCode::environment, "cannot create a TLS context: " + openssl_errors());
    }
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_options(c, SSL_OP_ALL | SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
                               SSL_OP_NO_TLSv1_1 | SSL_OP_SINGLE_DH_USE);
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(c, o.cert_file.c_str()) != 1) {
        return fail(ExitCode::usage, "--tls-cert " + o.cert_file +
                                         ": cannot load a PEM certificate chain (" +
                                         openssl_errors() + "); give a readable PEM file");
    }
    const std::string mismatch =
        "--tls-key " + o.key_file + " does not match the certificate in --tls-cert " + o.cert_file;
    if (SSL_CTX_use_PrivateKey_file(c, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        std::string why = openssl_errors();
        if (why.find("key values mismatch") != std::string::npos) {
            return fail(ExitCode::usage, mismatch);
        }
        return fail(ExitCode::usage, "--tls-key " + o.key_file +
                                         ": cannot load a PEM private key (" + why +
                                         "); give a readable, unencrypted PEM key");
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        ERR_clear_error();
        return fail(ExitCode::usage, mismatch);
    }
    if (!o.client_ca_file.empty()) {
        const std::string what = "--tls-client-ca " + o.client_ca_file;
        if (SSL_CTX_load_verify_locations(c, o.client_ca_file.c_str(), nullptr) != 1) {
            return fail(ExitCode::usage, what + ": cannot load CA certificates (" +
                                             openssl_errors() +
                                             "); give the PEM certificate(s) of the CA that "
                                             "issues the client certificates");
        }
        // The CA names sent in the CertificateRequest, so clients pick the right certificate.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str());
        if (names == nullptr || sk_X509_NAME_num(names) == 0) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return fail(ExitCode::usage,
                        what + ": no PEM certificate in it (" + openssl_errors() + ")");
        }
        SSL_CTX_set_client_CA_list(c, names);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_client);
        // Resumed sessions keep their verified client (OpenSSL requires an id context then).
        static const unsigned char k_context[] = "hookctl-listen";
        SSL_CTX_set_session_id_context(c, k_context, sizeof k_context - 1);
        if (!o.client_subjects.empty()) {
            SSL_CTX_set_ex_data(c, patterns_index(),
                                new std::vector<std::string>(o.client_subjects));
        }
    }
    ERR_clear_error();
    return ctx;
}

} // namespace

std::string ClientIdentity::text() const {
    if (!subject.empty() || names.empty()) {
        return subject;
    }
    return names.front();
}

bool subject_allowed(const std::vector<std::string>& patterns, const ClientIdentity& identity) {
    if (patterns.empty()) {
        return true;
    }
    for (const auto& pattern : patterns) {
        if (::fnmatch(pattern.c_str(), identity.subject.c_str(), 0) == 0) {
            return true;
        }
        for (const auto& name : identity.names) {
            if (::fnmatch(pattern.c_str(), name.c_str(), 0) == 0) {
                return true;
            }
        }
    }
    return false;
}

std::string_view handshake_refusal(SSL* ssl, unsigned long error, std::string& detail) {
    long verify = SSL_get_verify_result(ssl);
    if (verify == X509_V_ERR_APPLICATION_VERIFICATION) {
        X509* cert = SSL_get0_peer_certificate(ssl);
        detail = "client certificate " + (cert ? identity_of(cert).text() : std::string("?")) +
                 " matches no --tls-client-subject";
        return "tls_client_subject";
    }
    if (verify != X509_V_OK) {
        detail = std::string("client certificate not accepted: ") +
                 X509_verify_cert_error_string(verify);
        return "tls_untrusted_client";
    }
    if (ERR_GET_LIB(error) == ERR_LIB_SSL &&
        ERR_GET_REASON(error) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        detail = "the client presented no certificate (--tls-client-ca requires one)";
        return "tls_no_client_cert";
    }
    return {};
}

ClientIdentity peer_identity(SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    return cert != nullptr ? identity_of(cert) : ClientIdentity{};
}

TlsServer::TlsServer(TlsServerOptions options, std::shared_ptr<SSL_CTX> context)
    : m_options(std::move(options))
    , m_current(std::move(context)) {}

Result<std::unique_ptr<TlsServer>> TlsServer::create(TlsServerOptions options) {
    if (options.cert_file.empty() || options.key_file.empty()) {
        return fail(ExitCode::usage, "TLS needs both --tls-cert FILE and --tls-key FILE");
    }
    auto ctx = build_context(options);
    HOOKCTL_RETURN_IF_ERROR(ctx);
    return std::unique_ptr<TlsServer>(new TlsServer(std::move(options), std::move(*ctx)));
}

std::shared_ptr<SSL_CTX> TlsServer::current() const {
    return m_current.load();
}

Result<void> TlsServer::reload() {
    std::lock_guard lock(m_reload_mutex);
    auto ctx = build_context(m_options);
    HOOKCTL_RETURN_IF_ERROR(ctx);
    m_current.store(std::move(*ctx));
    return {};
}

void TlsServer::reload_and_report(std::string_view cause,
                                  const std::function<void(std::string_view, bool)>& notice) {
    auto reloaded = reload();
    if (!notice) {
        return;
    }
    std::string head(cause);
    if (reloaded) {
        notice(head + ": TLS certificates reloaded (new connections use them)", false);
    } else {
        notice(head + ": TLS certificates not reloaded, keeping the current ones: " +
                   reloaded.error().message,
               true);
    }
}

std::vector<std::string> TlsServer::files() const {
    std::vector<std::string> out = {m_options.cert_file, m_options.key_file};
    if (!m_options.client_ca_file.empty()) {
        out.push_back(m_options.client_ca_file);
    }
    return out;
}

} // namespace hookctl::receive
