#include <charconv>
#include <cmath>
#include <string>

#include <hookctl/util/units.hpp>

namespace hookctl::util {
namespace {

std::string quoted(std::string_view s) {
    std::string out = "'";
    out.append(s);
    out += "'";
    return out;
}

// Splits `text` into a leading non-negative decimal number and the rest.
std::optional<std::pair<double, std::string_view>> split_number(std::string_view text) {
    double value = 0;
    auto [ptr, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
    if (ec != std::errc{} || ptr == text.data() || !std::isfinite(value) || value < 0) {
        return std::nullopt;
    }
    return std::pair{value, text.substr(static_cast<std::size_t>(ptr - text.data()))};
}

} // namespace

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
    auto bad = [&] {
        return fail(ExitCode::usage, "invalid duration " + quoted(text) +
                                         ": use seconds (300) or a number with a unit: 250ms, "
                                         "300s, 5m, 24h, 7d");
    };
    auto split = split_number(text);
    if (!split) {
        return bad();
    }
    auto [value, unit] = *split;
    double ms_per_unit = 0;
    if (unit.empty() || unit == "s") {
        ms_per_unit = 1000;
    } else if (unit == "ms") {
        ms_per_unit = 1;
    } else if (unit == "m") {
        ms_per_unit = 60'000;
    } else if (unit == "h") {
        ms_per_unit = 3'600'000;
    } else if (unit == "d") {
        ms_per_unit = 86'400'000;
    } else {
        return bad();
    }
    double ms = value * ms_per_unit;
    if (ms > 1e15) {
        return fail(ExitCode::usage, "duration " + quoted(text) + " is too large");
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

Result<Rate> parse_rate(std::string_view text) {
    if (text == "max") {
        return Rate{};
    }
    auto bad = [&] {
        return fail(ExitCode::usage, "invalid rate " + quoted(text) +
                                         ": use events per unit (50/s, 300/m, 10/h) or max");
    };
    auto split = split_number(text);
    if (!split || split->first <= 0) {
        return bad();
    }
    auto [value, unit] = *split;
    if (unit.empty() || unit == "/s") {
        return Rate{value};
    }
    if (unit == "/m") {
        return Rate{value / 60.0};
    }
    if (unit == "/h") {
        return Rate{value / 3600.0};
    }
    return bad();
}

Result<std::uint64_t> parse_size(std::string_view text) {
    auto bad = [&] {
        return fail(ExitCode::usage, "invalid size " + quoted(text) +
                                         ": use bytes (1024) or a unit: 512KiB, 25MiB, 1GiB, "
                                         "100KB, 10MB");
    };
    auto split = split_number(text);
    if (!split) {
        return bad();
    }
    auto [value, unit] = *split;
    double factor = 0;
    if (unit.empty() || unit == "B") {
        factor = 1;
    } else if (unit == "KiB" || unit == "K") {
        factor = 1024.0;
    } else if (unit == "MiB" || unit == "M") {
        factor = 1024.0 * 1024;
    } else if (unit == "GiB" || unit == "G") {
        factor = 1024.0 * 1024 * 1024;
    } else if (unit == "KB" || unit == "kB") {
        factor = 1e3;
    } else if (unit == "MB") {
        factor = 1e6;
    } else if (unit == "GB") {
        factor = 1e9;
    } else {
        return bad();
    }
    double bytes = value * factor;
    if (bytes > 9.0e18) {
        return fail(ExitCode::usage, "size " + quoted(text) + " is too large");
    }
    return static_cast<std::uint64_t>(std::llround(bytes));
}

Result<std::int64_t> parse_unix_seconds(std::string_view text) {
    std::int64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range) {
        return fail(ExitCode::usage, "timestamp " + quoted(text) +
                                         " is out of range: give Unix seconds, e.g. 1700000000");
    }
    if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty()) {
        return fail(ExitCode::usage, "timestamp " + quoted(text) +
                                         " is not a whole number of Unix seconds, e.g. 1700000000");
    }
    return value;
}

std::string format_duration(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms % 1000 != 0) {
        return std::to_string(ms) + "ms";
    }
    auto s = ms / 1000;
    if (s == 0) {
        return "0s";
    }
    std::string out;
    if (s >= 3600) {
        out += std::to_string(s / 3600) + "h";
        s %= 3600;
    }
    if (s >= 60) {
        out += std::to_string(s / 60) + "m";
        s %= 60;
    }
    if (s > 0) {
        out += std::to_string(s) + "s";
    }
    return out;
}

} // namespace hookctl::util
