#pragma once

// hookctl::trigger: built-in inbound-email scenarios (`hookctl trigger`), as data. Each scenario
// is raw MIME that hookctl's own parser (mime::parse_message) turns into the event JSON, plus how
// it is signed (a stale timestamp, a wrong secret) and what a conformant receiver answers. The
// scenarios are pure: the time and a per-run nonce come in through Options, so every run makes
// new event ids (the Message-ID carries the nonce) and tests are exact.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/util/error.hpp>

namespace hookctl::trigger {

// What a conformant receiver answers to a request: 2xx (accepted), or a 4xx rejection, ideally
// one of `preferred`.
struct Expectation {
    bool accept = true;
    std::vector<long> preferred; // rejections: the statuses that say it best (401, 403)

    // `2xx`, `4xx (401 or 403)`.
    std::string text() const;
    // True when `status` is the answer documented: any 2xx, or any 4xx for a rejection.
    bool met_by(long status) const;
};

// A --set override: a dotted path into the event JSON (`subject`, `from.address`,
// `attachments.0.filename`) and the value (JSON when it parses as JSON, else a string).
struct Override {
    std::string path;
    nlohmann::json value;
};

// Parses `path=value`; fails (exit 2) on a missing `=` or an empty path.
Result<Override> parse_override(std::string_view text);

// Sets `override.path` in `doc`, creating objects on the way; fails (exit 2) when the path runs
// through a value that is not an object (or an array index out of range).
Result<void> apply_override(nlohmann::json& doc, const Override& override);

struct Options {
    std::string org_id = "org_trigger";         // org_id of every event
    std::int64_t now_ms = 0;                    // Date header, received_at
    std::string nonce = "0";                    // unique per run: in every Message-ID
    int count = 20;                             // burst: how many events
    std::uint64_t attachment_size = 10u << 20u; // large-attachment: the attachment's bytes
    std::vector<Override> overrides;            // --set, applied in order to every event
    std::chrono::seconds stale_by{600};         // stale-timestamp: how old the timestamp is
};

// One request a scenario sends.
struct Delivery {
    std::string label;    // e.g. `1/2`, `again (same event id)`
    std::string event_id; // the event JSON's event_id (after --set)
    std::string trace_id; // the event JSON's trace_id, for traceparent
    std::string body;     // the event JSON
    std::string raw_mime; // the message it was parsed from
    // Signed this far from now (negative: in the past); such a request is sent once, since a
    // retry would sign it afresh.
    std::chrono::seconds timestamp_offset{0};
    bool wrong_secret = false; // signed with a random secret instead of the receiver's
    Expectation expect;
};

struct Scenario {
    std::string_view name;
    std::string_view summary; // what is sent
    std::string_view answer;  // what a conformant receiver answers, and why
    Expectation expect;
};

// Every scenario, in `--list` order.
const std::vector<Scenario>& scenarios();

// The scenario called `name`; fails (exit 2) listing the known ones (also when `name` is
// empty: no scenario given).
Result<const Scenario*> find_scenario(std::string_view name);

// The requests of `scenario`. Fails (exit 2) on an override that cannot be applied, (exit 4)
// when the parser fails.
Result<std::vector<Delivery>> build(const Scenario& scenario, const Options& options);

// The raw message of `scenario` for events number `index` (0-based; burst makes several).
std::string raw_message(const Scenario& scenario, const Options& options, int index = 0);

} // namespace hookctl::trigger
