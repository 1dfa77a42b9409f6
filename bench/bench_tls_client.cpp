// The client of bench/tls.sh: drives `hookctl listen` over TLS with or without a client
// certificate, the same code for both, so the difference is the server's.
//   handshake  N fresh connections one after another: TCP connect, a full TLS handshake (no
//              session resumption), one GET /healthz, close. Times each connection.
//   post       CONNS keep-alive connections (one thread each) send N signed webhooks in all
//              (2 KiB JSON bodies, a new event id each, mailparse with $BENCH_SECRET).
//   get        as post, with GET /healthz (the transport alone: no verification, no archive).
// Prints one JSON object: mode, count, seconds, rate_per_s, us_median, us_p90 (per connection
// for handshake, per request otherwise).
// Usage: bench_tls_client HOST PORT PATH CAFILE MODE N [CONNS] [CERT KEY]
#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <hookctl/sig/sign.hpp>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "bench_tls_client: %s\n", what.c_str());
    ERR_print_errors_fp(stderr);
    std::exit(1);
}

struct Target {
    std::string host;
    int port = 0;
    std::string path;
};

int connect_tcp(const Target& t) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(t.port));
    if (fd < 0 || ::inet_pton(AF_INET, t.host.c_str(), &addr.sin_addr) != 1) {
        die("bad host " + t.host);
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        die("cannot connect to " + t.host + ":" + std::to_string(t.port));
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

struct Connection {
    SSL* ssl = nullptr;
    int fd = -1;
    std::string buffer;

    Connection(SSL_CTX* ctx, const Target& t) {
        fd = connect_tcp(t);
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t.host.c_str());
        if (SSL_connect(ssl) != 1) {
            die("TLS handshake failed");
        }
    }
    ~Connection() {
        SSL_shutdown(ssl);
        SSL_free(ssl);
        ::close(fd);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void write_all(const std::string& data) {
        if (SSL_write(ssl, data.data(), static_cast<int>(data.size())) !=
            static_cast<int>(data.size())) {
            die("write failed");
        }
    }

    // Reads one response; returns its status.
    int read_response() {
        std::size_t end = std::string::npos;
        char chunk[16384];
        while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
            int n = SSL_read(ssl, chunk, sizeof chunk);
            if (n <= 0) {
                die("connection closed before a response");
            }
            buffer.append(chunk, static_cast<std::size_t>(n));
        }
        std::size_t length = 0;
        auto at = buffer.find("Content-Length: ");
        if (at != std::string::npos && at < end) {
            length = std::strtoul(buffer.c_str() + at + 16, nullptr, 10);
        }
        while (buffer.size() < end + 4 + length) {
            int n = SSL_read(ssl, chunk, sizeof chunk);
            if (n <= 0) {
                die("connection closed in a response body");
            }
            buffer.append(chunk, static_cast<std::size_t>(n));
        }
        int status = std::atoi(buffer.c_str() + 9);
        buffer.erase(0, end + 4 + length);
        return status;
    }
};

std::string get_request(const Target& t) {
    return "GET /healthz HTTP/1.1\r\nHost: " + t.host + "\r\n\r\n";
}

std::string post_request(const Target& t, const std::string& event_id,
                         const std::vector<hookctl::keys::Key>& keys) {
    std::string body = R"({"event_id":")" + event_id + R"(","org_id":"org_bench","pad":")";
    body.append(2048 - 80, 'x');
    body += "\"}";
    hookctl::util::MemorySource source(body);
    auto s =
        hookctl::sig::sign({hookctl::sig::Scheme::mailparse, std::time(nullptr), ""}, keys, source);
    if (!s) {
        die(s.error().message);
    }
    std::string out =
        "POST " + t.path + " HTTP/1.1\r\nHost: " + t.host +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n";
    for (const auto& [name, value] : s->headers.entries()) {
        out += name + ": " + value + "\r\n";
    }
    return out + "\r\n" + body;
}

