// The libcurl transport of the probe battery, over http::Client.
#include <memory>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include <hookctl/http/client.hpp>
#include <hookctl/probe/probe.hpp>

namespace hookctl::probe {
namespace {

struct EasyDeleter {
    void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};

// Where the handshake of offer_legacy_tls() on this thread writes the version it agreed.
thread_local std::string* t_agreed_version = nullptr;

void on_tls_info(const SSL* ssl, int where, int) {
    if ((where & SSL_CB_HANDSHAKE_DONE) != 0 && t_agreed_version != nullptr) {
        *t_agreed_version = SSL_get_version(ssl);
    }
}

// CURLOPT_SSL_CTX_FUNCTION: watch the handshake of the context libcurl made for it.
CURLcode watch_handshake(CURL*, void* ssl_ctx, void*) {
    SSL_CTX_set_info_callback(static_cast<SSL_CTX*>(ssl_ctx), on_tls_info);
    return CURLE_OK;
}

bool contains(std::string_view text, std::string_view word) {
    return text.find(word) != std::string_view::npos;
}

// A client with `base`'s TLS settings and `timeout`, kept while the timeout stays the same (it
// does for a whole battery), so keep-alive connections are reused across checks.
class ClientSlot {
public:
    Result<http::Client*> get(const http::ClientOptions& base, std::chrono::milliseconds timeout) {
        if (!m_client || timeout != m_timeout) {
            http::ClientOptions options = base;
            options.total_timeout = timeout;
            options.connect_timeout = std::min(timeout, std::chrono::milliseconds(10'000));
            options.max_connections = 2;
            auto client = http::Client::create(options);
            HOOKCTL_RETURN_IF_ERROR(client);
            m_client.emplace(std::move(*client));
            m_timeout = timeout;
        }
        return &*m_client;
    }

private:
    std::optional<http::Client> m_client;
    std::chrono::milliseconds m_timeout{};
};

Exchange exchange(ClientSlot& slot, const http::ClientOptions& base, const std::string& url,
                  const util::HeaderList& headers, const std::string& body,
                  std::chrono::milliseconds timeout) {
    Exchange out;
    auto client = slot.get(base, timeout);
    if (!client) {
        out.error = client.error().message;
        return out;
    }
    http::Request request;
    request.url = url;
    request.headers = headers;
    request.body = body;
    auto response = (*client)->perform(std::move(request));
    if (!response) {
        out.error = response.error().message;
        return out;
    }
    out.status = response->status;
    out.body = std::move(response->body);
    out.latency = response->latency;
    out.error = response->transport_error;
    out.timed_out = response->timed_out;
    out.unreachable = response->curl_code == CURLE_COULDNT_CONNECT ||
                      response->curl_code == CURLE_COULDNT_RESOLVE_HOST;
    out.tls_failed = response->tls_failed;
    return out;
}

class HttpTransport final : public Transport {
public:
    explicit HttpTransport(http::ClientOptions options)
        : m_options(std::move(options)) {
        m_anonymous = m_options;
        m_anonymous.tls.client_cert.reset();
    }

    Exchange post(const std::string& url, const util::HeaderList& headers, const std::string& body,
                  std::chrono::milliseconds timeout) override {
        return exchange(m_client, m_options, url, headers, body, timeout);
    }

    Exchange post_without_client_cert(const std::string& url, const util::HeaderList& headers,
                                      const std::string& body,
                                      std::chrono::milliseconds timeout) override {
        return exchange(m_anonymous_client, m_anonymous, url, headers, body, timeout);
    }

    LegacyTls offer_legacy_tls(const std::string& url, std::chrono::milliseconds timeout) override {
        LegacyTls out;
        std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
        if (!easy) {
            out.detail = "libcurl is out of memory";
            return out;
        }
        char error[CURL_ERROR_SIZE] = {};
        CURL* e = easy.get();
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L); // the handshake, no request
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
        curl_easy_setopt(e, CURLOPT_SSLVERSION,
                         static_cast<long>(CURL_SSLVERSION_TLSv1_0) |
                             static_cast<long>(CURL_SSLVERSION_MAX_TLSv1_1));
        // Offer every old cipher: the question is only whether the endpoint still speaks them.
        curl_easy_setopt(e, CURLOPT_SSL_CIPHER_LIST, "ALL:@SECLEVEL=0");
        // Which certificate it shows does not matter here (and valid ones are checked by
        // every other request): only the protocol version is tested.
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        // The version agreed is read from OpenSSL when the handshake completes (libcurl does
        // not report it, and drops its SSL pointer once a connect-only transfer returns).
        std::string version;
        t_agreed_version = &version;
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, &watch_handshake);
        CURLcode code = curl_easy_perform(e);
        t_agreed_version = nullptr;
        std::string detail = error[0] != '\0' ? error : curl_easy_strerror(code);
        if (code == CURLE_OK) {
            out.outcome = LegacyTls::Outcome::accepted;
            out.version = version.empty() ? "TLS 1.0 or 1.1" : version;
            return out;
        }
        out.detail = detail;
        if (code == CURLE_SSL_CONNECT_ERROR && (contains(detail, "alert protocol version") ||
                                                contains(detail, "unsupported protocol") ||
                                                contains(detail, "alert handshake failure") ||
                                                contains(detail, "wrong version number"))) {
            // Our offer went out and the endpoint refused it.
            out.outcome = LegacyTls::Outcome::refused;
            out.detail = "the handshake offering TLS 1.0/1.1 was refused (" + detail + ")";
            return out;
        }
        out.outcome = LegacyTls::Outcome::not_offered;
        return out;
    }

private:
    http::ClientOptions m_options;
    http::ClientOptions m_anonymous;
    ClientSlot m_client;
    ClientSlot m_anonymous_client;
};

} // namespace

Result<std::unique_ptr<Transport>> make_http_transport(const http::ClientOptions& client) {
    return std::make_unique<HttpTransport>(client);
}

} // namespace hookctl::probe
