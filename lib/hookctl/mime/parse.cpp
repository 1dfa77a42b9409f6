#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <hookctl/mime/base64.hpp>
#include <hookctl/mime/gmime_ptr.hpp>
#include <hookctl/mime/headers.hpp>
#include <hookctl/mime/parse.hpp>
#include <hookctl/mime/store.hpp>
#include <hookctl/mime/text.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::mime {

void ensure_gmime() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

std::string event_id_for(std::string_view raw) {
    return "evt_" + util::hex_encode(util::sha256(raw)).substr(0, 24);
}

namespace {

using nlohmann::json;

constexpr std::size_t k_chunk = 64 * 1024;
constexpr std::size_t k_max_warnings = 100;

// `text` as valid UTF-8: invalid sequences become U+FFFD (GLib's g_utf8_make_valid).
std::string valid_utf8(const char* text, gssize length = -1) {
    if (text == nullptr) {
        return {};
    }
    std::size_t n = length < 0 ? std::strlen(text) : static_cast<std::size_t>(length);
    if (g_utf8_validate_len(text, n, nullptr)) {
        return std::string(text, n);
    }
    GString_ fixed(g_utf8_make_valid(text, static_cast<gssize>(n)));
    return fixed.get();
}

json string_or_null(const char* text) {
    if (text == nullptr) {
        return nullptr;
    }
    return valid_utf8(text);
}

const char* warning_code(GMimeParserWarning code) {
    switch (code) {
    case GMIME_WARN_DUPLICATED_HEADER:
        return "duplicated_header";
    case GMIME_WARN_DUPLICATED_PARAMETER:
        return "duplicated_parameter";
    case GMIME_WARN_UNENCODED_8BIT_HEADER:
        return "unencoded_8bit_header";
    case GMIME_WARN_INVALID_CONTENT_TYPE:
        return "invalid_content_type";
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE:
        return "invalid_rfc2047_header_value";
    case GMIME_WARN_MALFORMED_MULTIPART:
        return "malformed_multipart";
    case GMIME_WARN_TRUNCATED_MESSAGE:
        return "truncated_message";
    case GMIME_WARN_MALFORMED_MESSAGE:
        return "malformed_message";
    case GMIME_CRIT_INVALID_HEADER_NAME:
        return "invalid_header_name";
    case GMIME_CRIT_CONFLICTING_HEADER:
        return "conflicting_header";
    case GMIME_CRIT_CONFLICTING_PARAMETER:
        return "conflicting_parameter";
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
        return "multipart_without_boundary";
    case GMIME_WARN_INVALID_PARAMETER:
        return "invalid_parameter";
    case GMIME_WARN_INVALID_ADDRESS_LIST:
        return "invalid_address_list";
    case GMIME_CRIT_NESTING_OVERFLOW:
        return "nesting_overflow";
    case GMIME_WARN_PART_WITHOUT_CONTENT:
        return "part_without_content";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
        return "part_without_headers_or_content";
    }
    return "parser_warning";
}

const char* warning_text(GMimeParserWarning code) {
    switch (code) {
    case GMIME_WARN_DUPLICATED_HEADER:
        return "a header that should appear once is repeated; the first is used";
    case GMIME_WARN_DUPLICATED_PARAMETER:
        return "a header parameter is repeated";
    case GMIME_WARN_UNENCODED_8BIT_HEADER:
        return "a header holds raw 8-bit bytes; read as UTF-8, else windows-1252";
    case GMIME_WARN_INVALID_CONTENT_TYPE:
        return "invalid Content-Type; read as application/octet-stream";
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE:
        return "invalid RFC 2047 encoded word; decoded leniently";
    case GMIME_WARN_MALFORMED_MULTIPART:
        return "multipart without child parts or without its end boundary";
    case GMIME_WARN_TRUNCATED_MESSAGE:
        return "the message is truncated (missing end boundary?); read up to its end";
    case GMIME_WARN_MALFORMED_MESSAGE:
        return "the message is malformed; read as far as possible";
    case GMIME_CRIT_INVALID_HEADER_NAME:
        return "a header line without a colon or with an invalid name";
    case GMIME_CRIT_CONFLICTING_HEADER:
        return "conflicting repeated header; the first is used";
    case GMIME_CRIT_CONFLICTING_PARAMETER:
        return "conflicting repeated header parameter";
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
        return "multipart without a boundary parameter; read as a single part";
    case GMIME_WARN_INVALID_PARAMETER:
        return "invalid header parameter";
    case GMIME_WARN_INVALID_ADDRESS_LIST:
        return "invalid address list; read as far as possible";
    case GMIME_CRIT_NESTING_OVERFLOW:
        return "MIME nesting too deep; deeper parts read as opaque data";
    case GMIME_WARN_PART_WITHOUT_CONTENT:
        return "a part's headers end at a boundary (part without content)";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
        return "a part without headers or content";
    }
    return "parser warning";
}

// Everything one parse collects besides what GMime's objects hold.
struct Collector {
    json warnings = json::array();
    std::vector<std::pair<std::string, std::string>> seen;
    std::optional<std::string> text;
    std::optional<std::string> html;
    json attachments = json::array();
    std::string store_dir;
    std::uint64_t inline_max = 0;
    std::optional<Error> failure;

