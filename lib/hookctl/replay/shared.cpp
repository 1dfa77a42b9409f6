#include <algorithm>
#include <cmath>
#include <vector>

#include <hookctl/replay/shared.hpp>
#include <hookctl/util/signals.hpp>

namespace hookctl::replay {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

} // namespace

SharedRun::SharedRun(SharedRunOptions options, std::unique_ptr<archive::Store> claims,
                     std::unique_ptr<archive::Store> slots, std::function<void()> wake)
    : m_options(std::move(options))
    , m_claims(std::move(claims))
    , m_slots_store(std::move(slots))
    , m_wake(std::move(wake)) {
    if (!m_options.rate.unlimited()) {
        const double per_second = *m_options.rate.per_second;
        m_interval_ns = std::max<std::int64_t>(1, std::llround(1e9 / per_second));
        m_block_count =
            std::max(1, static_cast<int>(per_second * static_cast<double>(m_options.block.count()) /
                                         1000.0));
        m_reserver = std::thread([this] {
            util::block_stop_signals(); // SIGINT reaches the sending thread
            slot_loop();
        });
    }
    m_claimer = std::thread([this] {
        util::block_stop_signals();
        claim_loop();
    });
}

SharedRun::~SharedRun() {
    stop_threads();
}

void SharedRun::stop_threads() {
    {
        std::lock_guard lock(m_mutex);
        m_cancelled = true;
    }
    m_changed.notify_all();
    if (m_claimer.joinable()) {
        m_claimer.join();
    }
    if (m_reserver.joinable()) {
        m_reserver.join();
    }
}

void SharedRun::failed(Error error) {
    if (!m_error) {
        m_error = std::move(error);
    }
    m_finished = true;
}

// --- Feed ---------------------------------------------------------------------------------------

std::optional<ReplayEvent> SharedRun::try_pop(bool skip_if_busy) {
    std::optional<ReplayEvent> out;
    {
        std::unique_lock lock(m_mutex, std::defer_lock);
        if (skip_if_busy) {
            if (!lock.try_lock()) {
                return out;
            }
        } else {
            lock.lock();
        }
        if (m_queue.empty()) {
            return out;
        }
        out = std::move(m_queue.front());
        m_queue.pop_front();
    }
    m_changed.notify_all(); // room to claim more
    return out;
}

bool SharedRun::done() const {
    std::lock_guard lock(m_mutex);
    return m_finished && m_queue.empty();
}

std::optional<Error> SharedRun::error() const {
    std::lock_guard lock(m_mutex);
    return m_error;
}

std::int64_t SharedRun::missing() const {
    std::lock_guard lock(m_mutex);
    return m_missing;
}

void SharedRun::claim_loop() {
    const auto& run = m_options.run_id;
    // A heartbeat renews the lease and notices a run stopped by another worker.
    const auto beat =
        std::clamp<milliseconds>(m_options.lease.length / 4, milliseconds(50), milliseconds(1000));
    auto next_beat = Steady::now(); // the first heartbeat registers the worker
    // A failed round trip (a deadlock the server broke, a reconnect) is tried again after a
    // pause; only failures for half a lease (the items would be lost to others) end the worker.
    std::optional<Steady::time_point> failing_since;
    std::int64_t claim_after = 0; // the last item claimed: the next claim goes on from there
    auto give_up = [&](const Error& error) {
        auto now = Steady::now();
        if (!failing_since) {
            failing_since = now;
        }
        if (now - *failing_since < m_options.lease.length / 2) {
            std::unique_lock pause(m_mutex);
            m_changed.wait_for(pause, milliseconds(100), [&] { return m_cancelled; });
            return false;
        }
        std::lock_guard held(m_mutex);
        failed(error);
        return true;
    };
    std::unique_lock lock(m_mutex);
    while (!m_cancelled) {
        lock.unlock();
        auto now = Steady::now();
        std::optional<archive::SharedRunState> seen;
        if (now >= next_beat) {
            next_beat = now + beat;
            auto renewed = m_claims->renew_leases(run, m_options.lease, "running");
            auto state = renewed
                             ? m_claims->shared_state(run, m_options.lease.token)
                             : Result<archive::SharedRunState>(std::unexpected(renewed.error()));
            if (!state) {
                next_beat = now; // renew again after the pause
                if (give_up(state.error())) {
                    lock.lock();
                    break;
                }
                lock.lock();
                continue;
            }
            failing_since.reset();
            lock.lock();
            seen = *state;
            if (state->state == archive::RunState::aborted && !m_halt) {
                m_halt = state->last_error.empty()
                             ? "another worker's circuit breaker stopped the run"
                             : state->last_error;
            }
            lock.unlock();
        }
        lock.lock();
        const bool reading = !m_finished && !m_halt;
        const bool room = m_queue.size() < m_options.max_queued / 2 + 1;
        lock.unlock();
        if (reading && room) {
            std::vector<std::pair<archive::RunItem, archive::Event>> claimed;
            auto n = m_claims->claim_items(
                run, m_options.lease, claim_after, m_options.claim_batch,
                [&](const archive::RunItem& item, const archive::Event& event) {
                    claimed.emplace_back(item, event);
                });
            if (!n) {
                if (give_up(n.error())) {
                    lock.lock();
                    break;
                }
                lock.lock();
                continue;
            }
            lock.lock();
            bool any = false;
            for (auto& [item, stored] : claimed) {
                auto event = pending_event(m_options.source, item, stored);
                if (!event) {
                    failed(event.error());
                    break;
                }
                if (!*event) {
                    m_missing += 1; // deleted since the run selected it: stays pending
                    continue;
                }
                m_queue.push_back(std::move(**event));
                any = true;
            }
            lock.unlock();
            if (any && m_wake) {
                m_wake();
            }
            if (*n > 0) {
                claim_after = claimed.back().first.item;
                lock.lock();
                continue;
            }
            if (claim_after > 0) {
                claim_after = 0; // items before it may have come back (an expired lease)
                lock.lock();
                continue;
            }
            // Nothing to claim: done when no pending item is held by anyone else, else wait
            // for news (items given back, a lease expiring, the run stopped).
            if (!seen) {
                auto state = m_claims->shared_state(run, m_options.lease.token);
                if (!state) {
                    if (give_up(state.error())) {
                        lock.lock();
                        break;
                    }
                    lock.lock();
                    continue;
                }
                seen = *state;
            }
            if (seen->items.pending - seen->mine <= 0) {
                lock.lock();
                m_finished = true;
                lock.unlock();
                if (m_wake) {
                    m_wake();
                }
                lock.lock();
                continue;
            }
            auto wait = std::min(m_options.max_idle_wait,
                                 std::chrono::duration_cast<milliseconds>(next_beat - now));
            if (seen->claimable > 0) {
                wait = std::min(wait, milliseconds(20)); // rows another worker was claiming
            } else if (seen->next_expiry_in_ms > 0) {
                wait = std::min(wait, milliseconds(seen->next_expiry_in_ms + 10));
            }
            auto news = m_claims->wait_for_news(run, std::max(milliseconds(1), wait));
            if (!news && give_up(news.error())) {
                lock.lock();
                break;
            }
            lock.lock();
            continue;
        }
        lock.lock();
        m_changed.wait_until(lock, next_beat, [&] {
            return m_cancelled ||
                   (!m_finished && !m_halt && m_queue.size() < m_options.max_queued / 2 + 1);
        });
    }
    lock.unlock();
    if (m_wake) {
        m_wake();
    }
}

