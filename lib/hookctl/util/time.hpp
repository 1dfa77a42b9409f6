#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <hookctl/util/error.hpp>

// Wall-clock time in one place: the one read of the system's wall clock, and the UTC text forms
// hookctl writes and reads. Names say their unit: `_s` is Unix seconds, `_ms` Unix milliseconds.
namespace hookctl::util {

// The system's wall clock, read here and nowhere else (SystemClock and the helpers below call
// it). Code that decides takes a util::Clock instead (clock.hpp).
std::chrono::system_clock::time_point wall_now();
// wall_now() in Unix milliseconds and in whole Unix seconds.
std::int64_t unix_now_ms();
std::int64_t unix_now_s();

// Unix milliseconds -> `2026-11-26T18:00:00.123Z`.
std::string format_time_ms(std::int64_t unix_ms);
// Unix seconds -> `2026-11-26T18:00:00Z`; a time gmtime cannot represent comes back as its
// number of seconds.
std::string format_time_s(std::int64_t unix_s);
// Unix milliseconds -> `Thu, 26 Nov 2026 18:00:00 +0000` (RFC 5322 Date), whatever the locale.
std::string format_rfc5322_ms(std::int64_t unix_ms);

// Parses RFC 3339 (`2026-11-26T18:00:00Z`, fractional seconds and offsets accepted), a date
// `2026-11-26` (midnight UTC), or Unix seconds (`@1764180000` or plain digits) into Unix ms.
// Fails (exit 2) quoting `text`.
Result<std::int64_t> parse_time_ms(std::string_view text);

// What a --since/--until flag accepts: every form of parse_time_ms, or a time relative to
// `now_ms` (Unix milliseconds): `now`, `today` / `yesterday` (midnight UTC), or a duration
// meaning that long ago (`24h`, `30m`, `7d`). Fails (exit 2) quoting `text` and listing the forms.
Result<std::int64_t> parse_when_ms(std::string_view text, std::int64_t now_ms);

// Exactly `YYYY-MM-DDTHH:MM:SSZ` (what format_time_s writes) -> Unix seconds; nothing for
// any other text (the strict form of the keyring file).
std::optional<std::int64_t> parse_time_s_strict(std::string_view text);

} // namespace hookctl::util