    void warn(const std::string& code, const std::string& message,
              std::optional<std::int64_t> offset = std::nullopt) {
        for (const auto& [c, m] : seen) {
            if (c == code && m == message) {
                return;
            }
        }
        if (warnings.size() >= k_max_warnings) {
            return;
        }
        seen.emplace_back(code, message);
        json w = {{"code", code}, {"message", message}};
        if (offset) {
            w["offset"] = *offset;
        }
        warnings.push_back(std::move(w));
    }
};

void on_parser_warning(gint64 offset, GMimeParserWarning code, const gchar* item,
                       gpointer user_data) {
    auto* collector = static_cast<Collector*>(user_data);
    std::string message = warning_text(code);
    if (item != nullptr && *item != '\0') {
        // Only the first 80 bytes are shown, and GMime may pass the rest of the header or of the
        // message as the item: validating all of it for every warning took most of a corpus
        // parse. Bytes past the 84th cannot reach the first 80 of the repaired text (a byte
        // never shrinks in repair and a sequence is at most 4 bytes long), so the prefix gives
        // the same text as the whole.
        std::string shown = valid_utf8(item, static_cast<gssize>(strnlen(item, 84)));
        if (shown.size() > 80) {
            shown = shown.substr(0, 80) + "…";
            shown = valid_utf8(shown.c_str());
        }
        message += " (" + shown + ")";
    }
    collector->warn(warning_code(code), message,
                    offset >= 0 ? std::optional<std::int64_t>(offset) : std::nullopt);
}

OwnedParserOptions make_parser_options(Collector& collector) {
    OwnedParserOptions options(g_mime_parser_options_new());
    g_mime_parser_options_set_address_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_rfc2047_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(options.get(), TRUE);
    static const char* fallback[] = {"UTF-8", "windows-1252", nullptr};
    g_mime_parser_options_set_fallback_charsets(options.get(), fallback);
    g_mime_parser_options_set_warning_callback(options.get(), on_parser_warning, &collector);
    return options;
}

// The mailbox's address with its domain in IDNA ASCII form, as
// internet_address_mailbox_get_idn_addr gives it, without that function's libidn2 pass (1.3%
// of a corpus parse) when the domain is ASCII and has no "xn--" label: GMime then keeps the
// domain as it is (libidn2 gives it back equal up to case, or refuses it). GMime's parser has
// already decoded "xn--" labels in the address, so such domains take the slow path.
const char* ascii_addr(InternetAddressMailbox* mailbox) {
    const char* addr = internet_address_mailbox_get_addr(mailbox);
    auto at = static_cast<std::size_t>(std::max(mailbox->at, 0));
    if (addr == nullptr || at == 0 || at >= std::strlen(addr) || addr[at] != '@') {
        return internet_address_mailbox_get_idn_addr(mailbox);
    }
    std::string_view domain(addr + at + 1);
    bool ascii = std::all_of(domain.begin(), domain.end(),
                             [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    bool punycode = false;
    for (std::size_t i = 0; ascii && !punycode && i + 4 <= domain.size(); ++i) {
        punycode = g_ascii_strncasecmp(domain.data() + i, "xn--", 4) == 0;
    }
    return ascii && !punycode ? addr : internet_address_mailbox_get_idn_addr(mailbox);
}

// Appends the mailboxes of `list` to `out` as {name, address}; group members are flattened
// and carry the group's name in `group`.
void add_addresses(InternetAddressList* list, json& out, const char* group = nullptr) {
    if (list == nullptr) {
        return;
    }
    int count = internet_address_list_length(list);
    for (int i = 0; i < count; ++i) {
        InternetAddress* address = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(address)) {
            add_addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(address)), out,
                          internet_address_get_name(address));
            continue;
        }
        if (!INTERNET_ADDRESS_IS_MAILBOX(address)) {
            continue;
        }
        const char* name = internet_address_get_name(address);
        const char* addr = ascii_addr(INTERNET_ADDRESS_MAILBOX(address));
        json entry = {{"name", name != nullptr && *name != '\0' ? json(valid_utf8(name)) : json()},
                      {"address", valid_utf8(addr)}};
        if (group != nullptr) {
            entry["group"] = valid_utf8(group);
        }
        out.push_back(std::move(entry));
    }
}