// --- Crew ---------------------------------------------------------------------------------------

std::optional<Crew::Time> SharedRun::next_due() {
    if (m_interval_ns == 0) {
        return std::nullopt;
    }
    std::lock_guard lock(m_mutex);
    if (m_slots.empty()) {
        m_want_slots = true;
        m_changed.notify_all();
        return std::nullopt;
    }
    return m_slots.front();
}

std::optional<Crew::Time> SharedRun::try_take(Time now) {
    if (m_interval_ns == 0) {
        return now;
    }
    std::optional<Time> out;
    bool ask = false;
    {
        std::lock_guard lock(m_mutex);
        while (!m_slots.empty() && m_slots.front() + m_options.max_late < now) {
            m_slots.pop_front(); // missed: never sent late in a burst
        }
        if (!m_slots.empty() && m_slots.front() <= now) {
            out = m_slots.front();
            m_slots.pop_front();
        }
        if (m_slots.size() <= static_cast<std::size_t>(m_block_count / 2) && !m_want_slots) {
            m_want_slots = true;
            ask = true;
        }
    }
    if (ask) {
        m_changed.notify_all();
    }
    return out;
}

void SharedRun::pause(std::chrono::milliseconds pause) {
    {
        std::lock_guard lock(m_mutex);
        m_pause_ms = std::max<std::int64_t>(m_pause_ms, pause.count());
        const auto until = Steady::now() + pause;
        while (!m_slots.empty() && m_slots.front() < until) {
            m_slots.pop_front();
        }
    }
    m_changed.notify_all();
}

std::optional<std::string> SharedRun::halted() {
    std::lock_guard lock(m_mutex);
    return m_halt;
}

void SharedRun::slot_loop() {
    const auto& run = m_options.run_id;
    std::unique_lock lock(m_mutex);
    while (true) {
        m_changed.wait(lock, [&] {
            return m_cancelled || m_pause_ms > 0 ||
                   (m_want_slots && m_slots.size() <= static_cast<std::size_t>(m_block_count / 2));
        });
        if (m_cancelled) {
            break;
        }
        if (m_pause_ms > 0) {
            const auto pause = std::exchange(m_pause_ms, 0);
            lock.unlock();
            auto paused = m_slots_store->pause_slots(run, pause);
            lock.lock();
            if (!paused) {
                failed(paused.error());
                break;
            }
            continue;
        }
        m_want_slots = false;
        lock.unlock();
        auto block = m_slots_store->reserve_slots(run, m_block_count, m_interval_ns);
        const auto answered = Steady::now();
        lock.lock();
        if (!block) {
            failed(block.error());
            break;
        }
        const auto first = answered + std::chrono::microseconds(block->first_in_us);
        for (int k = 0; k < block->count; ++k) {
            m_slots.push_back(first + std::chrono::nanoseconds(block->interval_ns * k));
        }
        lock.unlock();
        if (m_wake) {
            m_wake();
        }
        lock.lock();
    }
    lock.unlock();
    if (m_wake) {
        m_wake();
    }
}

Result<archive::RunState> SharedRun::finish(archive::RunState state, const std::string& reason) {
    stop_threads();
    const auto& run = m_options.run_id;
    auto released = m_claims->release_leases(run, m_options.lease, archive::worker_state(state));
    HOOKCTL_RETURN_IF_ERROR(released);
    return m_claims->update_shared_run(
        run, m_options.lease, state, state == archive::RunState::completed ? std::string() : reason,
        0);
}

} // namespace hookctl::replay
