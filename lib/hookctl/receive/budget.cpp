#include <algorithm>
#include <utility>

#include <hookctl/receive/budget.hpp>

namespace hookctl::receive {

BodyBudget::BodyBudget(std::size_t limit)
    : m_limit(limit) {}

bool BodyBudget::grow(std::size_t held, std::size_t wanted) {
    if (wanted <= held) {
        return true;
    }
    std::lock_guard lock(m_mutex);
    std::size_t total = m_total - held;
    std::size_t large = m_large - (held > k_small_body ? held : 0);
    bool is_large = wanted > k_small_body;
    if (wanted > m_limit - total ||
        (is_large && wanted > large_share() - std::min(large, large_share()))) {
        ++m_refused;
        return false;
    }
    m_total = total + wanted;
    m_large = large + (is_large ? wanted : 0);
    return true;
}

void BodyBudget::release(std::size_t held) {
    if (held == 0) {
        return;
    }
    std::lock_guard lock(m_mutex);
    m_total -= held;
    if (held > k_small_body) {
        m_large -= held;
    }
}

std::size_t BodyBudget::in_use() const {
    std::lock_guard lock(m_mutex);
    return m_total;
}

std::uint64_t BodyBudget::refused() const {
    std::lock_guard lock(m_mutex);
    return m_refused;
}

std::size_t BodyBudget::largest_body(std::size_t limit) {
    return std::max(std::min(limit, k_small_body), limit - limit / 4);
}

BodyReservation::BodyReservation(BodyReservation&& other) noexcept
    : m_budget(std::exchange(other.m_budget, nullptr))
    , m_held(std::exchange(other.m_held, 0)) {}

BodyReservation& BodyReservation::operator=(BodyReservation&& other) noexcept {
    if (this != &other) {
        release();
        m_budget = std::exchange(other.m_budget, nullptr);
        m_held = std::exchange(other.m_held, 0);
    }
    return *this;
}

bool BodyReservation::hold(std::size_t bytes) {
    if (m_budget == nullptr || bytes <= m_held) {
        return true;
    }
    if (!m_budget->grow(m_held, bytes)) {
        return false;
    }
    m_held = bytes;
    return true;
}

void BodyReservation::release() {
    if (m_budget != nullptr) {
        m_budget->release(m_held);
    }
    m_held = 0;
}

} // namespace hookctl::receive