json address_list(InternetAddressList* list) {
    json out = json::array();
    add_addresses(list, out);
    return out;
}

// Streams the bytes of `raw` (base64-decoded when `base64`) into `sink`, as reading a GMime
// filter stream with only the basic decoding filter gave them, without that stream: read in
// its chunks of 4096 bytes (GMime's base64 step treats a '=' relative to the end of each
// chunk), decoded by base64_decode_step four characters at a time, and ended, as such a read
// loop ends, at the first chunk that decodes to nothing.
template <class Sink> bool read_plain_or_base64(GMimeStream* raw, bool base64, Sink& sink) {
    constexpr std::size_t k_read = 4096; // GMimeStreamFilter's READ_SIZE
    std::array<unsigned char, k_read> in{};
    std::array<unsigned char, k_read / 4 * 3 + 4> out{};
    int state = 0;
    std::uint32_t save = 0;
    for (;;) {
        ssize_t n = g_mime_stream_read(raw, reinterpret_cast<char*>(in.data()), k_read);
        if (n <= 0) {
            return true; // the flush of a base64 step at the end writes nothing
        }
        std::string_view chunk(reinterpret_cast<const char*>(in.data()),
                               static_cast<std::size_t>(n));
        if (base64) {
            std::size_t m =
                base64_decode_step(in.data(), static_cast<std::size_t>(n), out.data(), state, save);
            chunk = std::string_view(reinterpret_cast<const char*>(out.data()), m);
        }
        if (chunk.empty()) {
            return true; // a read of the filter stream returns 0 then, which ended the part
        }
        if (!sink(chunk)) {
            return false;
        }
    }
}

// Streams the transfer-decoded content of `part` through `filters` (appended after the
// transfer decoder) into `sink(std::string_view)`. Returns false when `sink` failed.
template <class Sink>
bool read_decoded(GMimePart* part, const std::vector<GMimeFilter*>& filters, Sink&& sink) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (content == nullptr) {
        return true;
    }
    GMimeStream* raw = g_mime_data_wrapper_get_stream(content);
    if (raw == nullptr) {
        return true;
    }
    g_mime_stream_reset(raw);
    GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(content);
    if (filters.empty() && encoding != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
        encoding != GMIME_CONTENT_ENCODING_UUENCODE) {
        return read_plain_or_base64(raw, encoding == GMIME_CONTENT_ENCODING_BASE64, sink);
    }
    Owned<GMimeStream> filtered(g_mime_stream_filter_new(raw));
    auto* filter_stream = GMIME_STREAM_FILTER(filtered.get());
    if (encoding == GMIME_CONTENT_ENCODING_BASE64 ||
        encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
        Owned<GMimeFilter> decoder(g_mime_filter_basic_new(encoding, FALSE));
        g_mime_stream_filter_add(filter_stream, decoder.get());
    }
    for (GMimeFilter* filter : filters) {
        g_mime_stream_filter_add(filter_stream, filter);
    }
    auto buffer = std::make_unique_for_overwrite<char[]>(k_chunk); // not zeroed: 64 KiB a part
    for (;;) {
        ssize_t n = g_mime_stream_read(filtered.get(), buffer.get(), k_chunk);
        if (n <= 0) {
            break;
        }
        if (!sink(std::string_view(buffer.get(), static_cast<std::size_t>(n)))) {
            return false;
        }
    }
    return true;
}

