#include <algorithm>

#include <hookctl/mime/text.hpp>

namespace hookctl::mime {

std::string lowercase(std::string text) {
    for (char& c : text) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return text;
}

bool is_utf8_name(const std::string& charset) {
    return charset == "utf-8" || charset == "utf8" || charset == "us-ascii" || charset == "ascii";
}

std::optional<std::string> repair_q_words(std::string_view raw) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    std::string out;
    bool changed = false;
    std::size_t i = 0;
    while (i < raw.size()) {
        auto start = raw.find("=?", i);
        auto q1 = start == std::string_view::npos ? start : raw.find('?', start + 2);
        bool q_word = q1 != std::string_view::npos && q1 + 2 < raw.size() && raw[q1 + 2] == '?' &&
                      (raw[q1 + 1] == 'q' || raw[q1 + 1] == 'Q');
        auto end = q_word ? raw.find("?=", q1 + 3) : std::string_view::npos;
        if (end == std::string_view::npos) {
            out.append(raw.substr(i));
            break;
        }
        auto word = raw.substr(start, end + 2 - start);
        if (std::any_of(word.begin(), word.end(), is_space)) { // not one encoded word
            out.append(raw.substr(i, start + 2 - i));
            i = start + 2;
            continue;
        }
        out.append(raw.substr(i, q1 + 3 - i));
        for (std::size_t k = q1 + 3; k < end; ++k) {
            auto c = static_cast<unsigned char>(raw[k]);
            if (c >= 0x80) {
                out += '=';
                out += k_hex[c >> 4U];
                out += k_hex[c & 0xfU];
                changed = true;
            } else {
                out += raw[k];
            }
        }
        out.append("?=");
        i = end + 2;
    }
    if (!changed) {
        return std::nullopt;
    }
    return out;
}

// False when repair_q_words cannot change `raw` (or its unfolded form, unfolding only removes
// line breaks): it has no 8-bit byte or no "=?". Most headers are so, and skip the unfolding.
bool may_need_q_repair(const char* raw) {
    if (raw == nullptr) {
        return false;
    }
    std::string_view text(raw);
    return text.find("=?") != std::string_view::npos &&
           std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

std::string unflow(const std::string& text, bool delsp) {
    std::string out;
    out.reserve(text.size());
    std::size_t pos = 0;
    bool joining = false;
    std::size_t joining_depth = 0;
    while (pos <= text.size()) {
        std::size_t end = text.find('\n', pos);
        bool last = end == std::string::npos;
        std::string line = text.substr(pos, last ? std::string::npos : end - pos);
        pos = last ? text.size() + 1 : end + 1;
        if (last && line.empty()) {
            break;
        }
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        std::size_t depth = 0;
        while (depth < line.size() && line[depth] == '>') {
            ++depth;
        }
        std::string quote = line.substr(0, depth);
        std::string body = line.substr(depth);
        if (!body.empty() && body.front() == ' ') {
            body.erase(0, 1); // space-stuffing
        }
        if (joining && depth != joining_depth) {
            out += '\n'; // quote depth changed: the soft break was not one
            joining = false;
        }
        if (!joining) {
            out += quote;
            if (depth > 0) {
                out += ' ';
            }
        }
        bool soft = !body.empty() && body.back() == ' ' && body != "-- ";
        if (soft && delsp) {
            body.pop_back();
        }
        out += body;
        if (soft) {
            joining = true;
            joining_depth = depth;
        } else {
            joining = false;
            if (!last) {
                out += '\n';
            }
        }
    }
    return out;
}

} // namespace hookctl::mime
