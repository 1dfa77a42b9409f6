#pragma once
// Guards on raw header bytes, applied before GMime reads a message.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace hookctl::mime {

// GMime reads each ':' of an address field (From, To, Cc, Bcc, Reply-To, Sender and their
// Resent- forms) as the start of a group and parses a group's members by recursion, with no
// limit: a To field of 100,000 colons overflows the stack. No real field has more than a few
// colons; past this many in one field, the rest are read as spaces.
inline constexpr std::size_t k_max_address_colons = 1000;

struct FlattenedGroups {
    std::string bytes;      // the message with the extra colons turned into spaces
    std::string field;      // the first field that had too many, as written
    std::size_t colons = 0; // how many that field had
};

// Finds address fields (a line starting with the field name, with its folded continuation
// lines) anywhere in `raw` with more than k_max_address_colons colons. Returns nothing when
// there is none, which is the case for real mail; the scan reads each line's start only.
std::optional<FlattenedGroups> flatten_deep_groups(std::string_view raw);

} // namespace hookctl::mime
