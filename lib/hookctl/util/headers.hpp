#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <hookctl/util/error.hpp>

namespace hookctl::util {

// HTTP headers in order, repeats kept; names compare case-insensitively.
class HeaderList {
public:
    using Entry = std::pair<std::string, std::string>;

    void add(std::string name, std::string value);
    // The first value of `name`, if present.
    std::optional<std::string_view> find(std::string_view name) const;
    bool contains(std::string_view name) const { return find(name).has_value(); }
    const std::vector<Entry>& entries() const { return m_entries; }
    bool empty() const { return m_entries.empty(); }

private:
    std::vector<Entry> m_entries;
};

bool iequals(std::string_view a, std::string_view b);

// Trims spaces and tabs at both ends.
std::string_view trim(std::string_view s);

// Parses one `Name: value` line. Fails (exit 2) when there is no colon or the name is empty,
// quoting `where` (e.g. `-H` or `headers.txt line 3`).
Result<HeaderList::Entry> parse_header_line(std::string_view line, std::string_view where);

// Parses a raw header block as copied from a log or a `curl -D` dump: an optional status or
// request line (`HTTP/1.1 200 OK`, `POST /hook HTTP/1.1`) is skipped, CRLF or LF line ends,
// folded continuation lines joined, blank lines ignored. Fails (exit 2) naming the line
// `source` line N that has no colon.
Result<HeaderList> parse_header_block(std::string_view text, std::string_view source);

} // namespace hookctl::util
