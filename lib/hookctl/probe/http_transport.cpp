// The libcurl transport of the probe battery, over http::Client.
#include <curl/curl.h>

#include <hookctl/http/client.hpp>
#include <hookctl/probe/probe.hpp>

namespace hookctl::probe {
namespace {

class HttpTransport final : public Transport {
public:
    explicit HttpTransport(bool insecure)
        : m_insecure(insecure) {}

    Exchange post(const std::string& url, const util::HeaderList& headers, const std::string& body,
                  std::chrono::milliseconds timeout) override {
        Exchange out;
        // A client per timeout: the timeout is a client option; keep-alive is kept while the
        // timeout stays the same (it does for a whole battery).
        if (!m_client || timeout != m_timeout) {
            http::ClientOptions options;
            options.insecure = m_insecure;
            options.total_timeout = timeout;
            options.connect_timeout = std::min(timeout, std::chrono::milliseconds(10'000));
            options.max_connections = 2;
            auto client = http::Client::create(options);
            if (!client) {
                out.error = client.error().message;
                return out;
            }
            m_client.emplace(std::move(*client));
            m_timeout = timeout;
        }
        http::Request request;
        request.url = url;
        request.headers = headers;
        request.body = body;
        auto response = m_client->perform(std::move(request));
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
        return out;
    }

private:
    bool m_insecure;
    std::optional<http::Client> m_client;
    std::chrono::milliseconds m_timeout{};
};

} // namespace

Result<std::unique_ptr<Transport>> make_http_transport(bool insecure) {
    return std::make_unique<HttpTransport>(insecure);
}

} // namespace hookctl::probe