// The decoded text of a text part in UTF-8: the declared charset converted by GMime's charset
// filter (iso-8859-1 and us-ascii read as their superset windows-1252, as mail clients do),
// invalid bytes replaced with U+FFFD (and a warning), format=flowed joined.
std::string text_of(GMimePart* part, Collector& collector, const std::string& where) {
    GMimeObject* object = GMIME_OBJECT(part);
    const char* declared = g_mime_object_get_content_type_parameter(object, "charset");
    std::string charset = declared != nullptr ? lowercase(declared) : "";
    if (charset == "iso-8859-1" || charset == "latin1" || charset == "iso8859-1" ||
        charset == "us-ascii" || charset == "ascii") {
        charset = "windows-1252";
    }
    std::vector<GMimeFilter*> filters;
    Owned<GMimeFilter> converter;
    if (!charset.empty() && !is_utf8_name(charset)) {
        converter.reset(g_mime_filter_charset_new(charset.c_str(), "UTF-8"));
        if (converter) {
            filters.push_back(converter.get());
        } else {
            collector.warn("unknown_charset", where + ": unknown charset \"" +
                                                  valid_utf8(declared) +
                                                  "\"; read as UTF-8, else windows-1252");
        }
    }
    // Line endings as LF, so CRLF and LF copies of a message give the same text.
    Owned<GMimeFilter> to_lf(g_mime_filter_dos2unix_new(FALSE));
    filters.push_back(to_lf.get());
    std::string bytes;
    read_decoded(part, filters, [&](std::string_view chunk) {
        bytes.append(chunk);
        return true;
    });
    if (!g_utf8_validate_len(bytes.data(), bytes.size(), nullptr)) {
        if (!converter && (charset.empty() || !is_utf8_name(charset))) {
            // No usable charset and not UTF-8: the commonest 8-bit charset of mail.
            Owned<GMimeFilter> fallback(g_mime_filter_charset_new("windows-1252", "UTF-8"));
            std::string converted;
            Owned<GMimeFilter> again_lf(g_mime_filter_dos2unix_new(FALSE));
            std::vector<GMimeFilter*> again{fallback.get(), again_lf.get()};
            read_decoded(part, again, [&](std::string_view chunk) {
                converted.append(chunk);
                return true;
            });
            if (charset.empty()) {
                collector.warn("undeclared_charset",
                               where + ": 8-bit text without a charset; read as windows-1252");
            }
            bytes = std::move(converted);
        }
        if (!g_utf8_validate_len(bytes.data(), bytes.size(), nullptr)) {
            collector.warn("invalid_bytes", where + ": bytes invalid in charset \"" +
                                                (declared ? valid_utf8(declared) : "UTF-8") +
                                                "\" replaced with U+FFFD");
            bytes = valid_utf8(bytes.data(), static_cast<gssize>(bytes.size()));
        }
    }
    const char* format = g_mime_object_get_content_type_parameter(object, "format");
    if (format != nullptr && g_ascii_strcasecmp(format, "flowed") == 0) {
        const char* delsp = g_mime_object_get_content_type_parameter(object, "delsp");
        bytes = unflow(bytes, delsp != nullptr && g_ascii_strcasecmp(delsp, "yes") == 0);
    }
    return bytes;
}

std::string mime_type_of(GMimeObject* object) {
    GMimeContentType* type = g_mime_object_get_content_type(object);
    if (type == nullptr) {
        return "application/octet-stream";
    }
    GString_ mime(g_mime_content_type_get_mime_type(type));
    return lowercase(valid_utf8(mime.get()));
}

// Describes `object` (a leaf part or a message/rfc822 part) as an attachment, streaming its
// decoded bytes through the hash and, when asked, into the store.
void add_attachment(GMimeObject* object, Collector& collector) {
    if (collector.failure) {
        return;
    }
    json entry;
    const char* filename = nullptr;
    if (GMIME_IS_PART(object)) {
        filename = g_mime_part_get_filename(GMIME_PART(object));
    } else {
        filename = g_mime_object_get_content_disposition_parameter(object, "filename");
        if (filename == nullptr) {
            filename = g_mime_object_get_content_type_parameter(object, "name");
        }
    }
    const char* content_id = g_mime_object_get_content_id(object);
    const char* disposition = g_mime_object_get_disposition(object);
    entry["filename"] = string_or_null(filename);
    entry["content_type"] = mime_type_of(object);
    entry["disposition"] = disposition != nullptr  ? json(lowercase(valid_utf8(disposition)))
                           : content_id != nullptr ? json("inline")
                                                   : json("attachment");
    entry["content_id"] = string_or_null(content_id);

    BlobWriter writer(collector.store_dir, collector.inline_max);
    std::optional<Error> write_error;
    auto sink = [&](std::string_view chunk) {
        if (auto r = writer.write(chunk); !r) {
            write_error = r.error();
            return false;
        }
        return true;
    };
    if (GMIME_IS_PART(object)) {
        read_decoded(GMIME_PART(object), {}, sink);
    } else if (GMIME_IS_MESSAGE_PART(object)) {
        GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
        if (inner != nullptr) {
            Owned<GMimeStream> memory(g_mime_stream_mem_new());
            g_mime_object_write_to_stream(GMIME_OBJECT(inner), nullptr, memory.get());
            GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(memory.get()));
            sink(std::string_view(reinterpret_cast<const char*>(bytes->data), bytes->len));
        }
    }
    if (write_error) {
        collector.failure = write_error;
        return;
    }
    auto blob = writer.finish();
    if (!blob) {
        collector.failure = blob.error();
        return;
    }
    entry["size"] = blob->size;
    entry["sha256"] = blob->sha256;
    entry["storage_key"] = blob->storage_key ? json(*blob->storage_key) : json();
    if (blob->content) {
        entry["content_base64"] = util::base64_encode(*blob->content);
    }
    collector.attachments.push_back(std::move(entry));
}

