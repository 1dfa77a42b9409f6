#include <array>
#include <cstring>

#include <hookctl/mime/headers.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::mime {

namespace {

constexpr std::array<std::string_view, 12> k_address_fields = {
    "from",        "sender",        "reply-to",        "to",        "cc",        "bcc",
    "resent-from", "resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc",
};

// The length of the address field name that opens the line at `line` ("To" in "To: ..." or
// "To : ..."), with `value` set to the offset just past its ':'; 0 when the line opens no
// address field.
std::size_t address_field_at(std::string_view raw, std::size_t line, std::size_t& value) {
    std::size_t end = line;
    while (end < raw.size() && end - line < 16 && raw[end] != ':' && raw[end] != ' ' &&
           raw[end] != '\t' && raw[end] != '\n') {
        ++end;
    }
    std::size_t colon = end;
    while (colon < raw.size() && (raw[colon] == ' ' || raw[colon] == '\t')) {
        ++colon;
    }
    if (end == line || colon >= raw.size() || raw[colon] != ':') {
        return 0;
    }
    std::string_view name = raw.substr(line, end - line);
    for (std::string_view field : k_address_fields) {
        if (util::iequals(name, field)) {
            value = colon + 1;
            return end - line;
        }
    }
    return 0;
}

} // namespace

std::optional<FlattenedGroups> flatten_deep_groups(std::string_view raw) {
    std::optional<FlattenedGroups> result;
    std::size_t line = 0;
    while (line < raw.size()) {
        std::size_t value = 0;
        std::size_t name_length = address_field_at(raw, line, value);
        if (name_length == 0) {
            const void* newline = std::memchr(raw.data() + line, '\n', raw.size() - line);
            if (newline == nullptr) {
                break;
            }
            line = static_cast<std::size_t>(static_cast<const char*>(newline) - raw.data()) + 1;
            continue;
        }
        // The field's value runs to the end of the last line of its folded continuation.
        std::size_t colons = 0;
        bool first_flagged = false;
        std::size_t i = value;
        for (; i < raw.size(); ++i) {
            char c = raw[i];
            if (c == '\n' && (i + 1 >= raw.size() || (raw[i + 1] != ' ' && raw[i + 1] != '\t'))) {
                break;
            }
            if (c != ':') {
                continue;
            }
            if (++colons > k_max_address_colons) {
                if (!result) {
                    result.emplace();
                    result->bytes.assign(raw);
                    result->field.assign(raw.substr(line, name_length));
                    first_flagged = true;
                }
                result->bytes[i] = ' ';
            }
        }
        if (first_flagged) {
            result->colons = colons;
        }
        line = i + 1;
    }
    return result;
}

} // namespace hookctl::mime
