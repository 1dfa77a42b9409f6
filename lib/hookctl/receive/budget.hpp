#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace hookctl::receive {

// How many body bytes `listen` may hold for requests whose signature is not checked yet
// (`--max-buffered`). A request asks for its body's size before the body is read (the
// Content-Length, or step by step for a chunked body); when the bytes do not fit it is answered
// 503 with Retry-After and its body is never read, so memory stays bounded whatever the peers
// send. The bytes go back once the signature has been checked (pass or fail).
//
// One rule keeps ordinary events flowing while large bodies wait: a request holding more than
// `k_small_body` bytes is "large", and large requests together may hold at most
// `large_share()` (three quarters of the limit); the last quarter is kept for small bodies.
//
// Decisions only: no clock, no sockets. Thread-safe.
class BodyBudget {
public:
    static constexpr std::size_t k_small_body = 1024 * 1024;

    explicit BodyBudget(std::size_t limit);

    BodyBudget(const BodyBudget&) = delete;
    BodyBudget& operator=(const BodyBudget&) = delete;

    // Grows one request's holding from `held` to `wanted` bytes (`wanted` > `held`); false, and
    // nothing changes, when that would pass the limit or the large requests' share.
    bool grow(std::size_t held, std::size_t wanted);
    // Gives back all `held` bytes of one request.
    void release(std::size_t held);

    std::size_t limit() const { return m_limit; }
    std::size_t large_share() const { return m_limit - m_limit / 4; }
    std::size_t in_use() const;
    // Requests refused so far (a failed grow).
    std::uint64_t refused() const;

    // The largest --max-body a budget of `limit` can serve: a body that could never fit would be
    // refused forever.
    static std::size_t largest_body(std::size_t limit);

private:
    const std::size_t m_limit;
    mutable std::mutex m_mutex;
    std::size_t m_total = 0; // every request's bytes
    std::size_t m_large = 0; // the bytes of requests holding more than k_small_body
    std::uint64_t m_refused = 0;
};

// One request's share of a BodyBudget; gives it back when destroyed. Move-only. A
// default-constructed reservation belongs to no budget: it holds nothing and never refuses.
class BodyReservation {
public:
    BodyReservation() = default;
    explicit BodyReservation(BodyBudget& budget)
        : m_budget(&budget) {}
    BodyReservation(BodyReservation&& other) noexcept;
    BodyReservation& operator=(BodyReservation&& other) noexcept;
    BodyReservation(const BodyReservation&) = delete;
    BodyReservation& operator=(const BodyReservation&) = delete;
    ~BodyReservation() { release(); }

    // Holds at least `bytes` (never shrinks); false when the budget refuses (nothing changes).
    bool hold(std::size_t bytes);
    void release();
    std::size_t held() const { return m_held; }

private:
    BodyBudget* m_budget = nullptr;
    std::size_t m_held = 0;
};

} // namespace hookctl::receive
