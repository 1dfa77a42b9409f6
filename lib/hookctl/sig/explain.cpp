#include <algorithm>
#include <cstdlib>
#include <limits>

#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/keyring_file.hpp>
#include <hookctl/sig/explain.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::sig {
namespace {

using keys::Key;
using keys::KeyKind;
using keys::SecretBytes;
using keys::SecretEncoding;
using ojson = nlohmann::ordered_json;

// A tolerance no timestamp exceeds: the candidates are judged on the signature alone.
constexpr std::chrono::seconds k_any_age{std::numeric_limits<std::int64_t>::max()};
// Timestamps at or beyond this many seconds (the year 5138) are milliseconds.
constexpr std::int64_t k_millisecond_threshold = 100'000'000'000;
// The millisecond-signing candidate tries a thousand timestamps: only for bodies this small.
constexpr std::size_t k_millisecond_body_limit = 64 * 1024;

// True when some signature in `headers`, read as `scheme`, matches one of `keys` over `body`,
// whatever the age of the timestamp.
bool matches(Scheme scheme, std::int64_t now, const util::HeaderList& headers,
             const std::vector<Key>& keys, std::string_view body) {
    if (keys.empty()) {
        return false;
    }
    util::MemorySource source(body);
    auto verdict = verify({scheme, k_any_age, now}, headers, keys, source);
    return verdict && verdict->ok();
}

Key hmac_key(SecretBytes bytes, const std::string& origin) {
    Key key;
    key.kind = KeyKind::hmac;
    key.bytes = std::move(bytes);
    key.origin = origin;
    return key;
}

std::string_view trim_space(std::string_view s) {
    constexpr std::string_view space = " \t\r\n\v\f";
    auto first = s.find_first_not_of(space);
    if (first == std::string_view::npos) {
        return {};
    }
    return s.substr(first, s.find_last_not_of(space) - first + 1);
}

std::string_view without_prefix(std::string_view text) {
    for (std::string_view prefix : {"whsec_", "whsk_"}) {
        if (text.starts_with(prefix)) {
            return text.substr(prefix.size());
        }
    }
    return text;
}

// --- the secret's candidates -------------------------------------------------------------------

struct SecretCandidate {
    Cause cause;
    std::string tried;
    SecretBytes bytes;
};

// The key bytes the usual mistakes would make of `secret` (never its own decoding).
std::vector<SecretCandidate> secret_candidates(const keys::SecretText& secret,
                                               SecretEncoding encoding) {
    std::vector<SecretCandidate> out;
    std::string_view text = secret.text.view();
    const std::string label = "the secret from " + secret.origin;
    if (encoding == SecretEncoding::standard_webhooks &&
        (text.starts_with("whsk_") || text.starts_with("whpk_"))) {
        return out; // ed25519 keys are not typed into HMAC code by hand
    }
    // How the scheme reads a secret text; nothing when it cannot.
    auto decoded = [&](std::string_view t) -> std::optional<SecretBytes> {
        if (encoding == SecretEncoding::raw) {
            return SecretBytes(std::string(t));
        }
        auto bytes = util::base64_decode(t.starts_with("whsec_") ? t.substr(6) : t);
        if (!bytes || bytes->empty()) {
            return std::nullopt;
        }
        return SecretBytes(std::move(*bytes));
    };
    auto add = [&](Cause cause, std::string tried, std::optional<SecretBytes> bytes) {
        if (bytes && !bytes->empty()) {
            out.push_back({cause, std::move(tried), std::move(*bytes)});
        }
    };
    std::string_view trimmed = trim_space(text);
    if (trimmed.size() != text.size() && !trimmed.empty()) {
        add(Cause::secret_whitespace, label + " with the whitespace around it removed",
            decoded(trimmed));
    }
    if (encoding == SecretEncoding::raw) {
        add(Cause::secret_whitespace,
            label + " with a trailing newline (as `echo` writes it to a file)",
            SecretBytes(std::string(text) + "\n"));
        add(Cause::secret_whitespace, label + " with a trailing CRLF",
            SecretBytes(std::string(text) + "\r\n"));
        for (std::string_view prefix : {"whsec_", "whsk_"}) {
            if (text.starts_with(prefix)) {
                add(Cause::secret_prefix, label + " without its " + std::string(prefix) + " prefix",
                    SecretBytes(std::string(text.substr(prefix.size()))));
            }
        }
        if (without_prefix(text).size() == text.size()) {
            add(Cause::secret_prefix, label + " with a whsec_ prefix",
                SecretBytes("whsec_" + std::string(text)));
        }
        if (auto bytes = util::base64_decode(without_prefix(text))) {
            add(Cause::secret_encoding,
                label + " base64-decoded (as Standard Webhooks libraries read a whsec_ secret)",
                SecretBytes(std::move(*bytes)));
        }
        if (auto bytes = util::hex_decode(without_prefix(text))) {
            add(Cause::secret_encoding, label + " hex-decoded", SecretBytes(std::move(*bytes)));
        }
    } else {
        add(Cause::secret_encoding, label + " used as raw text instead of base64-decoded",
            SecretBytes(std::string(without_prefix(text))));
        if (text.starts_with("whsec_")) {
            add(Cause::secret_encoding,
                label + " used as raw text, whsec_ prefix included, instead of base64-decoded",
                SecretBytes(std::string(text)));
        }
        if (auto bytes = util::hex_decode(without_prefix(text))) {
            add(Cause::secret_encoding, label + " hex-decoded instead of base64-decoded",
                SecretBytes(std::move(*bytes)));
        }
    }
    return out;
}

// --- the body's candidates ---------------------------------------------------------------------

struct BodyCandidate {
    Cause cause;
    std::string tried;
    std::string bytes;
};

// How a JSON serialiser writes: the usual libraries' defaults.
struct JsonStyle {
    const char* name;
    bool sorted;
    int indent; // -1: on one line
    bool spaced;
    bool escape_slashes;
    bool ascii;
};

constexpr JsonStyle k_styles[] = {
    {"compact, as JSON.stringify and Go write it", false, -1, false, false, false},
    {"with ', ' and ': ' separators, as Python's json.dumps writes it", false, -1, true, false,
     false},
    {"indented by 2 spaces", false, 2, false, false, false},
    {"indented by 4 spaces", false, 4, false, false, false},
    {"with sorted keys, compact (Go maps, jq -cS)", true, -1, false, false, false},
    {"with sorted keys and Python's separators (sort_keys=True)", true, -1, true, false, false},
    {"with sorted keys, indented by 2 spaces (jq -S)", true, 2, false, false, false},
    {"with sorted keys, indented by 4 spaces", true, 4, false, false, false},
    {"compact with `/` escaped as `\\/` (PHP's json_encode)", false, -1, false, true, false},
    {"compact with `/` and non-ASCII escaped (PHP's json_encode defaults)", false, -1, false, true,
     true},
    {"compact with non-ASCII escaped as \\uXXXX", false, -1, false, false, true},
    {"with Python's separators and non-ASCII escaped (json.dumps defaults)", false, -1, true, false,
     true},
};

void write_json_string(std::string& out, const std::string& value, const JsonStyle& style) {
    std::string text =
        ojson(value).dump(-1, ' ', style.ascii, nlohmann::json::error_handler_t::replace);
    if (!style.escape_slashes) {
        out += text;
        return;
    }
    for (char c : text) {
        if (c == '/') {
            out += "\\/";
        } else {
            out += c;
        }
    }
}

void write_json(std::string& out, const ojson& value, const JsonStyle& style, int depth) {
    auto newline = [&](int level) {
        if (style.indent >= 0) {
            out += '\n';
            out.append(static_cast<std::size_t>(style.indent * level), ' ');
        }
    };
    const char* item_separator = style.indent >= 0 ? "," : style.spaced ? ", " : ",";
    const char* key_separator = style.indent >= 0 || style.spaced ? ": " : ":";
    if (value.is_object()) {
        if (value.empty()) {
            out += "{}";
            return;
        }
        std::vector<std::pair<const std::string*, const ojson*>> items;
        for (auto it = value.begin(); it != value.end(); ++it) {
            items.emplace_back(&it.key(), &it.value());
        }
        if (style.sorted) {
            std::stable_sort(items.begin(), items.end(),
                             [](const auto& a, const auto& b) { return *a.first < *b.first; });
        }
        out += '{';
        for (std::size_t i = 0; i < items.size(); ++i) {
            out += i > 0 ? item_separator : "";
            newline(depth + 1);
            write_json_string(out, *items[i].first, style);
            out += key_separator;
            write_json(out, *items[i].second, style, depth + 1);
        }
        newline(depth);
        out += '}';
    } else if (value.is_array()) {
        if (value.empty()) {
            out += "[]";
            return;
        }
        out += '[';
        for (std::size_t i = 0; i < value.size(); ++i) {
            out += i > 0 ? item_separator : "";
            newline(depth + 1);
            write_json(out, value[i], style, depth + 1);
        }
        newline(depth);
        out += ']';
    } else if (value.is_string()) {
        write_json_string(out, value.get_ref<const std::string&>(), style);
    } else {
        out += value.dump();
    }
}

// What distinguishes two serialisations of one JSON document.
struct JsonShape {
    std::string keys;                // every key in document order
    std::string spacing;             // whitespace outside strings, with where it stands
    std::string tail;                // whitespace after the document (a trailing newline)
    std::size_t escaped_slashes = 0; // `\/` inside strings
    std::size_t unicode_escapes = 0; // \uXXXX of a character above U+007F inside strings

