#include <charconv>
#include <cstdio>
#include <stdexcept>

#include <hookctl/replay/plan.hpp>

namespace hookctl::replay {
namespace {

using json = nlohmann::json;

constexpr int k_plan_version = 1;

std::string_view kind_name(SourceKind kind) {
    switch (kind) {
    case SourceKind::archive:
        return "archive";
    case SourceKind::query:
        return "query";
    case SourceKind::mime:
        return "mime";
    case SourceKind::har:
        return "har";
    }
    return "archive";
}

std::string_view secret_kind_name(keys::SecretSource::Kind kind) {
    switch (kind) {
    case keys::SecretSource::Kind::env:
        return "env";
    case keys::SecretSource::Kind::file:
        return "file";
    case keys::SecretSource::Kind::keyring:
        return "keyring";
    }
    return "env";
}

json secrets_json(const std::vector<keys::SecretSource>& secrets) {
    json out = json::array();
    for (const auto& s : secrets) {
        out.push_back({{"kind", secret_kind_name(s.kind)}, {"where", s.where}});
    }
    return out;
}

template <class T> json optional_json(const std::optional<T>& value) {
    return value ? json(*value) : json(nullptr);
}

template <class T> std::optional<T> optional_from(const json& j, const char* key) {
    if (!j.contains(key) || j.at(key).is_null()) {
        return std::nullopt;
    }
    return j.at(key).get<T>();
}

// A duration as stored: whole seconds as "30s", else milliseconds ("500ms"), both forms
// util::parse_duration reads back (util::format_duration's "1h30m" is not).
std::string duration_text(std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s"
                                 : std::to_string(d.count()) + "ms";
}

std::string limit_text(const std::optional<std::chrono::milliseconds>& d) {
    return d ? duration_text(*d) : std::string();
}

// A stored duration; a bad one throws like any unreadable field of the plan.
std::chrono::milliseconds duration_from(const json& d, const char* key) {
    auto text = d.at(key).get<std::string>();
    auto parsed = util::parse_duration(text);
    if (!parsed) {
        throw std::runtime_error(std::string("delivery.") + key + ": " + parsed.error().message);
    }
    return *parsed;
}

// The stored retry count: text ("5") as every version 1 plan has it, or a number.
int retries_from(const json& d) {
    const auto& value = d.at("retries");
    if (value.is_number_integer()) {
        return value.get<int>();
    }
    auto text = value.get<std::string>();
    int n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        throw std::runtime_error("delivery.retries: '" + text + "' is not a whole number");
    }
    return n;
}

// Records one change (when `from` differs from `to`) and says whether it did.
bool note_change(Plan& plan, const std::string& field, const json& from, const json& to,
                 const std::string& by, std::int64_t at_ms) {
    if (from == to) {
        return false;
    }
    plan.changes.push_back(
        {{"at_ms", at_ms}, {"by", by}, {"field", field}, {"from", from}, {"to", to}});
    return true;
}

} // namespace

std::string format_rate(const util::Rate& rate) {
    if (rate.unlimited()) {
        return "max";
    }
    char text[32];
    std::snprintf(text, sizeof text, "%g/s", *rate.per_second);
    return text;
}

