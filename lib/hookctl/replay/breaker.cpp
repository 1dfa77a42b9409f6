#include <algorithm>
#include <array>
#include <utility>

#include <hookctl/replay/breaker.hpp>

namespace hookctl::replay {
namespace {

// What an operator checks first for each systemic reason.
std::string_view hint(std::string_view reason) {
    if (reason == "http_401" || reason == "http_403") {
        return "check the secret (--secret-env/--secret-file/--keyring) and --scheme";
    }
    if (reason == "http_404" || reason == "http_405" || reason == "http_410") {
        return "check the URL (--to or the target's url)";
    }
    if (reason == "tls_error") {
        return "check the target's certificate (or trust its CA)";
    }
    if (reason == "resolve_error") {
        return "check the host name in the URL and DNS";
    }
    return "check the target";
}

} // namespace

bool is_systemic_reason(std::string_view reason) {
    static constexpr std::array<std::string_view, 7> k_systemic{
        "http_401", "http_403", "http_404", "http_405", "http_410", "tls_error", "resolve_error"};
    return std::find(k_systemic.begin(), k_systemic.end(), reason) != k_systemic.end();
}

Breaker::Breaker(BreakerOptions options, std::int64_t to_send)
    : m_options(std::move(options))
    , m_to_send(to_send) {}

std::int64_t Breaker::threshold() const {
    std::int64_t n = m_options.systemic_failures;
    if (!m_any_delivered) {
        n = std::min<std::int64_t>({n, 3, std::max<std::int64_t>(1, m_to_send)});
    }
    return n;
}

void Breaker::break_streak() {
    if (tripped() && m_systemic) {
        return; // the held events stay pending: answers still in flight change nothing
    }
    if (m_streak > 0) {
        m_release = true; // the events held for it were per-event failures after all
    }
    m_streak = 0;
    m_streak_reason.clear();
}

void Breaker::trip(std::string reason, bool systemic) {
    if (!tripped()) {
        m_reason = std::move(reason);
        m_systemic = systemic;
    }
}

void Breaker::record_attempt(bool delivered, std::string_view reason, bool permanent, Time now) {
    m_window.emplace_back(now, !delivered);
    while (!m_window.empty() && m_window.front().first < now - std::chrono::seconds(10)) {
        m_window.pop_front();
    }
    if (delivered) {
        m_any_delivered = true;
        break_streak();
    } else if (m_options.systemic_failures > 0 && is_systemic_reason(reason)) {
        if (reason != m_streak_reason) {
            break_streak();
            m_streak_reason = std::string(reason);
        }
        m_streak += 1;
        if (m_streak >= threshold()) {
            trip("the target answered " + m_streak_reason + " to " + std::to_string(m_streak) +
                     " attempts in a row" +
                     (m_any_delivered ? "" : ", and to every attempt so far") +
                     ": a systemic failure, not one of the events; " +
                     std::string(hint(m_streak_reason)) +
                     ". The events it touched were not dead-lettered",
                 true);
        }
    } else if (permanent) {
        break_streak();
    }
    if (m_options.max_error_rate && m_window.size() >= 20) {
        auto bad =
            std::count_if(m_window.begin(), m_window.end(), [](const auto& w) { return w.second; });
        double share = static_cast<double>(bad) / static_cast<double>(m_window.size());
        if (share > *m_options.max_error_rate) {
            trip(std::to_string(static_cast<int>(share * 100)) +
                     "% of the attempts of the last 10 s failed (--max-error-rate " +
                     std::to_string(static_cast<int>(*m_options.max_error_rate * 100)) + "%)",
                 false);
        }
    }
}

bool Breaker::hold(std::string_view reason) const {
    return m_options.systemic_failures > 0 && !m_streak_reason.empty() && reason == m_streak_reason;
}

bool Breaker::release_held() {
    return std::exchange(m_release, false);
}

void Breaker::record_dead() {
    m_dead += 1;
    if (m_options.max_failures && m_dead >= *m_options.max_failures) {
        trip(std::to_string(m_dead) + " events dead-lettered (--max-failures " +
                 std::to_string(*m_options.max_failures) + ")",
             false);
    }
}

void Breaker::judge_end(std::int64_t held) {
    if (held <= 0) {
        return;
    }
    if (m_any_delivered) {
        break_streak();
        return;
    }
    trip("the target answered " + m_streak_reason + " to every attempt (" +
             std::to_string(m_streak) +
             " in a row) and delivered nothing: possibly a systemic "
             "failure; " +
             std::string(hint(m_streak_reason)) + ". The events it touched were not dead-lettered",
         true);
}

} // namespace hookctl::replay