    static std::optional<JsonShape> of(std::string_view text) {
        auto doc = ojson::parse(text, nullptr, false);
        if (doc.is_discarded()) {
            return std::nullopt;
        }
        JsonShape shape;
        collect_keys(doc, shape.keys);
        bool in_string = false;
        std::size_t tokens = 0;
        auto end = text.find_last_not_of(" \t\r\n");
        end = end == std::string_view::npos ? 0 : end + 1;
        shape.tail = std::string(text.substr(end));
        for (std::size_t i = 0; i < end; ++i) {
            char c = text[i];
            if (in_string) {
                if (c == '\\' && i + 1 < text.size()) {
                    char next = text[i + 1];
                    if (next == '/') {
                        ++shape.escaped_slashes;
                    } else if (next == 'u' && i + 5 < text.size()) {
                        auto code =
                            std::strtol(std::string(text.substr(i + 2, 4)).c_str(), nullptr, 16);
                        shape.unicode_escapes += code >= 0x80 ? 1 : 0;
                    }
                    ++i;
                } else if (c == '"') {
                    in_string = false;
                }
                continue;
            }
            if (c == '"') {
                in_string = true;
                ++tokens;
            } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                shape.spacing += std::to_string(tokens) + ":" + c;
            } else {
                ++tokens;
            }
        }
        return shape;
    }

