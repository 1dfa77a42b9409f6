#include <algorithm>
#include <cctype>

#include <hookctl/archive/redact.hpp>
#include <hookctl/sig/crypto.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::archive {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::size_t k_token_hex = 12;

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// The extension of `filename` worth keeping (`.pdf`): 1 to 8 letters or digits after the last
// dot, else nothing.
std::string extension_of(std::string_view filename) {
    auto dot = filename.rfind('.');
    if (dot == std::string_view::npos || dot == 0) {
        return {};
    }
    auto ext = filename.substr(dot + 1);
    if (ext.empty() || ext.size() > 8 || !std::all_of(ext.begin(), ext.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0;
        })) {
        return {};
    }
    return "." + std::string(ext);
}

// `text/plain; charset=utf-8; name="x.pdf"` -> `text/plain; charset=utf-8`.
std::string structural_content_type(std::string_view value) {
    auto semi = value.find(';');
    std::string out(util::trim(value.substr(0, semi)));
    while (semi != std::string_view::npos) {
        auto next = value.find(';', semi + 1);
        auto param = util::trim(value.substr(
            semi + 1, next == std::string_view::npos ? std::string_view::npos : next - semi - 1));
        if (lower_ascii(param).starts_with("charset=")) {
            out += "; " + std::string(param);
        }
        semi = next;
    }
    return out;
}

bool structural_header(std::string_view name) {
    auto lower = lower_ascii(name);
    return lower == "mime-version" || lower == "content-transfer-encoding" || lower == "date";
}

} // namespace

