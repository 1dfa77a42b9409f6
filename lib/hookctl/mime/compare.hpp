#pragma once

// Parser divergence (`hookctl events reparse --compare`, hookctl-events(1), REPARSE): two
// email events made from the same raw MIME, compared field by field, and the tally of many
// such comparisons. Pure: JSON in, differences out.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace hookctl::mime {

// The fields compared, in report order. `date` is the message's Date; attachments are compared
// by filename, size, content type and SHA-256, in order.
inline constexpr std::array<std::string_view, 8> k_compared_fields{
    "subject", "from", "to", "cc", "date", "text", "html", "attachments"};

// One field that differs, with a short view of each side (at most about 120 characters: for
// text, where the two first differ; for attachments, which one and in what).
struct FieldDiff {
    std::string field;
    std::string stored;
    std::string reparsed;
};

// The fields of k_compared_fields in which `stored` and `reparsed` differ, in that order. A
// field absent from one side counts as null there.
std::vector<FieldDiff> compare_events(const nlohmann::json& stored, const nlohmann::json& reparsed);

// A short view of where `a` and `b` first differ: `@offset: …before[after…]`, for each side.
std::pair<std::string, std::string> short_diff(std::string_view a, std::string_view b);

// Many comparisons summed up.
class DivergenceTally {
public:
    // `keep`: how many divergent events keep their diffs (ids are kept for every one).
    explicit DivergenceTally(std::size_t keep = 1000);

    void add(const std::string& event_id, std::vector<FieldDiff> diffs);
    // An event that could not be compared and why (`no raw MIME`, `body is not JSON`).
    void skip(std::string_view reason);

    struct Field {
        std::string field;
        std::uint64_t divergent = 0;
    };
    struct Event {
        std::string event_id;
        std::vector<std::string> fields;
        std::vector<FieldDiff> diffs; // empty beyond the first `keep` divergent events
    };

    std::uint64_t compared() const { return m_compared; }
    std::uint64_t divergent() const { return m_events.size(); }
    // divergent / compared (0 when nothing was compared).
    double rate() const;
    double rate(const Field& field) const;
    const std::vector<Field>& fields() const { return m_fields; }
    const std::vector<Event>& events() const { return m_events; }
    // Skipped events by reason, in the order reasons first appeared.
    const std::vector<std::pair<std::string, std::uint64_t>>& skipped() const { return m_skipped; }
    // True when rate() is above `max_rate` (a share, 0 to 1).
    bool exceeds(double max_rate) const;

private:
    std::size_t m_keep;
    std::uint64_t m_compared = 0;
    std::vector<Field> m_fields;
    std::vector<Event> m_events;
    std::vector<std::pair<std::string, std::uint64_t>> m_skipped;
};

} // namespace hookctl::mime