    static void collect_keys(const ojson& value, std::string& out) {
        if (value.is_object()) {
            for (auto it = value.begin(); it != value.end(); ++it) {
                out += it.key();
                out += '\0';
                collect_keys(it.value(), out);
            }
        } else if (value.is_array()) {
            for (const auto& item : value) {
                collect_keys(item, out);
            }
        }
    }
};

// The cause a re-serialisation stands for: what differs from the body received, by priority.
Cause reserialisation_cause(const JsonShape& received, const JsonShape& candidate) {
    if (received.keys != candidate.keys) {
        return Cause::body_key_order;
    }
    if (received.spacing != candidate.spacing) {
        return Cause::body_spacing;
    }
    if (received.tail != candidate.tail) {
        return Cause::body_trailing_newline; // compact JSON.stringify drops a trailing newline
    }
    if (received.escaped_slashes != candidate.escaped_slashes) {
        return Cause::body_escaped_slashes;
    }
    if (received.unicode_escapes != candidate.unicode_escapes) {
        return Cause::body_unicode_escapes;
    }
    return Cause::body_spacing; // only numbers written differently: still a re-serialisation
}

bool form_safe(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

// application/x-www-form-urlencoded, as Python's urlencode writes it.
std::string form_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (form_safe(c)) {
            out += static_cast<char>(c);
        } else if (c == ' ') {
            out += '+';
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::optional<std::string> form_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%') {
            if (i + 2 >= text.size()) {
                return std::nullopt;
            }
            auto byte = util::hex_decode(text.substr(i + 1, 2));
            if (!byte) {
                return std::nullopt;
            }
            out += *byte;
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::vector<BodyCandidate> body_candidates(std::string_view body) {
    std::vector<BodyCandidate> out;
    auto add = [&](Cause cause, std::string tried, std::string bytes) {
        if (bytes == body) {
            return;
        }
        for (const auto& c : out) {
            if (c.bytes == bytes) {
                return;
            }
        }
        out.push_back({cause, std::move(tried), std::move(bytes)});
    };
    // Re-serialised JSON.
    if (auto received = JsonShape::of(body)) {
        auto doc = ojson::parse(body, nullptr, false);
        for (const auto& style : k_styles) {
            std::string text;
            write_json(text, doc, style, 0);
            auto shape = JsonShape::of(text);
            if (!shape) {
                continue;
            }
            auto cause = reserialisation_cause(*received, *shape);
            if (cause == Cause::body_trailing_newline) {
                continue; // only the newline at the end differs: tried below, in those words
            }
            add(cause, std::string("the body re-serialised ") + style.name, std::move(text));
        }
        // A PHP sender's `\/` undone by the receiver (or the other way round), text unchanged
        // otherwise.
        if (received->escaped_slashes > 0) {
            std::string text(body);
            for (std::size_t at = 0; (at = text.find("\\/", at)) != std::string::npos;) {
                text.erase(at, 1);
                ++at;
            }
            add(Cause::body_escaped_slashes, "the body with `\\/` written `/`", std::move(text));
        }
    }
    // The end of the body.
    if (body.ends_with("\r\n")) {
        add(Cause::body_trailing_newline, "the body without its trailing CRLF",
            std::string(body.substr(0, body.size() - 2)));
    } else if (body.ends_with("\n")) {
        add(Cause::body_trailing_newline, "the body without its trailing newline",
            std::string(body.substr(0, body.size() - 1)));
    }
    add(Cause::body_trailing_newline, "the body with a trailing newline added",
        std::string(body) + "\n");
    add(Cause::body_trailing_newline, "the body with a trailing CRLF added",
        std::string(body) + "\r\n");
    // Line endings.
    if (body.find('\n') != std::string_view::npos) {
        std::string crlf;
        std::string lf;
        for (std::size_t i = 0; i < body.size(); ++i) {
            if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) {
                crlf += '\r';
            }
            crlf += body[i];
            if (!(body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n')) {
                lf += body[i];
            }
        }
        add(Cause::body_line_endings, "the body with LF line endings written CRLF",
            std::move(crlf));
        add(Cause::body_line_endings, "the body with CRLF line endings written LF", std::move(lf));
    }
    // Form encoding.
    add(Cause::body_form_encoded, "the body form-encoded as payload=... (a form POST)",
        "payload=" + form_encode(body));
    bool looks_like_form = !body.empty() && body.front() != '{' && body.front() != '[' &&
                           body.find('=') != std::string_view::npos;
    if (looks_like_form) {
        if (auto decoded = form_decode(body)) {
            add(Cause::body_form_encoded, "the body form-decoded", std::move(*decoded));
        }
        std::string_view rest = body;
        while (!rest.empty()) {
            auto amp = rest.find('&');
            auto pair = rest.substr(0, amp);
            auto eq = pair.find('=');
            if (eq != std::string_view::npos) {
                if (auto value = form_decode(pair.substr(eq + 1))) {
                    add(Cause::body_form_encoded,
                        "the decoded value of the form field `" + std::string(pair.substr(0, eq)) +
                            "`",
                        std::move(*value));
                }
            }
            rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        }
    }
    return out;
}

// --- headers -------------------------------------------------------------------------------------

// The timestamp text of `scheme` in `headers` (stripe: the t= of its signature header).
std::optional<std::string> timestamp_text(Scheme scheme, const util::HeaderList& headers) {
    const SchemeInfo& s = info(scheme);
    if (!s.has_timestamp) {
        return std::nullopt;
    }
    if (scheme == Scheme::stripe) {
        auto value = headers.find(s.signature_header);
        if (!value) {
            return std::nullopt;
        }
        std::string_view rest = *value;
        while (!rest.empty()) {
            auto comma = rest.find(',');
            auto part = util::trim(rest.substr(0, comma));
            if (part.starts_with("t=")) {
                return std::string(part.substr(2));
            }
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
        return std::nullopt;
    }
    auto value = headers.find(s.timestamp_header);
    return value ? std::optional<std::string>(std::string(util::trim(*value))) : std::nullopt;
}

// `headers` with the timestamp of `scheme` replaced by `timestamp`.
util::HeaderList with_timestamp(Scheme scheme, const util::HeaderList& headers,
                                std::int64_t timestamp) {
    const SchemeInfo& s = info(scheme);
    util::HeaderList out;
    for (const auto& [name, value] : headers.entries()) {
        if (scheme == Scheme::stripe && util::iequals(name, s.signature_header)) {
            std::string rewritten;
            std::string_view rest = value;
            while (!rest.empty()) {
                auto comma = rest.find(',');
                auto part = util::trim(rest.substr(0, comma));
                rewritten += rewritten.empty() ? "" : ",";
                rewritten +=
                    part.starts_with("t=") ? "t=" + std::to_string(timestamp) : std::string(part);
                rest =
                    comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            }
            out.add(name, rewritten);
        } else if (!s.timestamp_header.empty() && util::iequals(name, s.timestamp_header)) {
            out.add(name, std::to_string(timestamp));
        } else {
            out.add(name, value);
        }
    }
    return out;
}

// Every 32-byte value written in hex or base64 in any known signature header.
std::vector<std::string> signature_values(const util::HeaderList& headers) {
    std::vector<std::string> out;
    auto keep = [&](std::string bytes) {
        if (bytes.size() == 32 && std::find(out.begin(), out.end(), bytes) == out.end()) {
            out.push_back(std::move(bytes));
        }
    };
    for (const auto& scheme : all_schemes()) {
        for (const auto& [name, value] : headers.entries()) {
            if (!util::iequals(name, scheme.signature_header)) {
                continue;
            }
            std::string_view rest = value;
            while (!rest.empty()) {
                auto cut = rest.find_first_of(", ");
                auto token = rest.substr(0, cut);
                rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
                for (std::string_view prefix : {"sha256=", "v1=", "v0="}) {
                    if (token.starts_with(prefix)) {
                        token.remove_prefix(prefix.size());
                    }
                }
                if (auto hex = util::hex_decode(token)) {
                    keep(std::move(*hex));
                } else if (auto b64 = util::base64_decode(token)) {
                    keep(std::move(*b64));
                }
            }
        }
    }
    return out;
}

// The first value of any of the schemes' headers named by `field`.
std::optional<std::string> any_header(const util::HeaderList& headers,
                                      std::string_view SchemeInfo::*field) {
    for (const auto& scheme : all_schemes()) {
        std::string_view name = scheme.*field;
        if (!name.empty()) {
            if (auto value = headers.find(name)) {
                return std::string(util::trim(*value));
            }
        }
    }
    return std::nullopt;
}

// The four ways the schemes compute a signature, one scheme standing for each.
struct Construction {
    Scheme representative;
    const char* names;
    const char* how;
};

constexpr Construction k_constructions[] = {
    {Scheme::mailparse, "mailparse and stripe",
     "HMAC-SHA256 of {timestamp}.{body} with the secret's bytes"},
    {Scheme::standard, "standard and svix",
     "HMAC-SHA256 of {id}.{timestamp}.{body} with the base64-decoded whsec_ secret"},
    {Scheme::slack, "slack", "HMAC-SHA256 of v0:{timestamp}:{body}"},
    {Scheme::github, "github and shopify", "HMAC-SHA256 of the body alone, no timestamp"},
};

const Construction& construction_of(Scheme scheme) {
    switch (scheme) {
    case Scheme::mailparse:
    case Scheme::stripe:
        return k_constructions[0];
    case Scheme::standard:
    case Scheme::svix:
        return k_constructions[1];
    case Scheme::slack:
        return k_constructions[2];
    case Scheme::github:
    case Scheme::shopify:
        break;
    }
    return k_constructions[3];
}

// Headers as `scheme` would carry one signature `mac` (32 bytes).
util::HeaderList headers_for(Scheme scheme, const std::string& mac,
                             const std::optional<std::string>& timestamp,
                             const std::optional<std::string>& id) {
    util::HeaderList out;
    const SchemeInfo& s = info(scheme);
    switch (scheme) {
    case Scheme::mailparse:
        out.add(std::string(s.signature_header), util::hex_encode(mac));
        break;
    case Scheme::standard:
        out.add(std::string(s.signature_header), "v1," + util::base64_encode(mac));
        out.add(std::string(s.id_header), id.value_or(""));
        break;
    case Scheme::slack:
        out.add(std::string(s.signature_header), "v0=" + util::hex_encode(mac));
        break;
    default:
        out.add(std::string(s.signature_header), "sha256=" + util::hex_encode(mac));
        break;
    }
    if (!s.timestamp_header.empty()) {
        out.add(std::string(s.timestamp_header), timestamp.value_or(""));
    }
    return out;
}

std::vector<Key> decode_all(const std::vector<keys::SecretText>& secrets, SecretEncoding encoding,
                            std::string* first_error = nullptr) {
    std::vector<Key> out;
    for (const auto& secret : secrets) {
        auto key = keys::decode_key(secret, encoding);
        if (key) {
            out.push_back(std::move(*key));
        } else if (first_error != nullptr && first_error->empty()) {
            *first_error = key.error().message;
        }
    }
    return out;
}

std::string seconds_text(std::int64_t seconds) {
    std::uint64_t magnitude =
        seconds < 0 ? 0 - static_cast<std::uint64_t>(seconds) : static_cast<std::uint64_t>(seconds);
    return std::to_string(magnitude) + " s";
}

std::string plural(std::size_t n, std::string_view word) {
    return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

// Runs the candidates that can make a well-formed, timely request match, in the order of the
// causes; appends each to `evidence`. Returns the first cause that matched.
class Trials {
public:
    Trials(const VerifyRequest& request, const util::HeaderList& headers,
           const std::vector<keys::SecretText>& secrets, const std::vector<Key>& keys,
           const std::vector<PastKey>& past, std::string_view body, std::vector<Trial>& evidence)
        : m_request(request)
        , m_headers(headers)
        , m_secrets(secrets)
        , m_keys(keys)
        , m_past(past)
        , m_body(body)
        , m_evidence(evidence) {}

    // The first matching candidate's cause and what it was, or nothing.
    std::optional<Trial> run() {
        secrets();
        bodies();
        millisecond_signing();
        past_keys();
        constructions();
        return m_first;
    }

    // Only the other schemes' constructions (for a header this scheme cannot read).
    std::optional<Trial> run_constructions() {
        constructions();
        return m_first;
    }

    // Whether the signature matches at the timestamp given (its age ignored).
    bool as_sent() const {
        return matches(m_request.scheme, m_request.now, m_headers, m_keys, m_body);
    }

private:
    void record(Cause cause, std::string tried, bool matched) {
        Trial trial{cause, std::move(tried), matched};
        if (matched && !m_first) {
            m_first = trial;
        }
        m_evidence.push_back(std::move(trial));
    }

    void secrets() {
        const auto encoding = info(m_request.scheme).encoding;
        std::vector<SecretCandidate> all;
        for (const auto& secret : m_secrets) {
            for (auto& c : secret_candidates(secret, encoding)) {
                all.push_back(std::move(c));
            }
        }
        // Causes in order, candidates of one cause together.
        std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
            return static_cast<int>(a.cause) < static_cast<int>(b.cause);
        });
        std::vector<std::string_view> seen;
        for (const auto& key : m_keys) {
            seen.push_back(key.bytes.view());
        }
        for (auto& c : all) {
            if (std::find(seen.begin(), seen.end(), c.bytes.view()) != seen.end()) {
                continue;
            }
            seen.push_back(c.bytes.view());
            std::vector<Key> one;
            one.push_back(hmac_key(c.bytes, "a candidate"));
            record(c.cause, c.tried,
                   matches(m_request.scheme, m_request.now, m_headers, one, m_body));
        }
    }

    void bodies() {
        if (m_keys.empty()) {
            return;
        }
        auto candidates = body_candidates(m_body);
        std::stable_sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
            return static_cast<int>(a.cause) < static_cast<int>(b.cause);
        });
        for (const auto& c : candidates) {
            record(c.cause, c.tried,
                   matches(m_request.scheme, m_request.now, m_headers, m_keys, c.bytes));
        }
    }

    void millisecond_signing() {
        auto text = timestamp_text(m_request.scheme, m_headers);
        if (!text || m_keys.empty() || m_body.size() > k_millisecond_body_limit) {
            return;
        }
        auto seconds = util::parse_unix_seconds(*text);
        if (!seconds || *seconds <= 0 || *seconds >= k_millisecond_threshold) {
            return;
        }
        bool matched = false;
        for (std::int64_t ms = *seconds * 1000; ms < *seconds * 1000 + 1000 && !matched; ++ms) {
            matched = matches(m_request.scheme, m_request.now,
                              with_timestamp(m_request.scheme, m_headers, ms), m_keys, m_body);
        }
        record(Cause::timestamp_milliseconds,
               "the timestamp signed in milliseconds (" + *text + "000 to " + *text +
                   "999) while the header carries seconds",
               matched);
    }

    void past_keys() {
        const auto encoding = info(m_request.scheme).encoding;
        for (const auto& p : m_past) {
            auto key = keys::decode_key(p.secret, encoding);
            std::string tried = "keyring secret " + p.id + " (" + p.fingerprint + "), " + p.state;
            if (p.not_after) {
                tried += ", its window ended " + util::format_time_s(*p.not_after);
            }
            std::vector<Key> one;
            if (key) {
                one.push_back(std::move(*key));
            }
            record(Cause::key_outside_window, tried,
                   matches(m_request.scheme, m_request.now, m_headers, one, m_body));
        }
    }

    void constructions() {
        auto macs = signature_values(m_headers);
        if (macs.empty()) {
            return;
        }
        auto timestamp = timestamp_text(m_request.scheme, m_headers);
        if (!timestamp) {
            timestamp = any_header(m_headers, &SchemeInfo::timestamp_header);
        }
        if (!timestamp) {
            timestamp = timestamp_text(Scheme::stripe, m_headers);
        }
        auto id = any_header(m_headers, &SchemeInfo::id_header);
        const Construction& own = construction_of(m_request.scheme);
        for (const auto& c : k_constructions) {
            if (&c == &own) {
                continue;
            }
            const SchemeInfo& s = info(c.representative);
            if ((s.has_timestamp && !timestamp) || (!s.id_header.empty() && !id)) {
                continue;
            }
            auto keys = decode_all(m_secrets, s.encoding);
            bool matched = false;
            for (const auto& mac : macs) {
                matched = matched ||
                          matches(c.representative, m_request.now,
                                  headers_for(c.representative, mac, timestamp, id), keys, m_body);
            }
            record(Cause::wrong_scheme,
                   std::string("the construction of ") + c.names + ": " + c.how, matched);
        }
    }

    const VerifyRequest& m_request;
    const util::HeaderList& m_headers;
    const std::vector<keys::SecretText>& m_secrets;
    const std::vector<Key>& m_keys;
    const std::vector<PastKey>& m_past;
    std::string_view m_body;
    std::vector<Trial>& m_evidence;
    std::optional<Trial> m_first;
};