// Every leaf under `object` as an attachment (signatures, encrypted parts, related resources).
void attach_all(GMimeObject* object, Collector& collector) {
    if (GMIME_IS_MULTIPART(object)) {
        auto* multipart = GMIME_MULTIPART(object);
        int count = g_mime_multipart_get_count(multipart);
        for (int i = 0; i < count; ++i) {
            attach_all(g_mime_multipart_get_part(multipart, i), collector);
        }
        return;
    }
    add_attachment(object, collector);
}

bool is_body_candidate(GMimeObject* object, bool& is_html) {
    if (!GMIME_IS_PART(object)) {
        return false;
    }
    GMimeContentType* type = g_mime_object_get_content_type(object);
    bool plain = g_mime_content_type_is_type(type, "text", "plain");
    is_html = g_mime_content_type_is_type(type, "text", "html");
    if (!plain && !is_html) {
        return false;
    }
    const char* disposition = g_mime_object_get_disposition(object);
    if (disposition != nullptr && g_ascii_strcasecmp(disposition, "attachment") == 0) {
        return false;
    }
    return g_mime_part_get_filename(GMIME_PART(object)) == nullptr;
}

std::string part_label(GMimeObject* object) {
    return mime_type_of(object) + " part";
}

// Walks the MIME tree the way mail clients pick what to show. Only the first child of a
// multipart/mixed (or of any multipart that is not alternative) that is not marked as an
// attachment may start the body (`may_start`); the first text/plain and text/html found there
// become `text` and `html`.
// Later inline parts of a type the body already has are appended to it (Apple Mail splits an
// HTML body around inline images); other later text parts are attachments. multipart/related
// keeps its root as the body and its other parts as inline attachments; multipart/signed
// shows its first part; message/rfc822 parts stay attachments; everything else is an
// attachment.
void walk(GMimeObject* object, Collector& collector, bool may_start) {
    if (GMIME_IS_MULTIPART(object)) {
        auto* multipart = GMIME_MULTIPART(object);
        int count = g_mime_multipart_get_count(multipart);
        if (GMIME_IS_MULTIPART_ENCRYPTED(object)) {
            attach_all(object, collector);
            return;
        }
        GMimeContentType* type = g_mime_object_get_content_type(object);
        bool alternative = g_mime_content_type_is_type(type, "multipart", "alternative");
        int root = -1;
        if (GMIME_IS_MULTIPART_SIGNED(object)) {
            root = 0;
        } else if (g_mime_content_type_is_type(type, "multipart", "related") && count > 0) {
            root = 0;
            const char* start = g_mime_object_get_content_type_parameter(object, "start");
            if (start != nullptr) {
                std::string id = start;
                if (id.size() > 2 && id.front() == '<' && id.back() == '>') {
                    id = id.substr(1, id.size() - 2);
                }
                for (int i = 0; i < count; ++i) {
                    const char* cid =
                        g_mime_object_get_content_id(g_mime_multipart_get_part(multipart, i));
                    if (cid != nullptr && id == cid) {
                        root = i;
                        break;
                    }
                }
            }
        }
        // In a mixed multipart the body starts at the first part that is not marked as an
        // attachment (a leading attachment does not keep the text after it out of the body).
        bool only_attachments_before = true;
        for (int i = 0; i < count; ++i) {
            GMimeObject* child = g_mime_multipart_get_part(multipart, i);
            if (root >= 0 && i != root) {
                attach_all(child, collector);
            } else {
                walk(child, collector,
                     may_start && (only_attachments_before || alternative || root >= 0));
            }
            const char* disposition = g_mime_object_get_disposition(child);
            if (disposition == nullptr || g_ascii_strcasecmp(disposition, "attachment") != 0) {
                only_attachments_before = false;
            }
        }
        return;
    }
    bool is_html = false;
    if (is_body_candidate(object, is_html)) {
        std::optional<std::string>& slot = is_html ? collector.html : collector.text;
        if (!slot && may_start) {
            slot = text_of(GMIME_PART(object), collector, part_label(object));
            return;
        }
        if (slot) {
            if (!is_html && !slot->empty() && slot->back() != '\n') {
                *slot += '\n';
            }
            *slot += text_of(GMIME_PART(object), collector, part_label(object));
            return;
        }
    }
    add_attachment(object, collector);
}