double micros(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 7) {
        die("usage: bench_tls_client HOST PORT PATH CAFILE MODE N [CONNS] [CERT KEY]");
    }
    Target target{argv[1], std::atoi(argv[2]), argv[3]};
    std::string mode = argv[5];
    int count = std::atoi(argv[6]);
    int conns = argc > 7 ? std::atoi(argv[7]) : 1;
    if (count <= 0 || conns <= 0 || (mode != "handshake" && mode != "post" && mode != "get")) {
        die("MODE is handshake, post or get; N and CONNS are positive");
    }

    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); // every handshake a full one
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx, argv[4], nullptr) != 1) {
        die(std::string("cannot load CA file ") + argv[4]);
    }
    if (argc > 9) {
        if (SSL_CTX_use_certificate_chain_file(ctx, argv[8]) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, argv[9], SSL_FILETYPE_PEM) != 1) {
            die("cannot load the client certificate");
        }
    }

    const char* secret = std::getenv("BENCH_SECRET");
    std::vector<hookctl::keys::Key> keys;
    if (mode == "post") {
        if (secret == nullptr) {
            die("set BENCH_SECRET");
        }
        hookctl::keys::SecretText text{hookctl::keys::SecretBytes(secret), "BENCH_SECRET"};
        auto key = hookctl::keys::decode_key(text, hookctl::keys::SecretEncoding::raw);
        if (!key) {
            die(key.error().message);
        }
        keys.push_back(*key);
    }

    std::vector<double> times;
    auto started = Clock::now();
    if (mode == "handshake") {
        std::string request = get_request(target);
        for (int i = 0; i < count; ++i) {
            auto t0 = Clock::now();
            Connection c(ctx, target);
            c.write_all(request);
            if (c.read_response() != 200) {
                die("healthz did not answer 200");
            }
            times.push_back(micros(Clock::now() - t0));
        }
    } else {
        // Requests are built before the clock starts: signing is the client's cost.
        std::string tag = std::to_string(std::time(nullptr)) + "_" + std::to_string(::getpid());
        std::vector<std::vector<std::string>> requests(static_cast<std::size_t>(conns));
        for (int i = 0; i < count; ++i) {
            auto& mine = requests[static_cast<std::size_t>(i % conns)];
            mine.push_back(
                mode == "get"
                    ? get_request(target)
                    : post_request(target, "bench_tls_" + tag + "_" + std::to_string(i), keys));
        }
        std::vector<std::vector<double>> per_thread(static_cast<std::size_t>(conns));
        std::vector<std::unique_ptr<Connection>> open;
        for (int c = 0; c < conns; ++c) {
            open.push_back(std::make_unique<Connection>(ctx, target)); // handshakes: not timed
        }
        started = Clock::now();
        std::vector<std::thread> threads;
        for (int c = 0; c < conns; ++c) {
            threads.emplace_back([&, c] {
                auto& conn = *open[static_cast<std::size_t>(c)];
                for (const auto& request : requests[static_cast<std::size_t>(c)]) {
                    auto t0 = Clock::now();
                    conn.write_all(request);
                    int status = conn.read_response();
                    if (status != 202 && status != 200) {
                        die("unexpected status " + std::to_string(status));
                    }
                    per_thread[static_cast<std::size_t>(c)].push_back(micros(Clock::now() - t0));
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        for (auto& v : per_thread) {
            times.insert(times.end(), v.begin(), v.end());
        }
        auto elapsed = Clock::now() - started;
        open.clear();
        started = Clock::now() - elapsed;
    }
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::sort(times.begin(), times.end());
    auto at = [&](double q) { return times[static_cast<std::size_t>(q * (times.size() - 1))]; };
    std::printf("{\"mode\":\"%s\",\"count\":%d,\"connections\":%d,\"seconds\":%.3f,"
                "\"rate_per_s\":%.1f,\"us_median\":%.1f,\"us_p90\":%.1f}\n",
                mode.c_str(), count, conns, seconds, count / seconds, at(0.5), at(0.9));
    SSL_CTX_free(ctx);
    return 0;
}