// The finding and advice for a candidate that matched.
void describe_match(Explanation& out, const Trial& trial, const VerifyRequest& request) {
    out.cause = trial.cause;
    out.finding = "the signature matches with " + trial.tried;
    switch (trial.cause) {
    case Cause::secret_whitespace:
        out.advice = "one side keeps whitespace or a newline around its secret: strip it where "
                     "the secret is read (hookctl drops one trailing newline of a secret file or "
                     "variable)";
        break;
    case Cause::secret_prefix:
        out.advice = "the sender and this check disagree on the whsec_/whsk_ prefix: use the "
                     "secret exactly as the provider shows it on both sides";
        break;
    case Cause::secret_encoding:
        out.advice = "the sender and this check decode the secret differently: Standard Webhooks "
                     "and Svix base64-decode the part after whsec_, the other schemes use the "
                     "text's bytes";
        break;
    case Cause::body_key_order:
    case Cause::body_spacing:
    case Cause::body_escaped_slashes:
    case Cause::body_unicode_escapes:
        out.advice = "the bytes checked are not the bytes signed: verify the raw request body, "
                     "before any JSON parsing or pretty-printing (a log or a framework "
                     "re-serialised it)";
        break;
    case Cause::body_trailing_newline:
    case Cause::body_line_endings:
        out.advice = "the body's bytes changed on the way (an editor, a shell, `echo`, a proxy): "
                     "verify the raw body exactly as received (save it with curl -o, not copied "
                     "from a terminal)";
        break;
    case Cause::body_form_encoded:
        out.advice = "the request is a form POST: verify the raw form body as received, not the "
                     "decoded field (or the other way round, as the sender documents)";
        break;
    case Cause::timestamp_milliseconds:
        out.advice = "the sender signs the timestamp in milliseconds but sends seconds (or the "
                     "other way round): both must be Unix seconds";
        break;
    case Cause::key_outside_window:
        out.advice = "the sender still signs with a secret this keyring no longer accepts: move "
                     "the sender to the primary secret, or reopen a window for the old one with "
                     "`hookctl rotate begin --window`";
        break;
    case Cause::wrong_scheme:
        out.advice = "the sender computes signatures as another scheme does: verify with that "
                     "scheme (--scheme), or fix the sender to sign as " +
                     std::string(info(request.scheme).name) + " does";
        break;
    default:
        break;
    }
}

