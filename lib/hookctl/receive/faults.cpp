#include <charconv>
#include <cmath>

#include <hookctl/receive/faults.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::receive {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31U);
}

enum Stream : std::uint64_t { s_drop = 1, s_fail = 2, s_throttle = 3, s_latency = 4 };

} // namespace

double uniform(std::uint64_t seed, std::uint64_t sequence, std::uint64_t stream) {
    std::uint64_t x = splitmix64(seed ^ splitmix64(sequence * 4 + stream));
    return static_cast<double>(x >> 11U) * 0x1.0p-53;
}

Result<double> parse_probability(std::string_view text, std::string_view flag) {
    std::string_view number = text;
    double scale = 1;
    if (!number.empty() && number.back() == '%') {
        number.remove_suffix(1);
        scale = 100;
    }
    double value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
        !std::isfinite(value) || value / scale < 0 || value / scale > 1) {
        return fail(ExitCode::usage, std::string(flag) + ": '" + std::string(text) +
                                         "' is not a probability: give a number from 0 to 1 "
                                         "(0.05) or a percentage (5%)");
    }
    return value / scale;
}

Result<std::pair<std::chrono::milliseconds, std::chrono::milliseconds>>
parse_latency(std::string_view text) {
    auto dash = text.find('-');
    auto first = util::parse_duration(text.substr(0, dash));
    if (!first) {
        return fail(ExitCode::usage, "--latency: " + first.error().message +
                                         " (forms: 200ms, or MIN-MAX such as 50ms-2s)");
    }
    if (dash == std::string_view::npos) {
        return std::pair{*first, *first};
    }
    auto second = util::parse_duration(text.substr(dash + 1));
    if (!second) {
        return fail(ExitCode::usage, "--latency: " + second.error().message +
                                         " (forms: 200ms, or MIN-MAX such as 50ms-2s)");
    }
    if (*second < *first) {
        return fail(ExitCode::usage, "--latency: '" + std::string(text) +
                                         "': the maximum is below the minimum; write MIN-MAX");
    }
    return std::pair{*first, *second};
}

std::optional<FaultDecision::Kind> parse_fault_reason(std::string_view reason) {
    using Kind = FaultDecision::Kind;
    for (auto kind : {Kind::drop, Kind::fail, Kind::fail_first, Kind::throttle}) {
        FaultDecision decision;
        decision.kind = kind;
        if (reason == decision.reason()) {
            return kind;
        }
    }
    return std::nullopt;
}

std::string_view FaultDecision::reason() const {
    switch (kind) {
    case Kind::none:
        return "none";
    case Kind::drop:
        return "fault_drop";
    case Kind::fail:
        return "fault_fail";
    case Kind::fail_first:
        return "fault_fail_first";
    case Kind::throttle:
        return "fault_throttle";
    }
    return "none";
}

FaultDecision FaultPlan::decide(std::uint64_t sequence, std::string_view event_id) {
    FaultDecision d;
    const auto& o = m_options;
    if (o.latency_max.count() > 0) {
        auto span = static_cast<double>((o.latency_max - o.latency_min).count());
        auto extra = static_cast<std::int64_t>(uniform(o.seed, sequence, s_latency) * (span + 1));
        d.latency = o.latency_min + std::chrono::milliseconds(std::min<std::int64_t>(
                                        extra, (o.latency_max - o.latency_min).count()));
    }
    bool drop = o.drop_rate > 0 && uniform(o.seed, sequence, s_drop) < o.drop_rate;
    bool fail_now = o.fail_rate > 0 && uniform(o.seed, sequence, s_fail) < o.fail_rate;
    bool throttle = o.throttle_rate > 0 && uniform(o.seed, sequence, s_throttle) < o.throttle_rate;
    bool first = false;
    if (o.fail_first > 0) {
        std::lock_guard lock(m_mutex);
        auto& count = m_seen[std::string(event_id)];
        first = count < o.fail_first;
        ++count;
    }
    if (drop) {
        d.kind = FaultDecision::Kind::drop;
    } else if (first) {
        d.kind = FaultDecision::Kind::fail_first;
    } else if (fail_now) {
        d.kind = FaultDecision::Kind::fail;
    } else if (throttle) {
        d.kind = FaultDecision::Kind::throttle;
    }
    return d;
}

} // namespace hookctl::receive