// The length of the lines made only of spaces and tabs at the start of `stream` (some exporters
// write one before the headers; GMime would then see no header block at all). An empty line
// is never skipped: it ends an empty header block. Looks at the first 64 KiB at most.
gint64 leading_blank_lines(GMimeStream* stream) {
    g_mime_stream_reset(stream);
    std::array<char, 4096> buffer{};
    gint64 offset = 0;
    gint64 skip = 0;
    bool blank_chars = false; // the current line has a space or a tab, and nothing else yet
    while (offset < 65536) {
        ssize_t n = g_mime_stream_read(stream, buffer.data(), buffer.size());
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n; ++i, ++offset) {
            char c = buffer[static_cast<std::size_t>(i)];
            if (c == ' ' || c == '\t') {
                blank_chars = true;
            } else if (c == '\n' && blank_chars) {
                skip = offset + 1;
                blank_chars = false;
            } else if (c != '\r') {
                g_mime_stream_reset(stream);
                return skip;
            } else if (!blank_chars) { // "\r" at the start of a line: an empty line is next
                g_mime_stream_reset(stream);
                return skip;
            }
        }
    }
    g_mime_stream_reset(stream);
    return skip;
}

struct DateTimeUnref {
    void operator()(GDateTime* value) const {
        if (value != nullptr) {
            g_date_time_unref(value);
        }
    }
};