void unexplained(Explanation& out) {
    out.cause = Cause::unexplained;
    out.finding = "no usual mistake makes the signature match";
    out.advice = "the sender most likely signs with another secret (compare fingerprints: "
                 "`hookctl secret show` here, the sender's dashboard there), or the body was "
                 "changed on the way";
}

} // namespace

std::string_view to_string(Cause cause) {
    switch (cause) {
    case Cause::valid:
        return "valid";
    case Cause::secret_whitespace:
        return "secret_whitespace";
    case Cause::secret_prefix:
        return "secret_prefix";
    case Cause::secret_encoding:
        return "secret_encoding";
    case Cause::body_key_order:
        return "body_key_order";
    case Cause::body_spacing:
        return "body_spacing";
    case Cause::body_escaped_slashes:
        return "body_escaped_slashes";
    case Cause::body_unicode_escapes:
        return "body_unicode_escapes";
    case Cause::body_trailing_newline:
        return "body_trailing_newline";
    case Cause::body_line_endings:
        return "body_line_endings";
    case Cause::body_form_encoded:
        return "body_form_encoded";
    case Cause::timestamp_milliseconds:
        return "timestamp_milliseconds";
    case Cause::clock_skew:
        return "clock_skew";
    case Cause::wrong_scheme:
        return "wrong_scheme";
    case Cause::key_outside_window:
        return "key_outside_window";
    case Cause::missing_header:
        return "missing_header";
    case Cause::malformed_header:
        return "malformed_header";
    case Cause::unexplained:
        return "unexplained";
    }
    return "unexplained";
}