json to_json(const Plan& plan) {
    const auto& s = plan.source;
    json statuses = json::array();
    for (auto status : s.filter.statuses) {
        statuses.push_back(archive::to_string(status));
    }
    const auto& d = plan.delivery;
    return {
        {"version", k_plan_version},
        {"source",
         {{"kind", kind_name(s.kind)},
          {"path", s.path},
          {"query", s.query},
          {"status", statuses},
          {"since_ms", optional_json(s.filter.since_ms)},
          {"until_ms", optional_json(s.filter.until_ms)},
          {"org", s.filter.org_ids},
          {"event", s.filter.event_ids},
          {"limit", optional_json(s.filter.limit)},
          {"reparse", s.reparse},
          {"mime_org", s.org_id},
          {"ordered", s.ordered}}},
        {"delivery",
         {{"to", d.to},
          {"target", d.target},
          {"scheme", d.scheme},
          {"secrets", secrets_json(d.secrets)},
          {"insecure", d.insecure},
          {"retries", std::to_string(d.retries)},
          {"backoff_base", duration_text(d.backoff_base)},
          {"backoff_max", duration_text(d.backoff_max)},
          {"max_elapsed", limit_text(d.max_elapsed)},
          {"timeout", duration_text(d.timeout)},
          {"connect_timeout", duration_text(d.connect_timeout)}}},
        {"pacing",
         {{"rate", plan.rate ? json(format_rate(*plan.rate)) : json(nullptr)},
          {"burst", plan.burst},
          {"concurrency", plan.concurrency}}},
        {"breaker",
         {{"max_failures", optional_json(plan.breaker.max_failures)},
          {"max_error_rate", optional_json(plan.breaker.max_error_rate)},
          {"systemic_failures", plan.breaker.systemic_failures}}},
        {"changes", plan.changes},
    };
}

Result<Plan> plan_from_json(const json& stored) {
    if (!stored.is_object() || stored.value("version", 0) != k_plan_version) {
        return fail(ExitCode::usage,
                    "the run's stored plan is not one this hookctl reads (a run recorded by an "
                    "older hookctl cannot be resumed: start a new replay with the same selection)");
    }
    Plan plan;
    try {
        const auto& s = stored.at("source");
        auto kind = s.at("kind").get<std::string>();
        plan.source.kind = kind == "query"  ? SourceKind::query
                           : kind == "mime" ? SourceKind::mime
                           : kind == "har"  ? SourceKind::har
                                            : SourceKind::archive;
        plan.source.path = s.at("path").get<std::string>();
        plan.source.query = s.at("query").get<std::string>();
        for (const auto& text : s.at("status")) {
            auto status = archive::parse_event_status(text.get<std::string>());
            HOOKCTL_RETURN_IF_ERROR(status);
            plan.source.filter.statuses.push_back(*status);
        }
        plan.source.filter.since_ms = optional_from<std::int64_t>(s, "since_ms");
        plan.source.filter.until_ms = optional_from<std::int64_t>(s, "until_ms");
        plan.source.filter.org_ids = s.at("org").get<std::vector<std::string>>();
        plan.source.filter.event_ids = s.at("event").get<std::vector<std::string>>();
        plan.source.filter.limit = optional_from<std::uint64_t>(s, "limit");
        plan.source.reparse = s.at("reparse").get<bool>();
        plan.source.org_id = s.at("mime_org").get<std::string>();
        plan.source.ordered = s.at("ordered").get<bool>();

        const auto& d = stored.at("delivery");
        auto& spec = plan.delivery;
        spec.to = d.at("to").get<std::string>();
        spec.target = d.at("target").get<std::string>();
        spec.scheme = d.at("scheme").get<std::string>();
        for (const auto& secret : d.at("secrets")) {
            auto kind_text = secret.at("kind").get<std::string>();
            keys::SecretSource source;
            source.kind = kind_text == "file"      ? keys::SecretSource::Kind::file
                          : kind_text == "keyring" ? keys::SecretSource::Kind::keyring
                                                   : keys::SecretSource::Kind::env;
            source.where = secret.at("where").get<std::string>();
            spec.secrets.push_back(std::move(source));
        }
        spec.insecure = d.at("insecure").get<bool>();
        spec.retries = retries_from(d);
        spec.backoff_base = duration_from(d, "backoff_base");
        spec.backoff_max = duration_from(d, "backoff_max");
        if (!d.at("max_elapsed").get<std::string>().empty()) {
            spec.max_elapsed = duration_from(d, "max_elapsed");
        }
        spec.timeout = duration_from(d, "timeout");
        spec.connect_timeout = duration_from(d, "connect_timeout");

        const auto& p = stored.at("pacing");
        if (auto rate = optional_from<std::string>(p, "rate")) {
            auto parsed = util::parse_rate(*rate);
            HOOKCTL_RETURN_IF_ERROR(parsed);
            plan.rate = *parsed;
        }
        plan.burst = p.at("burst").get<int>();
        plan.concurrency = p.at("concurrency").get<int>();

        const auto& b = stored.at("breaker");
        plan.breaker.max_failures = optional_from<std::int64_t>(b, "max_failures");
        plan.breaker.max_error_rate = optional_from<double>(b, "max_error_rate");
        plan.breaker.systemic_failures = b.at("systemic_failures").get<int>();
        plan.changes = stored.value("changes", json::array());
    } catch (const std::exception& e) { // json::exception, or a bad duration or count
        return fail(ExitCode::usage,
                    std::string("the run's stored plan is not readable: ") + e.what());
    }
    return plan;
}

