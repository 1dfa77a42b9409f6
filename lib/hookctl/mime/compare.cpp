#include <algorithm>

#include <hookctl/mime/compare.hpp>

namespace hookctl::mime {
namespace {

using json = nlohmann::json;

constexpr std::size_t k_context = 24; // characters shown before the first difference
constexpr std::size_t k_shown = 60;   // characters shown from it
constexpr std::size_t k_dump = 120;   // characters of a JSON value shown

bool continuation(char c) {
    return (static_cast<unsigned char>(c) & 0xc0) == 0x80;
}

// `s` cut to at most `n` bytes at a character boundary, with `…` when cut.
std::string clip(std::string_view s, std::size_t n) {
    if (s.size() <= n) {
        return std::string(s);
    }
    while (n > 0 && continuation(s[n])) {
        --n;
    }
    return std::string(s.substr(0, n)) + "…";
}

std::string dump(const json& value) {
    return clip(value.dump(-1, ' ', false, json::error_handler_t::replace), k_dump);
}

json field_of(const json& event, std::string_view field) {
    if (!event.is_object()) {
        return nullptr;
    }
    auto it = event.find(std::string(field));
    return it == event.end() ? json(nullptr) : *it;
}

// What attachments are compared on.
json attachment_keys(const json& list) {
    json out = json::array();
    if (!list.is_array()) {
        return out;
    }
    for (const auto& a : list) {
        json keys = json::object();
        for (const char* k : {"filename", "size", "content_type", "sha256"}) {
            keys[k] = a.is_object() && a.contains(k) ? a[k] : json(nullptr);
        }
        out.push_back(std::move(keys));
    }
    return out;
}

std::string attachment_names(const json& list) {
    std::string out = std::to_string(list.size()) + " attachment(s)";
    std::string names;
    for (const auto& a : list) {
        names += (names.empty() ? "" : ", ") +
                 (a["filename"].is_string() ? a["filename"].get<std::string>() : std::string("-"));
    }
    return clip(out + (names.empty() ? "" : ": " + names), k_dump);
}

FieldDiff diff_attachments(const json& a, const json& b) {
    json ka = attachment_keys(a);
    json kb = attachment_keys(b);
    if (ka.size() != kb.size()) {
        return {"attachments", attachment_names(ka), attachment_names(kb)};
    }
    for (std::size_t i = 0; i < ka.size(); ++i) {
        for (const char* k : {"filename", "size", "content_type", "sha256"}) {
            if (ka[i][k] != kb[i][k]) {
                std::string where = "[" + std::to_string(i) + "] " + k + " ";
                return {"attachments", where + dump(ka[i][k]), where + dump(kb[i][k])};
            }
        }
    }
    return {"attachments", dump(ka), dump(kb)};
}

FieldDiff diff_values(std::string_view field, const json& a, const json& b) {
    FieldDiff d{std::string(field), {}, {}};
    if (a.is_string() && b.is_string()) {
        std::tie(d.stored, d.reparsed) =
            short_diff(a.get_ref<const std::string&>(), b.get_ref<const std::string&>());
    } else if (a.is_array() && b.is_array() && a.size() == b.size()) {
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (a[i] != b[i]) {
                d.stored = "[" + std::to_string(i) + "] " + dump(a[i]);
                d.reparsed = "[" + std::to_string(i) + "] " + dump(b[i]);
                break;
            }
        }
    } else {
        d.stored = dump(a);
        d.reparsed = dump(b);
    }
    return d;
}

} // namespace

std::pair<std::string, std::string> short_diff(std::string_view a, std::string_view b) {
    std::size_t p = 0;
    while (p < a.size() && p < b.size() && a[p] == b[p]) {
        ++p;
    }
    std::size_t from = p > k_context ? p - k_context : 0;
    while (from > 0 && from < a.size() && continuation(a[from])) {
        --from;
    }
    std::size_t cut = p; // the difference may start inside a character: show it whole
    while (cut > from && cut < a.size() && continuation(a[cut])) {
        --cut;
    }
    auto view = [&](std::string_view s) {
        std::string out = "@" + std::to_string(cut) + ": " + (from > 0 ? "…" : "");
        out += s.substr(from, cut - from);
        out += "[" + clip(s.substr(std::min(cut, s.size())), k_shown) + "]";
        return out;
    };
    return {view(a), view(b)};
}

std::vector<FieldDiff> compare_events(const json& stored, const json& reparsed) {
    std::vector<FieldDiff> out;
    for (auto field : k_compared_fields) {
        json a = field_of(stored, field);
        json b = field_of(reparsed, field);
        if (field == "attachments") {
            if (attachment_keys(a) != attachment_keys(b)) {
                out.push_back(diff_attachments(a, b));
            }
            continue;
        }
        if (a != b) {
            out.push_back(diff_values(field, a, b));
        }
    }
    return out;
}

DivergenceTally::DivergenceTally(std::size_t keep)
    : m_keep(keep) {
    for (auto field : k_compared_fields) {
        m_fields.push_back({std::string(field), 0});
    }
}

void DivergenceTally::add(const std::string& event_id, std::vector<FieldDiff> diffs) {
    ++m_compared;
    if (diffs.empty()) {
        return;
    }
    Event e{event_id, {}, {}};
    for (const auto& d : diffs) {
        e.fields.push_back(d.field);
        for (auto& f : m_fields) {
            if (f.field == d.field) {
                ++f.divergent;
            }
        }
    }
    if (m_events.size() < m_keep) {
        e.diffs = std::move(diffs);
    }
    m_events.push_back(std::move(e));
}

void DivergenceTally::skip(std::string_view reason) {
    for (auto& [r, n] : m_skipped) {
        if (r == reason) {
            ++n;
            return;
        }
    }
    m_skipped.emplace_back(std::string(reason), 1);
}

double DivergenceTally::rate() const {
    return m_compared == 0 ? 0.0
                           : static_cast<double>(m_events.size()) / static_cast<double>(m_compared);
}

double DivergenceTally::rate(const Field& field) const {
    return m_compared == 0 ? 0.0
                           : static_cast<double>(field.divergent) / static_cast<double>(m_compared);
}

bool DivergenceTally::exceeds(double max_rate) const {
    return rate() > max_rate;
}

} // namespace hookctl::mime