// Builds the event from a parsed stream; `raw` describes the raw message already hashed.
// `bytes` are the bytes `stream` reads (the whole message), for the guards that look at them
// before GMime does.
Result<json> build_event(GMimeStream* stream, std::string_view bytes, const Blob& raw,
                         const ParseOptions& options) {
    if (auto checked = check_options(options); !checked) {
        return std::unexpected(checked.error());
    }
    std::string received_at =
        options.received_at ? *options.received_at : util::format_time_s(util::unix_now_s());

    Collector collector;
    collector.store_dir = options.attachments_dir.value_or("");
    collector.inline_max = options.inline_attachments_max;
    OwnedParserOptions parser_options = make_parser_options(collector);

    // GMime would recurse once per colon of an address field: a field with too many is read
    // from a copy where the extra ones are spaces.
    std::optional<FlattenedGroups> flattened = flatten_deep_groups(bytes);
    Owned<GMimeStream> flattened_stream;
    if (flattened) {
        collector.warn("address_groups_flattened",
                       flattened->field + " has " + std::to_string(flattened->colons) +
                           " colons (groups), more than the " +
                           std::to_string(k_max_address_colons) +
                           " read as groups; the colons after those were read as spaces");
        flattened_stream.reset(
            g_mime_stream_mem_new_with_buffer(flattened->bytes.data(), flattened->bytes.size()));
        stream = flattened_stream.get();
    }

    Owned<GMimeStream> after_blank_lines;
    if (gint64 skip = leading_blank_lines(stream); skip > 0) {
        after_blank_lines.reset(g_mime_stream_substream(stream, skip, -1));
        collector.warn("leading_blank_lines", "lines of only spaces before the headers (" +
                                                  std::to_string(skip) + " bytes) were skipped");
    }
    GMimeStream* source = after_blank_lines ? after_blank_lines.get() : stream;
    g_mime_stream_reset(source);
    Owned<GMimeParser> parser(g_mime_parser_new_with_stream(source));
    g_mime_parser_set_persist_stream(parser.get(), TRUE);
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
    Owned<GMimeMessage> message(
        g_mime_parser_construct_message(parser.get(), parser_options.get()));

    json event;
    event["schema_version"] = "1";
    event["type"] = "email.received";
    event["event_id"] = "evt_" + raw.sha256.substr(0, 24);
    event["org_id"] = options.org_id;
    event["received_at"] = received_at;
    event["trace_id"] = options.trace_id ? *options.trace_id : util::hex_encode(util::id_bytes(16));
    event["raw_mime"] = {{"size", raw.size},
                         {"sha256", raw.sha256},
                         {"storage_key", raw.storage_key ? json(*raw.storage_key) : json()}};
    event["message_id"] = nullptr;
    event["from"] = nullptr;
    event["sender"] = nullptr;
    event["to"] = json::array();
    event["cc"] = json::array();
    event["reply_to"] = json::array();
    event["subject"] = nullptr;
    event["date"] = nullptr;
    event["headers"] = json::array();
    event["text"] = nullptr;
    event["html"] = nullptr;
    event["attachments"] = json::array();

    if (raw.size == 0) {
        // Nothing to parse is an input error (exit 2), as a missing file is.
        return fail(ExitCode::usage, "the input is empty: no message to parse (give an .eml "
                                     "file, or pipe a message in)");
    }
    if (!message) {
        collector.warn("unparseable", "GMime found no message structure in the input; only "
                                      "raw_mime is described");
        event["warnings"] = std::move(collector.warnings);
        return event;
    }

    GMimeHeaderList* headers = g_mime_object_get_header_list(GMIME_OBJECT(message.get()));
    int header_count = headers != nullptr ? g_mime_header_list_get_count(headers) : 0;
    bool has_date = false;
    // First occurrence of each header whose raw value needed repair_q_words, by lowercase name.
    std::map<std::string, std::string> repaired;
    for (int i = 0; i < header_count; ++i) {
        GMimeHeader* header = g_mime_header_list_get_header_at(headers, i);
        const char* name = g_mime_header_get_name(header);
        const char* value = g_mime_header_get_value(header);
        if (name != nullptr && g_ascii_strcasecmp(name, "Date") == 0) {
            has_date = true;
        }
        const char* raw_value = g_mime_header_get_raw_value(header);
        GString_ unfolded(may_need_q_repair(raw_value) ? g_mime_utils_header_unfold(raw_value)
                                                       : nullptr);
        if (auto fixed = unfolded ? repair_q_words(unfolded.get()) : std::nullopt) {
            GString_ decoded(g_mime_utils_header_decode_text(parser_options.get(), fixed->c_str()));
            event["headers"].push_back(
                json::array({valid_utf8(name), valid_utf8(g_strstrip(decoded.get()))}));
            GString_ lower(g_ascii_strdown(name != nullptr ? name : "", -1));
            repaired.emplace(lower.get(), std::move(*fixed));
            continue;
        }
        event["headers"].push_back(json::array({valid_utf8(name), valid_utf8(value)}));
    }
    // The mailboxes of an address header: GMime's, or parsed again from the repaired value.
    auto addresses = [&](const char* lower_name, InternetAddressList* parsed) {
        if (auto it = repaired.find(lower_name); it != repaired.end()) {
            Owned<InternetAddressList> list(
                internet_address_list_parse(parser_options.get(), it->second.c_str()));
            return address_list(list.get());
        }
        return address_list(parsed);
    };
    if (header_count == 0) {
        collector.warn("no_headers", "the message has no header fields");
    }

    json from = addresses("from", g_mime_message_get_from(message.get()));
    if (!from.empty()) {
        event["from"] = from.front();
        if (from.size() > 1) {
            collector.warn("several_from", "From names " + std::to_string(from.size()) +
                                               " mailboxes; `from` is the first");
        }
    }
    json sender = addresses("sender", g_mime_message_get_sender(message.get()));
    if (!sender.empty()) {
        event["sender"] = sender.front();
    }
    event["to"] = addresses("to", g_mime_message_get_to(message.get()));
    event["cc"] = addresses("cc", g_mime_message_get_cc(message.get()));
    event["reply_to"] = addresses("reply-to", g_mime_message_get_reply_to(message.get()));
    if (auto it = repaired.find("subject"); it != repaired.end()) {
        GString_ decoded(g_mime_utils_header_decode_text(parser_options.get(), it->second.c_str()));
        event["subject"] = valid_utf8(g_strstrip(decoded.get()));
    } else {
        event["subject"] = string_or_null(g_mime_message_get_subject(message.get()));
    }
    event["message_id"] = string_or_null(g_mime_message_get_message_id(message.get()));

    if (GDateTime* date = g_mime_message_get_date(message.get()); date != nullptr) {
        GString_ text(g_date_time_format(date, "%Y-%m-%dT%H:%M:%S%:z"));
        event["date"] = string_or_null(text.get());
    } else if (has_date) {
        collector.warn("invalid_date", "the Date header cannot be read as a date; `date` is null");
    }

    if (GMimeObject* body = g_mime_message_get_mime_part(message.get()); body != nullptr) {
        walk(body, collector, true);
    }
    if (collector.failure) {
        return std::unexpected(*collector.failure);
    }
    event["text"] = collector.text ? json(*collector.text) : json();
    event["html"] = collector.html ? json(*collector.html) : json();
    event["attachments"] = std::move(collector.attachments);
    event["warnings"] = std::move(collector.warnings);
    return event;
}

