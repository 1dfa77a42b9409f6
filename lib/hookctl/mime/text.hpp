#pragma once
// The parser's pure text helpers: string in, string out, no GMime object, so each is tested
// directly (tests/unit/mime/test_text.cpp).
#include <optional>
#include <string>
#include <string_view>

namespace hookctl::mime {

// `text` with ASCII letters lowered (other bytes as they are): charset and MIME type names.
std::string lowercase(std::string text);

// Whether `charset` (lowercased) names UTF-8 or its subset ASCII: no conversion needed.
bool is_utf8_name(const std::string& charset);

// GMime reads a header's raw 8-bit bytes as UTF-8 (else windows-1252) before it decodes the
// encoded words, so a raw byte inside a Q-encoded word (`=?iso-8859-1?Q?M\xfcller?=`, as some
// senders write) is converted twice ("MÃ¼ller"). Escaping such bytes as `=XX` makes the word
// valid Q, and GMime then decodes it with the word's own charset. Returns the repaired raw
// value, or nothing when there was nothing to repair.
std::optional<std::string> repair_q_words(std::string_view raw);

// False when repair_q_words cannot change `raw` (or its unfolded form, unfolding only removes
// line breaks): it has no 8-bit byte or no "=?". Most headers are so, and skip the unfolding.
// A null `raw` is false.
bool may_need_q_repair(const char* raw);

// Joins the lines of a format=flowed body (RFC 3676): soft line breaks (a trailing space)
// are removed, space-stuffing undone, with DelSp=yes the trailing space itself too.
std::string unflow(const std::string& text, bool delsp);

} // namespace hookctl::mime
