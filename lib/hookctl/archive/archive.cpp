#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/postgres/location.hpp>
#include <hookctl/archive/postgres/store.hpp>
#include <hookctl/archive/sqlite/store.hpp>

namespace hookctl::archive {

std::string_view to_string(EventStatus status) {
    switch (status) {
    case EventStatus::received:
        return "received";
    case EventStatus::delivered:
        return "delivered";
    case EventStatus::failed:
        return "failed";
    case EventStatus::dead:
        return "dead";
    }
    return "received";
}

Result<EventStatus> parse_event_status(std::string_view text) {
    for (auto s :
         {EventStatus::received, EventStatus::delivered, EventStatus::failed, EventStatus::dead}) {
        if (text == to_string(s)) {
            return s;
        }
    }
    return fail(ExitCode::usage, "unknown event status '" + std::string(text) +
                                     "': use received, delivered, failed or dead");
}

std::string_view to_string(ItemState state) {
    switch (state) {
    case ItemState::pending:
        return "pending";
    case ItemState::delivered:
        return "delivered";
    case ItemState::dead:
        return "dead";
    }
    return "pending";
}

std::optional<ItemState> parse_item_state(std::string_view text) {
    for (auto s : {ItemState::pending, ItemState::delivered, ItemState::dead}) {
        if (text == to_string(s)) {
            return s;
        }
    }
    return std::nullopt;
}

std::string_view to_string(AttemptOutcome outcome) {
    switch (outcome) {
    case AttemptOutcome::delivered:
        return "delivered";
    case AttemptOutcome::retry:
        return "retry";
    case AttemptOutcome::failed:
        return "failed";
    case AttemptOutcome::dead:
        return "dead";
    }
    return "failed";
}

std::optional<AttemptOutcome> parse_attempt_outcome(std::string_view text) {
    for (auto o : {AttemptOutcome::delivered, AttemptOutcome::retry, AttemptOutcome::failed,
                   AttemptOutcome::dead}) {
        if (text == to_string(o)) {
            return o;
        }
    }
    return std::nullopt;
}

std::string_view to_string(RunState state) {
    switch (state) {
    case RunState::running:
        return "running";
    case RunState::paused:
        return "paused";
    case RunState::completed:
        return "completed";
    case RunState::aborted:
        return "aborted";
    case RunState::failed:
        return "failed";
    }
    return "failed";
}

Result<RunState> parse_run_state(std::string_view text) {
    for (auto s : {RunState::running, RunState::paused, RunState::completed, RunState::aborted,
                   RunState::failed}) {
        if (text == to_string(s)) {
            return s;
        }
    }
    return fail(ExitCode::usage, "unknown run state '" + std::string(text) +
                                     "': use running, paused, completed, aborted or failed");
}

std::string_view worker_state(RunState state) {
    switch (state) {
    case RunState::running:
        return "running";
    case RunState::completed:
        return "done";
    case RunState::aborted:
        return "tripped";
    case RunState::paused:
        return "stopped";
    case RunState::failed:
        return "failed";
    }
    return "failed";
}

Result<std::unique_ptr<Store>> open(const std::string& where, const OpenOptions& options) {
    if (postgres::is_uri(where)) {
        return postgres::open(where, options);
    }
    return sqlite::open(where, options);
}

bool is_server_uri(std::string_view where) {
    return postgres::is_uri(where);
}

Result<void> check_location(std::string_view where) {
    return postgres::is_uri(where) ? postgres::check_uri(where) : Result<void>{};
}

Result<void> mark_all(Store& store, std::span<const std::string> event_ids, EventStatus status,
                      std::string_view reason) {
    if (auto begun = store.begin(); !begun) {
        return begun;
    }
    auto missing = store.mark_events(event_ids, status, reason);
    if (!missing) {
        store.rollback();
        return std::unexpected(missing.error());
    }
    if (!missing->empty()) {
        store.rollback();
        std::string list;
        for (const auto& id : *missing) {
            list += (list.empty() ? "" : ", ") + id;
        }
        return fail(ExitCode::usage,
                    "no event with id " + list + " in " + store.path() + "; nothing was marked");
    }
    return store.commit();
}

// --- runs shared by workers: a backend that cannot share one ------------------------------------

namespace {

Error cannot_share(const Store& store) {
    return Error{ExitCode::usage,
                 "archive " + store.path() +
                     " cannot share a run between workers: only a PostgreSQL archive "
                     "(postgres://...) can; replay it as one process, or copy it to PostgreSQL "
                     "with `hookctl events copy`"};
}

} // namespace

Result<std::uint64_t> Store::claim_items(std::string_view, const WorkerLease&, std::int64_t,
                                         std::uint64_t,
                                         const std::function<void(const RunItem&, const Event&)>&) {
    return std::unexpected(cannot_share(*this));
}

Result<std::int64_t> Store::renew_leases(std::string_view, const WorkerLease&, std::string_view) {
    return std::unexpected(cannot_share(*this));
}

Result<void> Store::release_leases(std::string_view, const WorkerLease&, std::string_view) {
    return std::unexpected(cannot_share(*this));
}

Result<SharedRunState> Store::shared_state(std::string_view, std::string_view) {
    return std::unexpected(cannot_share(*this));
}

Result<SlotBlock> Store::reserve_slots(std::string_view, int, std::int64_t) {
    return std::unexpected(cannot_share(*this));
}

Result<void> Store::pause_slots(std::string_view, std::int64_t) {
    return std::unexpected(cannot_share(*this));
}

Result<RunState> Store::update_shared_run(std::string_view, const WorkerLease&, RunState,
                                          std::string_view, std::int64_t) {
    return std::unexpected(cannot_share(*this));
}

Result<std::vector<Worker>> Store::list_workers(std::string_view) {
    return std::vector<Worker>{};
}

Result<bool> Store::wait_for_news(std::string_view, std::chrono::milliseconds) {
    return std::unexpected(cannot_share(*this));
}

} // namespace hookctl::archive
