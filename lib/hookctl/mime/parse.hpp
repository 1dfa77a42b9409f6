#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <hookctl/util/error.hpp>

namespace hookctl::mime {

// How a raw message becomes the schema_version "1" email event (DESIGN.md §6).
struct ParseOptions {
    std::string org_id;                         // `org_id` of the event
    std::optional<std::string> received_at;     // RFC 3339; default: now (UTC)
    std::optional<std::string> attachments_dir; // when set, attachments and the raw message
                                                // are written there, content-addressed
    std::uint64_t inline_attachments_max = 0;   // embed base64 `content` for attachments of at
                                                // most this many bytes (0: never)
    std::optional<std::string> trace_id;        // default: derived from the event id
};

// Checks `options` once before many messages: fails (exit 2) on a malformed `received_at`.
Result<void> check_options(const ParseOptions& options);

// Parses one raw message into the event JSON. GMime reads anything, so this fails only when
// the input is empty or `received_at` is malformed (exit 2), or the attachment store cannot be
// written (exit 4); oddities in the message become entries of `warnings`.
Result<nlohmann::json> parse_message(std::string_view raw, const ParseOptions& options);

// Like parse_message for a file on disk (`-` for stdin), streaming: the file is not held in
// memory, attachments are hashed (and written) while they are decoded. Fails (exit 2) when
// the file cannot be read.
Result<nlohmann::json> parse_file(const std::string& path, const ParseOptions& options);

// Called once per message with its raw bytes and a label naming it (path, or path:index for
// an mbox). An error returned stops the walk and is returned by for_each_message.
using MessageVisitor = std::function<Result<void>(std::string_view raw, const std::string& label)>;

// Splits `path` into messages: a single .eml file (or `-` for stdin), a directory of files
// (recursively, sorted by name), a Maildir (cur/ and new/), or an mbox file ("From " lines).
// Fails (exit 2) when `path` cannot be read.
Result<void> for_each_message(const std::string& path, const MessageVisitor& each);

// "evt_" + the first 24 hex digits of the SHA-256 of `raw`.
std::string event_id_for(std::string_view raw);

} // namespace hookctl::mime