// Reads `stream` once from the start: hash, size, and (with a store) the raw message file.
Result<Blob> describe_raw(GMimeStream* stream, const ParseOptions& options) {
    BlobWriter writer(options.attachments_dir.value_or(""), 0);
    g_mime_stream_reset(stream);
    auto buffer = std::make_unique_for_overwrite<char[]>(k_chunk);
    for (;;) {
        ssize_t n = g_mime_stream_read(stream, buffer.get(), k_chunk);
        if (n <= 0) {
            break;
        }
        if (auto r = writer.write(std::string_view(buffer.get(), static_cast<std::size_t>(n)));
            !r) {
            return std::unexpected(r.error());
        }
    }
    return writer.finish();
}

// Frees a GByteArray that borrowed its bytes, leaving the bytes alone.
struct BorrowedArrayFree {
    void operator()(GByteArray* array) const {
        if (array != nullptr) {
            [[maybe_unused]] guint8* bytes = g_byte_array_free(array, FALSE);
        }
    }
};

} // namespace

Result<void> check_options(const ParseOptions& options) {
    if (options.received_at) {
        std::unique_ptr<GDateTime, DateTimeUnref> parsed(
            g_date_time_new_from_iso8601(options.received_at->c_str(), nullptr));
        if (!parsed) {
            return fail(ExitCode::usage, "received_at \"" + *options.received_at +
                                             "\" is not an RFC 3339 time with a zone; use for "
                                             "example 2026-01-31T12:00:00Z");
        }
    }
    return {};
}

Result<nlohmann::json> parse_message(std::string_view raw, const ParseOptions& options) {
    ensure_gmime();
    if (raw.size() > G_MAXUINT) {
        return fail(ExitCode::usage, "the message is larger than 4 GiB; GMime cannot read it");
    }
    BlobWriter writer(options.attachments_dir.value_or(""), 0);
    if (auto r = writer.write(raw); !r) {
        return std::unexpected(r.error());
    }
    auto blob = writer.finish();
    HOOKCTL_RETURN_IF_ERROR(blob);
    // GMime reads `raw` in place, where g_mime_stream_mem_new_with_buffer would copy it first.
    // The array only borrows the bytes: the stream does not own it, GMime never writes to it,
    // and it is released without freeing them.
    auto* bytes = reinterpret_cast<guint8*>(const_cast<char*>(raw.data()));
    std::unique_ptr<GByteArray, BorrowedArrayFree> array(g_byte_array_new_take(bytes, raw.size()));
    Owned<GMimeStream> stream(g_mime_stream_mem_new_with_byte_array(array.get()));
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream.get()), FALSE);
    auto event = build_event(stream.get(), raw, *blob, options);
    stream.reset(); // before the array it reads
    return event;
}

Result<nlohmann::json> parse_file(const std::string& path, const ParseOptions& options) {
    ensure_gmime();
    if (path == "-") {
        auto raw = util::read_file(path);
        HOOKCTL_RETURN_IF_ERROR(raw);
        return parse_message(*raw, options);
    }
    util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return fail(ExitCode::usage, "cannot open " + path + ": " + std::strerror(errno) +
                                         " (check the path and its permissions)");
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        // Not mappable (pipe, empty file): read it into memory instead.
        auto raw = util::read_file(path);
        HOOKCTL_RETURN_IF_ERROR(raw);
        return parse_message(*raw, options);
    }
    // The message stays in the page cache: GMime's mmap stream plus a persistent parser keep
    // only offsets, and parts are decoded chunk by chunk.
    Owned<GMimeStream> stream(g_mime_stream_mmap_new(fd.get(), PROT_READ, MAP_PRIVATE));
    if (!stream) {
        return fail(ExitCode::usage, "cannot map " + path + ": " + std::strerror(errno));
    }
    fd.release(); // the stream owns the descriptor now
    auto blob = describe_raw(stream.get(), options);
    HOOKCTL_RETURN_IF_ERROR(blob);
    const auto* mapped = GMIME_STREAM_MMAP(stream.get());
    return build_event(stream.get(), std::string_view(mapped->map, mapped->maplen), *blob, options);
}

} // namespace hookctl::mime