Result<Explanation> explain(const VerifyRequest& request, const util::HeaderList& headers,
                            const std::vector<keys::SecretText>& secrets,
                            const std::vector<PastKey>& past, std::string_view body) {
    if (secrets.empty()) {
        return fail(ExitCode::usage, "no secret to explain the signature with");
    }
    Explanation out;
    auto keys = decode_all(secrets, info(request.scheme).encoding, &out.secret_error);
    util::MemorySource source(body);
    auto verdict = verify(request, headers, keys, source);
    HOOKCTL_RETURN_IF_ERROR(verdict);
    out.verdict = std::move(*verdict);
    out.exit_code = out.verdict.ok() ? ExitCode::ok
                    : out.verdict.outcome == Outcome::malformed_header || !out.secret_error.empty()
                        ? ExitCode::usage
                        : ExitCode::check_failed;
    if (out.verdict.ok()) {
        out.cause = Cause::valid;
        out.finding = "valid: the signature matches";
        return out;
    }
    const SchemeInfo& scheme = info(request.scheme);
    Trials trials(request, headers, secrets, keys, past, body, out.evidence);

    switch (out.verdict.outcome) {
    case Outcome::missing_header: {
        auto detected = detect_scheme(headers);
        if (detected && *detected != request.scheme) {
            const SchemeInfo& other = info(*detected);
            auto other_keys = decode_all(secrets, other.encoding);
            bool matched = matches(*detected, request.now, headers, other_keys, body);
            out.evidence.push_back({Cause::wrong_scheme,
                                    "the headers read as " + std::string(other.name) +
                                        " (they carry " + std::string(other.signature_header) + ")",
                                    matched});
            out.cause = Cause::wrong_scheme;
            out.finding =
                "these are " + std::string(other.name) + " headers (" +
                std::string(other.signature_header) + "), not " + std::string(scheme.name) +
                " ones" +
                (matched ? ", and read as " + std::string(other.name) + " the signature matches"
                         : "; read as " + std::string(other.name) +
                               " the signature does not match either");
            out.advice =
                matched ? "verify with --scheme " + std::string(other.name) + " (or --scheme auto)"
                        : "run `hookctl verify --scheme " + std::string(other.name) +
                              " --explain` for what else is wrong";
            return out;
        }
        out.cause = Cause::missing_header;
        out.finding = out.verdict.reason + " and no other scheme's signature header is there";
        out.advice = "pass every header the request arrived with (--headers-file with a curl -D "
                     "dump keeps them all), or the right --scheme";
        return out;
    }
    case Outcome::malformed_header: {
        if (auto first = trials.run_constructions()) {
            describe_match(out, *first, request);
            return out;
        }
        out.cause = Cause::malformed_header;
        out.finding = out.verdict.reason;
        out.advice = "the header was cut or edited on the way: copy it again from the raw "
                     "request (a curl -D dump), or check the --scheme";
        return out;
    }
    case Outcome::stale_timestamp: {
        const std::int64_t ts = out.verdict.timestamp.value_or(0);
        const std::int64_t tolerance = request.tolerance.count();
        if (ts >= k_millisecond_threshold || ts <= -k_millisecond_threshold) {
            bool as_sent = trials.as_sent();
            bool as_seconds =
                matches(request.scheme, request.now,
                        with_timestamp(request.scheme, headers, ts / 1000), keys, body);
            out.evidence.push_back({Cause::timestamp_milliseconds,
                                    "the signature over the timestamp as sent (" +
                                        std::to_string(ts) + ", milliseconds)",
                                    as_sent});
            out.evidence.push_back(
                {Cause::timestamp_milliseconds,
                 "the signature over the same time in seconds (" + std::to_string(ts / 1000) + ")",
                 as_seconds});
            std::int64_t age = request.now - ts / 1000;
            out.cause = Cause::timestamp_milliseconds;
            out.finding = "the timestamp " + std::to_string(ts) +
                          " is in milliseconds: read as milliseconds it is " + seconds_text(age) +
                          (age >= 0 ? " old" : " ahead") +
                          (std::llabs(age) <= tolerance ? " (within" : " (outside") + " the " +
                          std::to_string(tolerance) + " s tolerance)";
            out.advice = "the sender must send (and sign) Unix seconds, not milliseconds";
            if (!as_sent && !as_seconds) {
                out.finding += "; the signature does not match at it either";
                if (auto second = trials.run()) {
                    out.also = second->cause;
                    out.finding += ", but matches with " + second->tried;
                }
            }
            return out;
        }
        bool as_sent = trials.as_sent();
        std::int64_t skew = out.verdict.skew.value_or(0);
        std::uint64_t magnitude =
            skew < 0 ? 0 - static_cast<std::uint64_t>(skew) : static_cast<std::uint64_t>(skew);
        std::uint64_t beyond = magnitude - static_cast<std::uint64_t>(tolerance);
        out.evidence.push_back({Cause::clock_skew,
                                "the signature over the timestamp as sent, its age ignored",
                                as_sent});
        out.cause = Cause::clock_skew;
        out.finding = "the timestamp is " + seconds_text(skew) +
                      (skew >= 0 ? " in the past" : " in the future") + ": " +
                      std::to_string(beyond) + " s beyond the " + std::to_string(tolerance) +
                      " s tolerance" +
                      (as_sent ? "; the signature itself matches"
                               : "; the signature does not "
                                 "match either");
        out.advice =
            as_sent
                ? (skew >= 0 ? "the request is old (a retry, a replay, a queue) or the sender's "
                               "clock is behind: check NTP on both sides; to check the signature "
                               "alone, pass --now " +
                                   std::to_string(ts)
                             : "the sender's clock is ahead of this one: check NTP on both sides; "
                               "to check the signature alone, pass --now " +
                                   std::to_string(ts))
                : "fix the clock first, then look at the signature";
        if (!as_sent) {
            if (auto second = trials.run()) {
                out.also = second->cause;
                out.finding += ", but matches with " + second->tried;
            }
        }
        return out;
    }
    case Outcome::no_match: {
        auto first = trials.run();
        if (first) {
            describe_match(out, *first, request);
        } else {
            unexplained(out);
        }
        return out;
    }
    case Outcome::valid:
        break;
    }
    return out;
}

