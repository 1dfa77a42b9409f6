#pragma once

#include <arpa/inet.h>
#include <atomic>
#include <deque>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

namespace hookctl::testing {

// A loopback TCP socket bound to a free port; listening (the kernel completes handshakes, no
// one answers) or closed again (connections are refused). Returns the fd (-1 when closed).
struct LoopbackPort {
    int fd = -1;
    int port = 0;
    explicit LoopbackPort(bool listening) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port = ntohs(addr.sin_port);
        if (listening) {
            REQUIRE(::listen(fd, 64) == 0);
        } else {
            ::close(fd);
            fd = -1;
        }
    }
    LoopbackPort(const LoopbackPort&) = delete;
    LoopbackPort& operator=(const LoopbackPort&) = delete;
    ~LoopbackPort() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/hook"; }
};

// A minimal HTTP/1.1 server on a LoopbackPort: it answers each request with the next of the
// answers it was given (`answer(503)`, then...), and 200 with the body "ok" once they are used
// up, on a kept-alive connection; it records each request's method, head, whether it carried a
// Content-Length, and its body. Enough to see what libcurl put on the wire.
class RecordingServer {
public:
    struct Seen {
        std::string method;
        std::string head; // the request line and headers, each line ending in CRLF
        bool has_length = false;
        std::string body;

        // The value of header `name` (as sent, first one), or "" when absent.
        std::string header(std::string_view name) const {
            std::string key = "\r\n" + std::string(name) + ": ";
            auto at = head.find(key);
            if (at == std::string::npos) {
                return {};
            }
            at += key.size();
            return head.substr(at, head.find("\r\n", at) - at);
        }
    };

    RecordingServer()
        : m_port(true)
        , m_thread([this] { serve(); }) {}
    RecordingServer(const RecordingServer&) = delete;
    RecordingServer& operator=(const RecordingServer&) = delete;
    ~RecordingServer() {
        m_stop = true;
        m_thread.join();
    }

    // Queues one answer: `status` with `body` and `extra` header lines (each ending in CRLF).
    void answer(int status, std::string body = "", std::string extra = "") {
        std::lock_guard lock(m_mutex);
        m_answers.push_back("HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body);
    }

    std::string url() const { return m_port.url(); }
    std::vector<Seen> seen() {
        std::lock_guard lock(m_mutex);
        return m_seen;
    }
    int connections() const { return m_connections; }

private:
    // Waits until `fd` is readable or the server stops; false when it stops.
    bool readable(int fd) {
        while (!m_stop) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 20) > 0) {
                return true;
            }
        }
        return false;
    }

    void serve() {
        while (readable(m_port.fd)) {
            int conn = ::accept4(m_port.fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn < 0) {
                continue;
            }
            m_connections += 1;
            talk(conn);
            ::close(conn);
        }
    }

    // Appends what `conn` has to `buffer`; false when the peer closed or the server stops.
    bool read_more(int conn, std::string& buffer) {
        if (!readable(conn)) {
            return false;
        }
        char chunk[4096];
        ssize_t n = ::read(conn, chunk, sizeof chunk);
        if (n <= 0) {
            return false;
        }
        buffer.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    void talk(int conn) {
        std::string buffer;
        while (true) {
            std::size_t head_end;
            while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
                if (!read_more(conn, buffer)) {
                    return;
                }
            }
            Seen seen;
            seen.head = buffer.substr(0, head_end + 2);
            seen.method = seen.head.substr(0, seen.head.find(' '));
            std::size_t length = 0;
            if (auto at = seen.head.find("\r\nContent-Length: "); at != std::string::npos) {
                seen.has_length = true;
                length = std::stoul(seen.head.substr(at + 18));
            }
            buffer.erase(0, head_end + 4);
            while (buffer.size() < length) {
                if (!read_more(conn, buffer)) {
                    return;
                }
            }
            seen.body = buffer.substr(0, length);
            buffer.erase(0, length);
            std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
            if (seen.method != "HEAD") {
                answer += "ok";
            }
            {
                std::lock_guard lock(m_mutex);
                m_seen.push_back(seen);
                if (!m_answers.empty()) {
                    answer = std::move(m_answers.front());
                    m_answers.pop_front();
                }
            }
            if (::write(conn, answer.data(), answer.size()) !=
                static_cast<ssize_t>(answer.size())) {
                return;
            }
        }
    }

    LoopbackPort m_port;
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_connections{0};
    std::mutex m_mutex;
    std::vector<Seen> m_seen;
    std::deque<std::string> m_answers;
    std::thread m_thread;
};

} // namespace hookctl::testing
