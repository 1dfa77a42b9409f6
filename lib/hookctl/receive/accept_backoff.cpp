#include <algorithm>

#include <hookctl/receive/accept_backoff.hpp>

namespace hookctl::receive {

AcceptBackoff::Decision AcceptBackoff::failed(Clock::time_point now) {
    ++m_total;
    ++m_unreported;
    m_wait = m_wait.count() == 0 ? k_first_wait : std::min(m_wait * 2, k_max_wait);
    Decision decision{m_wait, std::nullopt};
    if (!m_last_report || now - *m_last_report >= k_report_interval) {
        decision.report = m_unreported;
        m_unreported = 0;
        m_last_report = now;
    }
    return decision;
}

void AcceptBackoff::succeeded() {
    m_wait = std::chrono::milliseconds(0);
}

} // namespace hookctl::receive
