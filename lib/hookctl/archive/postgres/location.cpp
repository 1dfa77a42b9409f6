#include <algorithm>
#include <array>
#include <cctype>

#include <hookctl/archive/postgres/location.hpp>

namespace hookctl::archive::postgres {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::ranges::transform(out, out.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// `%xx` decoded (a parameter name may be percent-encoded too).
std::string percent_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() &&
            std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

struct Parts {
    std::string_view scheme;   // `postgres://`
    std::string_view userinfo; // before the last `@` of the authority, may be empty
    bool has_userinfo = false;
    std::string_view rest;  // host[:port][/db] after the userinfo
    std::string_view query; // after `?`, without it
    bool has_query = false;
};

Parts split(std::string_view uri) {
    Parts p;
    auto scheme_end = uri.find("://");
    p.scheme = uri.substr(0, scheme_end + 3);
    std::string_view tail = uri.substr(scheme_end + 3);
    if (auto q = tail.find('?'); q != std::string_view::npos) {
        p.query = tail.substr(q + 1);
        p.has_query = true;
        tail = tail.substr(0, q);
    }
    // The authority ends at the first `/`; its userinfo at its last `@`.
    auto slash = tail.find('/');
    std::string_view authority = tail.substr(0, slash);
    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
        p.userinfo = authority.substr(0, at);
        p.has_userinfo = true;
        tail = tail.substr(at + 1);
    }
    p.rest = tail;
    return p;
}

// libpq's URI parameters that hold no secret and say where the archive is or how to reach it.
constexpr std::array<std::string_view, 18> k_shown_params{"host",
                                                          "hostaddr",
                                                          "port",
                                                          "dbname",
                                                          "user",
                                                          "options",
                                                          "application_name",
                                                          "connect_timeout",
                                                          "sslmode",
                                                          "sslrootcert",
                                                          "sslcert",
                                                          "sslkey",
                                                          "sslcrl",
                                                          "target_session_attrs",
                                                          "service",
                                                          "keepalives",
                                                          "gssencmode",
                                                          "channel_binding"};

template <class F> void for_each_param(std::string_view query, F&& visit) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        auto eq = pair.find('=');
        visit(pair.substr(0, eq),
              eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        if (amp == std::string_view::npos) {
            break;
        }
        query = query.substr(amp + 1);
    }
}

} // namespace

bool is_uri(std::string_view where) {
    return where.starts_with("postgres://") || where.starts_with("postgresql://");
}

Result<void> check_uri(std::string_view uri) {
    auto parts = split(uri);
    bool password = parts.has_userinfo && parts.userinfo.find(':') != std::string_view::npos;
    for_each_param(parts.query, [&](std::string_view name, std::string_view) {
        auto key = lower(percent_decode(name));
        password = password || key == "password" || key == "sslpassword";
    });
    if (password) {
        return fail(ExitCode::usage,
                    "archive: the postgres:// URI carries a password, which would show in process "
                    "lists, shell history and the runs the archive records; remove it from the "
                    "URI and give it through PGPASSWORD, ~/.pgpass or a libpq service file "
                    "(PGSERVICEFILE) instead");
    }
    return {};
}

std::string display_uri(std::string_view uri) {
    auto parts = split(uri);
    std::string out(parts.scheme);
    if (parts.has_userinfo) {
        out += parts.userinfo.substr(0, parts.userinfo.find(':'));
        out += '@';
    }
    out += parts.rest;
    if (parts.has_query) {
        std::string query;
        for_each_param(parts.query, [&](std::string_view name, std::string_view value) {
            auto key = lower(percent_decode(name));
            if (key == "password" || key == "sslpassword") {
                return;
            }
            bool shown = std::ranges::find(k_shown_params, key) != k_shown_params.end();
            query += (query.empty() ? "" : "&") + std::string(name) + "=" +
                     (shown ? std::string(value) : std::string("..."));
        });
        if (!query.empty()) {
            out += "?" + query;
        }
    }
    return out;
}

ReconnectPacer::ReconnectPacer(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : m_initial(initial)
    , m_max(std::max(max, initial))
    , m_delay(initial) {}

bool ReconnectPacer::may_try(Clock::time_point now) const {
    return now >= m_not_before;
}

void ReconnectPacer::failed(Clock::time_point now) {
    m_not_before = now + m_delay;
    m_delay = std::min(m_delay * 2, m_max);
}

void ReconnectPacer::succeeded() {
    m_delay = m_initial;
    m_not_before = {};
}

} // namespace hookctl::archive::postgres
