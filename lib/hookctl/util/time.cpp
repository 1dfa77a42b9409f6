#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <limits>

#include <hookctl/util/headers.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::util {

std::chrono::system_clock::time_point wall_now() {
    return std::chrono::system_clock::now();
}

std::int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(wall_now().time_since_epoch())
        .count();
}

std::int64_t unix_now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(wall_now().time_since_epoch()).count();
}

std::string format_time_ms(std::int64_t unix_ms) {
    std::int64_t seconds = unix_ms / 1000;
    std::int64_t millis = unix_ms % 1000;
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(millis));
    return buf;
}

std::string format_time_s(std::int64_t unix_s) {
    std::time_t tt = static_cast<std::time_t>(unix_s);
    std::tm tm{};
    if (::gmtime_r(&tt, &tm) == nullptr) {
        return std::to_string(unix_s);
    }
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string format_rfc5322_ms(std::int64_t unix_ms) {
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char out[64];
    std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
                  tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return out;
}

namespace {

// Reads exactly `width` digits at `pos`.
bool read_digits(std::string_view s, std::size_t& pos, std::size_t width, int& out) {
    if (pos + width > s.size()) {
        return false;
    }
    auto [ptr, ec] = std::from_chars(s.data() + pos, s.data() + pos + width, out);
    if (ec != std::errc() || ptr != s.data() + pos + width) {
        return false;
    }
    pos += width;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos < s.size() && s[pos] == c) {
        ++pos;
        return true;
    }
    return false;
}

} // namespace
Result<std::int64_t> parse_time_ms(std::string_view text) {
    auto bad = [&] {
        return fail(ExitCode::usage,
                    "cannot read time '" + std::string(text) +
                        "': use RFC 3339 (2026-11-26T18:00:00Z), a date (2026-11-26) or Unix "
                        "seconds (@1764180000)");
    };
    std::string_view s = util::trim(text);
    if (!s.empty() && s.front() == '@') {
        s.remove_prefix(1);
    }
    if (!s.empty() &&
        std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::int64_t seconds = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), seconds);
        if (ec != std::errc() || ptr != s.data() + s.size() ||
            seconds > std::numeric_limits<std::int64_t>::max() / 1000) {
            return bad();
        }
        return seconds * 1000;
    }
    s = util::trim(text);
    std::size_t pos = 0;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!read_digits(s, pos, 4, year) || !expect(s, pos, '-') || !read_digits(s, pos, 2, month) ||
        !expect(s, pos, '-') || !read_digits(s, pos, 2, day)) {
        return bad();
    }
    std::int64_t millis = 0;
    std::int64_t offset_seconds = 0;
    if (pos < s.size()) {
        if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') {
            return bad();
        }
        ++pos;
        if (!read_digits(s, pos, 2, hour) || !expect(s, pos, ':') ||
            !read_digits(s, pos, 2, minute)) {
            return bad();
        }
        if (expect(s, pos, ':') && !read_digits(s, pos, 2, second)) {
            return bad();
        }
        if (expect(s, pos, '.') || expect(s, pos, ',')) {
            int digits = 0;
            std::int64_t scale = 100;
            while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
                millis += (s[pos] - '0') * scale;
                scale /= 10;
                ++pos;
                ++digits;
            }
            if (digits == 0) {
                return bad();
            }
        }
        if (pos < s.size()) {
            if (s[pos] == 'Z' || s[pos] == 'z') {
                ++pos;
            } else if (s[pos] == '+' || s[pos] == '-') {
                int sign = s[pos] == '-' ? -1 : 1;
                ++pos;
                int oh = 0, om = 0;
                if (!read_digits(s, pos, 2, oh)) {
                    return bad();
                }
                expect(s, pos, ':');
                if (!read_digits(s, pos, 2, om) || oh > 23 || om > 59) {
                    return bad();
                }
                offset_seconds = sign * (oh * 3600 + om * 60);
            } else {
                return bad();
            }
        }
        if (pos != s.size()) {
            return bad();
        }
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return bad();
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    std::time_t t = timegm(&tm);
    if (tm.tm_mday != day) { // e.g. February 30 normalised into March
        return bad();
    }
    return (static_cast<std::int64_t>(t) - offset_seconds) * 1000 + millis;
}

Result<std::int64_t> parse_when_ms(std::string_view text, std::int64_t now_ms) {
    auto trimmed = util::trim(text);
    constexpr std::int64_t day_ms = 86'400'000;
    std::int64_t midnight = now_ms - (((now_ms % day_ms) + day_ms) % day_ms);
    if (trimmed == "now") {
        return now_ms;
    }
    if (trimmed == "today") {
        return midnight;
    }
    if (trimmed == "yesterday") {
        return midnight - day_ms;
    }
    if (auto absolute = parse_time_ms(trimmed)) {
        return *absolute;
    }
    if (auto ago = util::parse_duration(trimmed)) {
        return now_ms - ago->count();
    }
    return fail(ExitCode::usage, "cannot read time '" + std::string(text) +
                                     "': use RFC 3339 (2026-11-26T18:00:00Z), a date "
                                     "(2026-11-26), Unix seconds (@1764180000), today, "
                                     "yesterday, now, or a duration ago (24h, 30m, 7d)");
}

std::optional<std::int64_t> parse_time_s_strict(std::string_view text) {
    // YYYY-MM-DDTHH:MM:SSZ, exactly.
    if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
        text[13] != ':' || text[16] != ':' || text[19] != 'Z') {
        return std::nullopt;
    }
    auto number = [&](std::size_t pos, std::size_t len) -> std::optional<int> {
        int n = 0;
        auto [end, ec] = std::from_chars(text.data() + pos, text.data() + pos + len, n);
        if (ec != std::errc() || end != text.data() + pos + len) {
            return std::nullopt;
        }
        return n;
    };
    auto year = number(0, 4), month = number(5, 2), day = number(8, 2), hour = number(11, 2),
         minute = number(14, 2), second = number(17, 2);
    if (!year || !month || !day || !hour || !minute || !second || *month < 1 || *month > 12 ||
        *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = *year - 1900;
    tm.tm_mon = *month - 1;
    tm.tm_mday = *day;
    tm.tm_hour = *hour;
    tm.tm_min = *minute;
    tm.tm_sec = *second;
    return static_cast<std::int64_t>(::timegm(&tm));
}

} // namespace hookctl::util