Result<std::vector<FieldPath>> parse_field_paths(std::string_view list) {
    std::vector<FieldPath> out;
    auto bad = [&](const std::string& what) {
        return fail(ExitCode::usage, "--redact-fields '" + std::string(list) + "': " + what +
                                         " (give payload fields as a.b,c: commas between "
                                         "fields, dots into objects)");
    };
    std::size_t start = 0;
    while (start <= list.size()) {
        auto comma = list.find(',', start);
        auto item = util::trim(list.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
        if (item.empty()) {
            return bad("an empty field");
        }
        FieldPath path;
        std::size_t s = 0;
        while (s <= item.size()) {
            auto dot = item.find('.', s);
            auto segment =
                item.substr(s, dot == std::string_view::npos ? std::string_view::npos : dot - s);
            if (segment.empty()) {
                return bad("an empty name in '" + std::string(item) + "'");
            }
            path.emplace_back(segment);
            if (dot == std::string_view::npos) {
                break;
            }
            s = dot + 1;
        }
        out.push_back(std::move(path));
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}

Redactor::Redactor(keys::SecretBytes key, bool email, std::vector<FieldPath> fields)
    : m_key(std::move(key))
    , m_email(email)
    , m_fields(std::move(fields)) {}

std::string Redactor::token(std::string_view kind, std::string_view value) const {
    std::string message;
    message.reserve(kind.size() + 1 + value.size());
    message += kind;
    message += '\0';
    message += value;
    auto mac = sig::hmac_sha256(m_key.view(), message);
    return std::string(kind) + "_" + util::hex_encode(mac).substr(0, k_token_hex);
}

std::string Redactor::address_token(std::string_view address) const {
    // The hash of `address` as a token of kind `address`, written as an address.
    auto t = token("address", lower_ascii(util::trim(address)));
    return "a_" + t.substr(t.size() - k_token_hex) + "@redacted.invalid";
}

void Redactor::redact_export(ojson& exported) const {
    exported.erase("raw_mime_base64");
    auto body64 = exported.find("body_base64");
    if (body64 != exported.end()) {
        std::string bytes = body64->is_string()
                                ? util::base64_decode(body64->get<std::string>()).value_or("")
                                : std::string();
        exported.erase("body_base64");
        exported["payload"] =
            token("payload", bytes) + " (" + std::to_string(bytes.size()) + " bytes)";
        return;
    }
    auto payload = exported.find("payload");
    if (payload == exported.end()) {
        return;
    }
    if (payload->is_string()) {
        // JSON kept as text because re-encoding would change its bytes (spacing, escapes): the
        // redacted copy changes them anyway, so it is redacted as the object it holds.
        auto parsed = ojson::parse(payload->get_ref<const std::string&>(), nullptr, false);
        if (parsed.is_object()) {
            *payload = std::move(parsed);
        }
    }
    if (payload->is_object()) {
        redact_payload(*payload);
    } else if (payload->is_string()) {
        const auto& text = payload->get_ref<const std::string&>();
        *payload = token("payload", text) + " (" + std::to_string(text.size()) + " bytes)";
    } else if (!payload->is_null()) {
        *payload = token("payload", payload->dump());
    }
}

void Redactor::redact_payload(ojson& payload) const {
    if (m_email && payload.is_object()) {
        redact_email(payload);
    }
    for (const auto& path : m_fields) {
        redact_path(payload, path, 0);
    }
}

void Redactor::redact_email(ojson& payload) const {
    auto mailbox = [&](ojson& m) {
        if (!m.is_object()) {
            return;
        }
        for (const char* field : {"name", "group"}) {
            auto it = m.find(field);
            if (it != m.end() && it->is_string()) {
                *it = token("name", it->get_ref<const std::string&>());
            }
        }
        auto address = m.find("address");
        if (address != m.end() && address->is_string()) {
            *address = address_token(address->get_ref<const std::string&>());
        }
    };
    for (const char* field : {"from", "sender", "to", "cc", "bcc", "reply_to"}) {
        auto it = payload.find(field);
        if (it == payload.end()) {
            continue;
        }
        if (it->is_array()) {
            for (auto& m : *it) {
                mailbox(m);
            }
        } else if (it->is_string()) {
            *it = address_token(it->get_ref<const std::string&>());
        } else {
            mailbox(*it);
        }
    }
    auto replace_string = [&](const char* field, const char* kind, bool with_size) {
        auto it = payload.find(field);
        if (it != payload.end() && it->is_string()) {
            const auto& text = it->get_ref<const std::string&>();
            std::string t = token(kind, text);
            if (with_size) {
                t += " (" + std::to_string(text.size()) + " bytes)";
            }
            *it = std::move(t);
        }
    };
    replace_string("subject", "subject", false);
    replace_string("text", "text", true);
    replace_string("html", "html", true);
    if (auto id = payload.find("message_id"); id != payload.end() && id->is_string()) {
        *id = token("m", id->get_ref<const std::string&>()) + "@redacted.invalid";
    }
    if (auto attachments = payload.find("attachments");
        attachments != payload.end() && attachments->is_array()) {
        for (auto& a : *attachments) {
            if (!a.is_object()) {
                continue;
            }
            if (auto name = a.find("filename"); name != a.end() && name->is_string()) {
                const auto& text = name->get_ref<const std::string&>();
                *name = token("file", text) + extension_of(text);
            }
            if (auto cid = a.find("content_id"); cid != a.end() && cid->is_string()) {
                *cid = token("cid", cid->get_ref<const std::string&>()) + "@redacted.invalid";
            }
            a.erase("content");
        }
    }
    if (auto headers = payload.find("headers"); headers != payload.end() && headers->is_array()) {
        for (auto& pair : *headers) {
            if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() ||
                !pair[1].is_string()) {
                continue;
            }
            const auto& name = pair[0].get_ref<const std::string&>();
            const auto& value = pair[1].get_ref<const std::string&>();
            if (lower_ascii(name) == "content-type") {
                pair[1] = structural_content_type(value);
            } else if (!structural_header(name)) {
                pair[1] = token("header", value);
            }
        }
    }
    if (auto warnings = payload.find("warnings");
        warnings != payload.end() && warnings->is_array()) {
        for (auto& w : *warnings) {
            if (auto message = w.find("message");
                w.is_object() && message != w.end() && message->is_string()) {
                *message = token("warning", message->get_ref<const std::string&>());
            }
        }
    }
}

void Redactor::redact_path(ojson& node, const FieldPath& path, std::size_t at) const {
    if (node.is_array()) {
        for (auto& element : node) {
            redact_path(element, path, at);
        }
        return;
    }
    if (at == path.size()) {
        const std::string& kind = path.back();
        if (node.is_string()) {
            node = token(kind, node.get_ref<const std::string&>());
        } else if (!node.is_null()) {
            node = token(kind, node.dump());
        }
        return;
    }
    if (!node.is_object()) {
        return;
    }
    auto it = node.find(path[at]);
    if (it != node.end()) {
        redact_path(*it, path, at + 1);
    }
}

} // namespace hookctl::archive