Result<std::vector<PastKey>> keys_outside_window(const std::vector<std::string>& paths,
                                                 std::int64_t now) {
    std::vector<PastKey> out;
    for (const auto& path : paths) {
        auto ring = keys::read_keyring(path);
        HOOKCTL_RETURN_IF_ERROR(ring);
        for (const auto& entry : ring->keys) {
            if (entry.valid_at(now)) {
                continue;
            }
            PastKey p;
            p.secret = {entry.secret, "keyring " + path + " (" + entry.id + ")"};
            p.id = entry.id;
            p.fingerprint = entry.fingerprint;
            p.state = std::string(keys::to_string(entry.state));
            p.not_after = entry.not_after;
            out.push_back(std::move(p));
        }
    }
    return out;
}

std::string to_text(const Explanation& e) {
    const std::string scheme(info(e.verdict.scheme).name);
    if (e.cause == Cause::valid) {
        return "valid (scheme " + scheme + ", secret " + e.verdict.fingerprint.value_or("?") +
               "): nothing to explain\n";
    }
    std::string out = "finding: " + e.finding + " [" + std::string(to_string(e.cause));
    if (e.also) {
        out += ", " + std::string(to_string(*e.also));
    }
    out += "]\n";
    if (!e.advice.empty()) {
        out += "advice: " + e.advice + "\n";
    }
    out += "verdict: invalid: " + e.verdict.reason + " (scheme " + scheme + ")\n";
    if (!e.secret_error.empty()) {
        out += "note: " + e.secret_error + "\n";
    }
    std::size_t matched = std::count_if(e.evidence.begin(), e.evidence.end(),
                                        [](const Trial& t) { return t.matched; });
    out += "evidence: " + plural(e.evidence.size(), "candidate") + " tried, " +
           std::to_string(matched) + " matched\n";
    for (const auto& t : e.evidence) {
        std::string code(to_string(t.cause));
        code.resize(std::max<std::size_t>(code.size(), 22), ' ');
        out +=
            std::string(t.matched ? "  matches   " : "  no match  ") + code + "  " + t.tried + "\n";
    }
    return out;
}

nlohmann::json to_json(const Explanation& e) {
    nlohmann::json evidence = nlohmann::json::array();
    for (const auto& t : e.evidence) {
        evidence.push_back(
            {{"cause", to_string(t.cause)}, {"tried", t.tried}, {"matched", t.matched}});
    }
    nlohmann::json doc = {{"valid", e.verdict.ok()},
                          {"scheme", info(e.verdict.scheme).name},
                          {"outcome", to_string(e.verdict.outcome)},
                          {"reason", e.verdict.reason},
                          {"fingerprint", nullptr},
                          {"cause", to_string(e.cause)},
                          {"also", nullptr},
                          {"finding", e.finding},
                          {"advice", e.advice},
                          {"evidence", std::move(evidence)}};
    if (e.verdict.fingerprint) {
        doc["fingerprint"] = *e.verdict.fingerprint;
    }
    if (e.also) {
        doc["also"] = to_string(*e.also);
    }
    if (e.verdict.timestamp) {
        doc["timestamp"] = *e.verdict.timestamp;
        doc["skew"] = *e.verdict.skew;
    }
    if (!e.secret_error.empty()) {
        doc["secret_error"] = e.secret_error;
    }
    return doc;
}

} // namespace hookctl::sig
