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

} // namespace hookctl::archive
