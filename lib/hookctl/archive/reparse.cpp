#include <limits>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/archive/reparse.hpp>
#include <hookctl/mime/parse.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::archive {
namespace {

using json = nlohmann::json;

// `event` without the fields set from outside the message.
json message_part(json event) {
    if (!event.is_object()) {
        return event;
    }
    for (const char* field : {"org_id", "received_at", "trace_id"}) {
        event.erase(field);
    }
    if (auto raw = event.find("raw_mime"); raw != event.end() && raw->is_object()) {
        raw->erase("storage_key");
    }
    return event;
}

// A new parse worth storing, decided after the page was read.
struct Candidate {
    std::string event_id;
    json parsed;
    std::vector<std::string> divergent;
};

// Re-parses and compares one event; adds a write candidate when asked and it differs.
Result<void> examine(const Event& e, const ReparseOptions& options, ReparseResult& result,
                     std::vector<Candidate>& candidates) {
    if (!e.raw_mime) {
        result.tally.skip("no raw MIME stored");
        return {};
    }
    auto stored = json::parse(e.body, nullptr, false);
    if (!stored.is_object()) {
        result.tally.skip("body is not a JSON object");
        return {};
    }
    mime::ParseOptions parse;
    parse.org_id = e.org_id;
    parse.received_at = util::format_time_ms(e.received_at_ms);
    if (!e.trace_id.empty()) {
        parse.trace_id = e.trace_id;
    }
    if (e.raw_mime->empty()) {
        result.tally.skip("raw MIME is empty");
        return {};
    }
    auto parsed = mime::parse_message(*e.raw_mime, parse);
    if (!parsed) {
        return fail(parsed.error().code,
                    "re-parsing event " + e.event_id + ": " + parsed.error().message);
    }
    auto diffs = mime::compare_events(stored, *parsed);
    std::vector<std::string> fields;
    for (const auto& d : diffs) {
        fields.push_back(d.field);
    }
    result.tally.add(e.event_id, std::move(diffs));
    if (options.write && message_part(stored) != message_part(*parsed)) {
        candidates.push_back({e.event_id, std::move(*parsed), std::move(fields)});
    }
    return {};
}

// Stores the candidates that differ from their event's latest stored version too.
Result<std::uint64_t> write_candidates(Store& archive, const ReparseOptions& options,
                                       std::vector<Candidate>& candidates) {
    std::vector<NewReparse> writes;
    for (auto& c : candidates) {
        auto earlier = archive.reparses_of(c.event_id, true);
        HOOKCTL_RETURN_IF_ERROR(earlier);
        if (!earlier->empty()) {
            auto latest = json::parse(earlier->back().body, nullptr, false);
            if (message_part(latest) == message_part(c.parsed)) {
                continue; // this parse is stored already
            }
        }
        writes.push_back({c.event_id, options.parser, std::move(c.divergent),
                          c.parsed.dump(-1, ' ', false, json::error_handler_t::replace)});
    }
    if (writes.empty()) {
        return 0;
    }
    auto added = archive.add_reparses(writes);
    HOOKCTL_RETURN_IF_ERROR(added);
    return writes.size();
}

} // namespace

Result<ReparseResult> reparse_events(Store& archive, const ReparseOptions& options) {
    ReparseResult result{mime::DivergenceTally(options.keep_diffs), 0, 0, false};
    EventFilter page = options.filter;
    page.with_body = true;
    std::uint64_t left = options.filter.limit.value_or(std::numeric_limits<std::uint64_t>::max());
    std::int64_t after = options.filter.after_seq.value_or(0);
    const std::uint64_t page_size = std::max<std::size_t>(1, options.page);
    while (left > 0) {
        page.after_seq = after;
        page.limit = std::min<std::uint64_t>(page_size, left);
        std::vector<Candidate> candidates;
        std::optional<Error> failed;
        std::uint64_t seen = 0;
        auto visited = archive.for_each_event(page, [&](const Event& e) {
            ++seen;
            after = e.seq;
            if (auto done = examine(e, options, result, candidates); !done) {
                failed = done.error();
                return false;
            }
            return true;
        });
        HOOKCTL_RETURN_IF_ERROR(visited);
        if (failed) {
            return std::unexpected(*failed);
        }
        if (!candidates.empty()) {
            auto written = write_candidates(archive, options, candidates);
            HOOKCTL_RETURN_IF_ERROR(written);
            result.written += *written;
        }
        result.examined += seen;
        left -= seen;
        if (seen < *page.limit) {
            break;
        }
        if (options.progress && !options.progress(result.examined)) {
            result.stopped = true;
            break;
        }
    }
    return result;
}

} // namespace hookctl::archive
