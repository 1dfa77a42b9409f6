#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include <hookctl/util/error.hpp>

namespace hookctl::util {

// Parses a duration: a bare number of seconds (`300`), or a number with a unit
// (`250ms`, `300s`, `5m`, `24h`, `7d`); fractions such as `1.5s` are allowed.
// Fails on anything else, naming the input and the accepted forms.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// A delivery rate: `per_second` events per second, or unlimited (`max`).
struct Rate {
    std::optional<double> per_second; // empty means as fast as concurrency allows
    bool unlimited() const { return !per_second.has_value(); }
};

// Parses `50/s`, `300/m`, `10/h`, `50` (per second) or `max`. Fails on zero, negative or garbage.
Result<Rate> parse_rate(std::string_view text);

// Parses a byte size: `1024`, `512KiB`, `25MiB`, `1GiB`, and the decimal `KB`, `MB`, `GB`.
Result<std::uint64_t> parse_size(std::string_view text);

// Parses a whole number of seconds since the epoch (a Unix timestamp). Fails on signs other
// than a leading `-`, on non-digits and on values that overflow 64 bits.
Result<std::int64_t> parse_unix_seconds(std::string_view text);

// Formats a duration the way people write it: `300s`, `5m`, `24h`, `1h30m`, `250ms`.
std::string format_duration(std::chrono::milliseconds d);

} // namespace hookctl::util