int apply_changes(Plan& plan, const PlanChanges& changes, const std::string& by,
                  std::int64_t at_ms) {
    int changed = 0;
    // A duration changes when its value does ("30s" and "30000ms" are one); the change is
    // recorded as the plan stores it.
    auto duration = [&](const char* field, std::chrono::milliseconds& stored,
                        const std::optional<std::chrono::milliseconds>& to) {
        if (to && note_change(plan, field, duration_text(stored), duration_text(*to), by, at_ms)) {
            stored = *to;
            ++changed;
        }
    };
    if (changes.rate) {
        json from = plan.rate ? json(format_rate(*plan.rate)) : json(nullptr);
        if (note_change(plan, "rate", from, format_rate(*changes.rate), by, at_ms)) {
            plan.rate = changes.rate;
            ++changed;
        }
    }
    if (changes.burst && note_change(plan, "burst", plan.burst, *changes.burst, by, at_ms)) {
        plan.burst = *changes.burst;
        ++changed;
    }
    if (changes.concurrency &&
        note_change(plan, "concurrency", plan.concurrency, *changes.concurrency, by, at_ms)) {
        plan.concurrency = *changes.concurrency;
        ++changed;
    }
    auto& d = plan.delivery;
    if (changes.retries && note_change(plan, "retries", std::to_string(d.retries),
                                       std::to_string(*changes.retries), by, at_ms)) {
        d.retries = *changes.retries;
        ++changed;
    }
    duration("backoff_base", d.backoff_base, changes.backoff_base);
    duration("backoff_max", d.backoff_max, changes.backoff_max);
    if (changes.max_elapsed && note_change(plan, "max_elapsed", limit_text(d.max_elapsed),
                                           limit_text(*changes.max_elapsed), by, at_ms)) {
        d.max_elapsed = *changes.max_elapsed;
        ++changed;
    }
    duration("timeout", d.timeout, changes.timeout);
    duration("connect_timeout", d.connect_timeout, changes.connect_timeout);
    if (changes.insecure &&
        note_change(plan, "insecure", d.insecure, *changes.insecure, by, at_ms)) {
        d.insecure = *changes.insecure;
        ++changed;
    }
    auto& b = plan.breaker;
    if (changes.max_failures && note_change(plan, "max_failures", optional_json(b.max_failures),
                                            *changes.max_failures, by, at_ms)) {
        b.max_failures = changes.max_failures;
        ++changed;
    }
    if (changes.max_error_rate &&
        note_change(plan, "max_error_rate", optional_json(b.max_error_rate),
                    *changes.max_error_rate, by, at_ms)) {
        b.max_error_rate = changes.max_error_rate;
        ++changed;
    }
    if (changes.systemic_failures && note_change(plan, "systemic_failures", b.systemic_failures,
                                                 *changes.systemic_failures, by, at_ms)) {
        b.systemic_failures = *changes.systemic_failures;
        ++changed;
    }
    if (!changes.secrets.empty() && note_change(plan, "secrets", secrets_json(d.secrets),
                                                secrets_json(changes.secrets), by, at_ms)) {
        d.secrets = changes.secrets;
        ++changed;
    }
    return changed;
}

} // namespace hookctl::replay
