#pragma once

// A replay's outside world on fake time, for the engine's unit tests: a sender that answers
// from a seeded fault schedule and watches what the engine does (concurrency, Retry-After
// pauses, duplicates, per-org order), a journal in memory that commits when the test lets it
// (and can lose what it has not committed, as kill -9 does), and a feed from a list.

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <curl/curl.h>

#include <hookctl/replay/engine.hpp>
#include <hookctl/util/clock.hpp>

namespace hookctl::testing {

using namespace std::chrono_literals;
using Time = util::Clock::SteadyTime;

// How the fake target answers: each attempt draws one outcome.
struct Faults {
    double fail_503 = 0;     // 503 (retryable)
    double throttle_429 = 0; // 429 with Retry-After: retry_after_s
    int retry_after_s = 1;
    double drop = 0;                  // connection reset (no HTTP answer)
    double timeout = 0;               // no answer within the request timeout
    double refuse = 0;                // connection refused
    double dead_422 = 0;              // a permanent per-event failure
    int always_status = 0;            // every answer is this status (e.g. 401), when non-zero
    std::set<std::string> reject_401; // these events are answered 401, the others normally
    std::chrono::microseconds latency_min = 200us;
    std::chrono::microseconds latency_max = 20ms;
    std::chrono::milliseconds request_timeout = 300ms;
};

class FakeTarget final : public replay::Sender {
public:
    FakeTarget(util::ManualClock& clock, Faults faults, std::uint64_t seed, int concurrency,
               bool ordered)
        : m_clock(clock)
        , m_faults(std::move(faults))
        , m_rng(seed)
        , m_concurrency(concurrency)
        , m_ordered(ordered) {}

    void start(http::Request request, Completion done) override {
        const Time now = m_clock.steady();
        std::string id(request.headers.find("Idempotency-Key").value_or(""));
        std::string org = org_of(request.body);
        if (m_flights.size() + 1 > static_cast<std::size_t>(m_concurrency)) {
            violation("more than " + std::to_string(m_concurrency) + " requests in flight");
        }
        for (const auto& [from, until] : m_pauses) {
            if (now >= from && now < until) {
                violation("sent " + id + " during a Retry-After pause");
            }
        }
        for (const auto& f : m_flights) {
            if (f.event_id == id) {
                violation("two requests in flight for " + id);
            }
            if (m_ordered && f.org == org) {
                violation("two requests in flight for org " + org);
            }
        }
        if (m_delivered_here.contains(id)) {
            violation("sent " + id + " after it was delivered");
        }
        if (m_ordered && m_first_sent.insert(id).second) {
            m_order[org].push_back(id);
        }
        ++m_sent;
        Flight f;
        f.event_id = id;
        f.org = org;
        f.done = std::move(done);
        f.response.sent_at = now;
        answer(f, now);
        if (f.response.status >= 200 && f.response.status < 300) {
            // The receiver stores it when it arrives, whether or not the answer gets back.
            ++m_received[id];
            m_delivered_here.insert(id);
        }
        m_flights.push_back(std::move(f));
    }

    Result<void> poll_until(Time deadline) override {
        ++m_polls;
        if (m_stop_flag != nullptr && m_polls >= m_stop_at) {
            m_stop_flag->store(1);
            m_stopped_at_sent = m_sent;
            m_stop_flag = nullptr;
        }
        if (m_fail_polls_from && m_polls >= *m_fail_polls_from) {
            if (m_on_fail) {
                std::exchange(m_on_fail, {})();
            }
            return fail(ExitCode::environment, "transport failed (test)");
        }
        if (m_woken) {
            m_woken = false;
            return {};
        }
        auto first = std::min_element(m_flights.begin(), m_flights.end(),
                                      [](const auto& a, const auto& b) { return a.due < b.due; });
        if (first == m_flights.end() || first->due > deadline) {
            if (deadline <= m_clock.steady()) {
                if (++m_idle_polls > 100000) {
                    violation("the engine polls without time passing (livelock)");
                    return fail(ExitCode::environment, "livelock");
                }
            } else {
                m_idle_polls = 0;
            }
            m_clock.advance_to(deadline);
            return {};
        }
        m_idle_polls = 0;
        const Time due = first->due;
        m_clock.advance_to(due);
        // Every answer due now, in the order they were sent.
        std::vector<Flight> ready;
        for (auto it = m_flights.begin(); it != m_flights.end();) {
            if (it->due <= due) {
                ready.push_back(std::move(*it));
                it = m_flights.erase(it);
            } else {
                ++it;
            }
        }
        for (auto& f : ready) {
            f.response.done_at = due;
            if (f.response.status == 429) {
                m_pauses.emplace_back(due, due + std::chrono::seconds(m_faults.retry_after_s));
            }
            f.done(std::move(f.response));
        }
        return {};
    }

    std::size_t in_flight() const override { return m_flights.size(); }
    void wakeup() override { m_woken = true; }

