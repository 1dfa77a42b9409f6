#pragma once

// Redacted exports (`hookctl events export --redact`, hookctl-events(1), REDACTION): personal
// data in an exported event replaced by stable pseudonyms, so an export can go to a vendor
// and still import and replay. A pseudonym is a keyed hash (HMAC-SHA256 under the export's
// redaction key) of the value's kind and its normalised text: within one key, equal values
// get equal tokens and can still be correlated; without the key they cannot be reversed or
// confirmed by guessing.
//
// Pure: the functions here change JSON documents and read nothing else.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/keys/secret.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::archive {

// A dotted path into an event's payload (`from.name`, `metadata.customer_id`); arrays on the
// way are walked element by element.
using FieldPath = std::vector<std::string>;

// Parses `a.b,c` (commas between paths, dots within one). Fails (exit 2) on an empty path or
// segment, quoting `list`.
Result<std::vector<FieldPath>> parse_field_paths(std::string_view list);

class Redactor {
public:
    // `key`: the redaction key (any length; 32 random bytes per export unless the operator
    // gives one). `email`: replace the email event's personal fields (see redact_payload).
    // `fields`: further payload fields to replace.
    Redactor(keys::SecretBytes key, bool email, std::vector<FieldPath> fields);

    // `<kind>_<12 hex>`: the pseudonym of `value` of `kind` (`name`, `subject`, ...).
    std::string token(std::string_view kind, std::string_view value) const;
    // `a_<12 hex>@redacted.invalid`: the pseudonym of an email address (compared without
    // case: `Ann@Example.org` and `ann@example.org` are one address).
    std::string address_token(std::string_view address) const;

    // Redacts one exported event (hookctl::archive::event_to_json's object) in place:
    // `raw_mime_base64` is dropped, the payload redacted (redact_payload; a payload exported
    // as a string because its bytes are not canonical JSON is redacted as the object it holds),
    // a body that is not a JSON object (other text, `body_base64`) replaced whole by a token. Event
    // id, times, org, status, attempts and the request headers are kept.
    void redact_export(nlohmann::ordered_json& exported) const;

    // Redacts an event payload in place. With `email`: from, sender, to, cc, bcc, reply_to
    // (display names and addresses), subject, text, html, message_id, attachments' filename
    // and content_id (the extension kept; inline content dropped), the parsed header values
    // (but the structural ones: Content-Type's media type and charset, MIME-Version,
    // Content-Transfer-Encoding, Date) and the messages of parser warnings (their codes kept).
    // Then each of `fields`: a string becomes a token, a number or boolean a token string, an
    // object or array a token of its JSON text; null and absent fields stay as they are.
    void redact_payload(nlohmann::ordered_json& payload) const;

private:
    void redact_email(nlohmann::ordered_json& payload) const;
    void redact_path(nlohmann::ordered_json& node, const FieldPath& path, std::size_t at) const;

    keys::SecretBytes m_key;
    bool m_email;
    std::vector<FieldPath> m_fields;
};

} // namespace hookctl::archive
