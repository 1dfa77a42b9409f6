#include <algorithm>
#include <cctype>

#include <hookctl/util/headers.hpp>

namespace hookctl::util {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

void HeaderList::add(std::string name, std::string value) {
    m_entries.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string_view> HeaderList::find(std::string_view name) const {
    for (const auto& [n, v] : m_entries) {
        if (iequals(n, name)) {
            return std::string_view(v);
        }
    }
    return std::nullopt;
}

Result<HeaderList::Entry> parse_header_line(std::string_view line, std::string_view where) {
    auto colon = line.find(':');
    auto name = colon == std::string_view::npos ? std::string_view{} : trim(line.substr(0, colon));
    if (colon == std::string_view::npos || name.empty() ||
        name.find_first_of(" \t") != std::string_view::npos) {
        // Show at most the first 40 characters: enough to find the line, and a header dump
        // could hold a credential further along.
        std::string shown(line.substr(0, 40));
        return fail(ExitCode::usage, std::string(where) + ": '" + shown +
                                         (line.size() > 40 ? "...'" : "'") +
                                         " is not a header: write it as 'Name: value'");
    }
    return HeaderList::Entry{std::string(name), std::string(trim(line.substr(colon + 1)))};
}

Result<HeaderList> parse_header_block(std::string_view text, std::string_view source) {
    HeaderList headers;
    std::size_t line_no = 0;
    bool first_content_line = true;
    std::vector<HeaderList::Entry> entries;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (trim(line).empty()) {
            continue;
        }
        if ((line.front() == ' ' || line.front() == '\t') && !entries.empty()) {
            entries.back().second += " ";
            entries.back().second += trim(line);
            continue;
        }
        if (first_content_line &&
            (line.starts_with("HTTP/") || line.find(" HTTP/") != std::string_view::npos)) {
            first_content_line = false;
            continue;
        }
        if (line.starts_with("HTTP/")) {
            continue; // a later response in a redirect chain dumped by curl -D
        }
        first_content_line = false;
        auto entry =
            parse_header_line(line, std::string(source) + " line " + std::to_string(line_no));
        HOOKCTL_RETURN_IF_ERROR(entry);
        entries.push_back(std::move(*entry));
    }
    if (entries.empty()) {
        return fail(ExitCode::usage,
                    std::string(source) + " holds no headers: give 'Name: value' lines");
    }
    for (auto& [n, v] : entries) {
        headers.add(std::move(n), std::move(v));
    }
    return headers;
}

} // namespace hookctl::util