    // After `polls` polls, every poll fails and `dies` runs once (the process dies: what is in
    // flight is lost).
    void fail_from_poll(std::int64_t polls, std::function<void()> dies) {
        m_fail_polls_from = polls;
        m_on_fail = std::move(dies);
    }
    // At poll number `polls`, sets `flag` (a SIGINT); sent_after_stop() counts what followed.
    void stop_at_poll(std::int64_t polls, std::atomic<int>& flag) {
        m_stop_at = polls;
        m_stop_flag = &flag;
    }
    std::optional<std::int64_t> sent_at_stop() const { return m_stopped_at_sent; }
    // A new invocation (a resume) sends again what was delivered before a crash: the check
    // "never sent after it was delivered" holds within one invocation.
    void new_invocation() {
        m_delivered_here.clear();
        m_flights.clear();
        m_fail_polls_from.reset();
        m_woken = false;
    }

    const std::vector<std::string>& violations() const { return m_violations; }
    const std::map<std::string, int>& received() const { return m_received; }
    std::int64_t sent() const { return m_sent; }
    std::int64_t polls() const { return m_polls; }
    const std::map<std::string, std::vector<std::string>>& order() const { return m_order; }

private:
    struct Flight {
        std::string event_id;
        std::string org;
        Time due{};
        http::Response response;
        Completion done;
    };

    static std::string org_of(const std::string& body) {
        auto at = body.find("\"org_id\":\"");
        if (at == std::string::npos) {
            return {};
        }
        at += 10;
        return body.substr(at, body.find('"', at) - at);
    }

    void violation(std::string what) {
        if (m_violations.size() < 20) {
            m_violations.push_back(std::move(what));
        }
    }

    void answer(Flight& f, Time now) {
        std::uniform_int_distribution<std::int64_t> latency(m_faults.latency_min.count(),
                                                            m_faults.latency_max.count());
        f.due = now + std::chrono::microseconds(latency(m_rng));
        auto& r = f.response;
        if (m_faults.always_status != 0 || m_faults.reject_401.contains(f.event_id)) {
            r.status = m_faults.always_status != 0 ? m_faults.always_status : 401;
            r.body = "{\"error\":\"signature mismatch\"}";
            return;
        }
        std::uniform_real_distribution<double> draw(0, 1);
        double x = draw(m_rng);
        auto take = [&](double p) {
            if (x < p) {
                return true;
            }
            x -= p;
            return false;
        };
        if (take(m_faults.fail_503)) {
            r.status = 503;
            r.body = "busy";
        } else if (take(m_faults.throttle_429)) {
            r.status = 429;
            r.headers.add("Retry-After", std::to_string(m_faults.retry_after_s));
        } else if (take(m_faults.drop)) {
            r.curl_code = CURLE_RECV_ERROR;
            r.transport_error = "connection reset";
        } else if (take(m_faults.timeout)) {
            r.curl_code = CURLE_OPERATION_TIMEDOUT;
            r.timed_out = true;
            r.transport_error = "timed out";
            f.due = now + m_faults.request_timeout;
        } else if (take(m_faults.refuse)) {
            r.curl_code = CURLE_COULDNT_CONNECT;
            r.transport_error = "connection refused";
            f.due = now + 100us;
        } else if (take(m_faults.dead_422)) {
            r.status = 422;
            r.body = "{\"error\":\"unprocessable\"}";
        } else {
            r.status = 202;
        }
    }

    util::ManualClock& m_clock;
    Faults m_faults;
    std::mt19937_64 m_rng;
    int m_concurrency;
    bool m_ordered;
    std::vector<Flight> m_flights;
    std::vector<std::pair<Time, Time>> m_pauses;
    std::set<std::string> m_delivered_here;
    std::set<std::string> m_first_sent;
    std::map<std::string, int> m_received;
    std::map<std::string, std::vector<std::string>> m_order; // org -> first sends in order
    std::vector<std::string> m_violations;
    std::optional<std::int64_t> m_fail_polls_from;
    std::function<void()> m_on_fail;
    std::atomic<int>* m_stop_flag = nullptr;
    std::int64_t m_stop_at = 0;
    std::optional<std::int64_t> m_stopped_at_sent;
    std::int64_t m_sent = 0;
    std::int64_t m_polls = 0;
    std::int64_t m_idle_polls = 0;
    bool m_woken = false;
};

// A journal in memory: what it committed is what a crash keeps.
class MemoryJournal final : public replay::Journal {
public:
    MemoryJournal(std::uint64_t seed, double commit_chance)
        : m_rng(seed)
        , m_commit_chance(commit_chance) {}

    void add(archive::Attempt attempt) override {
        if (!m_crashed) {
            m_queue.push_back(std::move(attempt));
        }
    }
    void settle(archive::ItemVerdict verdict) override {
        if (!m_crashed) {
            m_verdicts.push_back(std::move(verdict));
        }
    }
    void update_run(const archive::RunProgress& progress, archive::RunState state) override {
        if (!m_crashed) {
            m_run_update = std::make_pair(progress, state);
        }
    }
    std::vector<std::int64_t> take_committed() override {
        if (!m_crashed && std::uniform_real_distribution<double>(0, 1)(m_rng) < m_commit_chance) {
            commit();
        }
        return std::exchange(m_committed_items, {});
    }
    std::optional<Error> error() const override { return std::nullopt; }
    Result<void> close() override {
        if (!m_crashed) {
            commit();
        }
        return {};
    }

    // kill -9: what is not committed is lost, and nothing more is written.
    void crash() {
        m_crashed = true;
        m_queue.clear();
        m_verdicts.clear();
        m_run_update.reset();
    }
    void revive() { m_crashed = false; }

    // The committed ledger.
    const std::map<std::int64_t, archive::ItemState>& items() const { return m_items; }
    const std::map<std::int64_t, int>& item_attempts() const { return m_item_attempts; }
    const std::vector<archive::Attempt>& attempts() const { return m_attempts; }
    std::optional<archive::RunState> run_state() const { return m_run_state; }
    std::optional<archive::RunProgress> run_progress() const { return m_run_progress; }
    const std::map<std::string, archive::EventStatus>& statuses() const { return m_statuses; }

    void select(std::int64_t item) { m_items[item] = archive::ItemState::pending; }
    std::int64_t count(archive::ItemState state) const {
        return std::count_if(m_items.begin(), m_items.end(),
                             [&](const auto& i) { return i.second == state; });
    }

private:
    void commit() {
        for (auto& a : m_queue) {
            if (a.item > 0) {
                m_item_attempts[a.item] += 1;
                if (a.item_state) {
                    if (m_items[a.item] != archive::ItemState::pending) {
                        m_double_settled += 1;
                    }
                    m_items[a.item] = *a.item_state;
                    m_committed_items.push_back(a.item);
                }
            }
            if (a.new_status) {
                m_statuses[a.event_id] = *a.new_status;
            }
            m_attempts.push_back(std::move(a));
        }
        for (auto& v : m_verdicts) {
            m_items[v.item] = v.state;
            m_committed_items.push_back(v.item);
            if (v.event_status) {
                m_statuses[v.event_id] = *v.event_status;
            }
        }
        if (m_run_update) {
            m_run_progress = m_run_update->first;
            m_run_state = m_run_update->second;
        }
        m_queue.clear();
        m_verdicts.clear();
        m_run_update.reset();
    }

    std::mt19937_64 m_rng;
    double m_commit_chance;
    bool m_crashed = false;
    std::vector<archive::Attempt> m_queue;
    std::vector<archive::ItemVerdict> m_verdicts;
    std::optional<std::pair<archive::RunProgress, archive::RunState>> m_run_update;
    std::vector<std::int64_t> m_committed_items;
    std::map<std::int64_t, archive::ItemState> m_items;
    std::map<std::int64_t, int> m_item_attempts;
    std::vector<archive::Attempt> m_attempts;
    std::map<std::string, archive::EventStatus> m_statuses;
    std::optional<archive::RunState> m_run_state;
    std::optional<archive::RunProgress> m_run_progress;
    std::int64_t m_double_settled = 0;

public:
    // Items settled twice (never allowed).
    std::int64_t double_settled() const { return m_double_settled; }
};

// A feed from a list, read whole.
class ListFeed final : public replay::Feed {
public:
    explicit ListFeed(std::vector<replay::ReplayEvent> events)
        : m_events(events.begin(), events.end()) {}
    std::optional<replay::ReplayEvent> try_pop(bool) override {
        if (m_events.empty()) {
            return std::nullopt;
        }
        auto e = std::move(m_events.front());
        m_events.pop_front();
        return e;
    }
    bool done() const override { return m_events.empty(); }
    std::optional<Error> error() const override { return std::nullopt; }
    std::int64_t missing() const override { return 0; }

private:
    std::deque<replay::ReplayEvent> m_events;
};

inline replay::ReplayEvent make_event(std::int64_t item, const std::string& org) {
    replay::ReplayEvent e;
    e.item = item;
    e.seq = item;
    char id[32];
    std::snprintf(id, sizeof id, "evt_%06lld", static_cast<long long>(item));
    e.event_id = id;
    e.org_id = org;
    e.received_at_ms = 1'764'000'000'000 + item;
    e.body = std::string("{\"event_id\":\"") + id + "\",\"org_id\":\"" + org + "\"}";
    return e;
}

inline http::Endpoint test_endpoint() {
    http::Endpoint endpoint;
    endpoint.url = "http://127.0.0.1:9/hooks";
    keys::Key key;
    key.bytes = keys::SecretBytes("unit-test-secret-value");
    key.fingerprint = "00000000";
    endpoint.keys.push_back(std::move(key));
    return endpoint;
}

} // namespace hookctl::testing
