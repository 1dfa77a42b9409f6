#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

#include <hookctl/archive/archive.hpp>
#include <hookctl/mime/parse.hpp>
#include <hookctl/trigger/scenario.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::trigger {
namespace {

// Replaces every `{{name}}` of `text` with its value; `\n` becomes CRLF (messages on the wire).
std::string fill(std::string_view text,
                 const std::vector<std::pair<std::string_view, std::string>>& values) {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        if (text.substr(i, 2) == "{{") {
            auto end = text.find("}}", i);
            auto name = text.substr(i + 2, end - i - 2);
            for (const auto& [key, value] : values) {
                if (key == name) {
                    out += value;
                }
            }
            i = end + 2;
        } else if (text[i] == '\n') {
            out += "\r\n";
            ++i;
        } else {
            out += text[i++];
        }
    }
    return out;
}

constexpr std::string_view k_plain = R"(Return-Path: <alice@sender.example>
Received: from mx.sender.example (mx.sender.example [192.0.2.10])
	by mx.acme.example with ESMTPS id {{nonce}}; {{date}}
From: Alice Example <alice@sender.example>
To: support@acme.example
Subject: Question about invoice 4211{{suffix}}
Date: {{date}}
Message-ID: <{{nonce}}{{index}}.message@sender.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello,

could you resend invoice 4211? The PDF I got is empty.

Thanks,
Alice
)";

// A delivery status notification (RFC 3464): the bounce of a message sent to a gone mailbox.
constexpr std::string_view k_bounce = R"(Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>
To: notifications@acme.example
Subject: Undelivered Mail Returned to Sender
Date: {{date}}
Message-ID: <{{nonce}}.bounce@mx.acme.example>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="dsn-{{nonce}}"

This is a MIME-encapsulated message.

--dsn-{{nonce}}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.acme.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@gone.example>: host mx.gone.example[198.51.100.7] said: 550 5.1.1
    <nobody@gone.example>: Recipient address rejected: User unknown

--dsn-{{nonce}}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.example
X-Postfix-Queue-ID: 4Q{{nonce}}
Arrival-Date: {{date}}

Final-Recipient: rfc822; nobody@gone.example
Original-Recipient: rfc822;nobody@gone.example
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.gone.example
Diagnostic-Code: smtp; 550 5.1.1 <nobody@gone.example>: Recipient address
    rejected: User unknown

--dsn-{{nonce}}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: notifications@acme.example
To: nobody@gone.example
Subject: Your receipt
Date: {{date}}
Message-ID: <{{nonce}}.receipt@acme.example>

--dsn-{{nonce}}--
)";

constexpr std::string_view k_auto_reply = R"(From: Bob Example <bob@customer.example>
To: support@acme.example
Subject: Automatic reply: Your ticket #8812
Date: {{date}}
Message-ID: <{{nonce}}.autoreply@customer.example>
In-Reply-To: <ticket-8812@acme.example>
References: <ticket-8812@acme.example>
Auto-Submitted: auto-replied
X-Autoreply: yes
X-Autorespond: yes
Precedence: auto_reply
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday, with limited access to email.
For urgent matters, write to help@customer.example.
)";

constexpr std::string_view k_large = R"(From: Carol Example <carol@sender.example>
To: documents@acme.example
Subject: Scanned contracts ({{size}} bytes attached)
Date: {{date}}
Message-ID: <{{nonce}}.large@sender.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="large-{{nonce}}"

--large-{{nonce}}
Content-Type: text/plain; charset=utf-8

The scanned contracts are attached.

--large-{{nonce}}
Content-Type: application/pdf; name="contracts-scan.pdf"
Content-Disposition: attachment; filename="contracts-scan.pdf"
Content-Transfer-Encoding: base64

{{attachment}}
--large-{{nonce}}--
)";

// RFC 2047 encoded words (UTF-8 and ISO-8859-1, B and Q) in the headers, and an RFC 2231
// filename split in three parts, percent-encoded UTF-8.
constexpr std::string_view k_encoded = R"(From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.de>
To: =?ISO-8859-1?Q?Fran=E7ois?= <francois@example.fr>
Subject: =?UTF-8?Q?R=C3=A9sum=C3=A9_et_facture_n=C2=B0_42?= =?UTF-8?B?IOKAlCDinJM=?=
Date: {{date}}
Message-ID: <{{nonce}}.encoded@example.de>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="enc-{{nonce}}"

--enc-{{nonce}}
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Bonjour Fran=C3=A7ois, voici le r=C3=A9sum=C3=A9 et la facture.
--enc-{{nonce}}
Content-Type: application/pdf; name*=UTF-8''r%C3%A9sum%C3%A9.pdf
Content-Disposition: attachment;
 filename*0*=UTF-8''r%C3%A9sum%C3%A9%20n%C2%B0%2042%20;
 filename*1*=%E2%80%94%20J%C3%B6rg;
 filename*2=".pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJeLjz9MKMSAwIG9iaiA8PD4+IGVuZG9iagp0cmFpbGVyIDw8Pj4KJSVFT0YK
--enc-{{nonce}}--
)";

// What real mail servers pass on: an unclosed quote and a raw 8-bit byte in headers, a broken
// encoded word, a date that is not one, bad base64 and quoted-printable, an unknown charset, an
// unterminated filename and a missing closing boundary.
constexpr std::string_view k_malformed =
    "From: \"Broken Sender <broken@sender.example\n"
    "To: support@acme.example\n"
    "Subject: =?UTF-8?B?bm90IHZhbGlk?==?UTF-8?Q?=E2=82?= "
    "caf\xe9 half-encoded\n"
    "Date: sometime last week\n"
    "Message-ID: <{{nonce}}.malformed@sender.example>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"never-closed\"\n"
    "\n"
    "--never-closed\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "SGVsbG8gd29ybGQ!!!*** this is not base64\n"
    "--never-closed\n"
    "Content-Type: text/html; charset=x-unknown-charset\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "<p>Caf=E9 =ZZ a broken escape</p>\n"
    "--never-closed\n"
    "Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=\"report.pdf\n"
    "\n"
    "%PDF-1.4 raw bytes \xff\xfe without an encoding\n";

Expectation accepted() {
    return {true, {}};
}

Expectation rejected() {
    return {false, {401, 403}};
}

std::string base64_lines(const std::string& bytes) {
    std::string encoded = util::base64_encode(bytes);
    std::string out;
    out.reserve(encoded.size() + encoded.size() / 76 + 1);
    for (std::size_t i = 0; i < encoded.size(); i += 76) {
        if (i > 0) {
            out += "\r\n";
        }
        out.append(encoded, i, 76);
    }
    return out;
}

// Bytes that do not compress (a scan), the same for the same nonce.
std::string attachment_bytes(std::uint64_t size, std::string_view nonce) {
    std::uint64_t state = 0x9e3779b97f4a7c15ULL;
    for (char c : nonce) {
        state = (state ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    }
    std::string out;
    out.resize(size);
    for (std::uint64_t i = 0; i < size; ++i) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out[i] = static_cast<char>(state & 0xff);
    }
    if (size >= 5) {
        out.replace(0, 5, "%PDF-");
    }
    return out;
}

} // namespace

std::string Expectation::text() const {
    if (accept) {
        return "2xx";
    }
    std::string out = "4xx";
    if (!preferred.empty()) {
        out += " (";
        for (std::size_t i = 0; i < preferred.size(); ++i) {
            out += (i == 0                      ? ""
                    : i + 1 == preferred.size() ? " or "
                                                : ", ") +
                   std::to_string(preferred[i]);
        }
        out += ")";
    }
    return out;
}

bool Expectation::met_by(long status) const {
    return accept ? status >= 200 && status < 300 : status >= 400 && status < 500;
}

Result<Override> parse_override(std::string_view text) {
    auto eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) {
        return fail(ExitCode::usage,
                    "--set " + std::string(text) +
                        ": expected PATH=VALUE, e.g. --set subject='Re: hello' or --set "
                        "from.address=a@example.org");
    }
    Override out;
    out.path = std::string(text.substr(0, eq));
    std::string value(text.substr(eq + 1));
    auto parsed = nlohmann::json::parse(value, nullptr, false);
    out.value = parsed.is_discarded() ? nlohmann::json(value) : parsed;
    return out;
}

Result<void> apply_override(nlohmann::json& doc, const Override& override) {
    std::vector<std::string> parts;
    std::string part;
    for (char c : override.path) {
        if (c == '.' || c == '[' || c == ']') {
            if (!part.empty()) {
                parts.push_back(std::move(part));
                part.clear();
            }
        } else {
            part += c;
        }
    }
    if (!part.empty()) {
        parts.push_back(std::move(part));
    }
    if (parts.empty()) {
        return fail(ExitCode::usage, "--set " + override.path + ": the path is empty");
    }
    nlohmann::json* at = &doc;
    std::string walked;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const std::string& key = parts[i];
        bool last = i + 1 == parts.size();
        bool index = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) != 0;
        });
        if (at->is_array() && index) {
            auto n = std::stoull(key);
            if (n >= at->size()) {
                return fail(ExitCode::usage, "--set " + override.path + ": " +
                                                 (walked.empty() ? "the event" : walked) + " has " +
                                                 std::to_string(at->size()) + " items, no item " +
                                                 key);
            }
            at = &(*at)[n];
        } else if (at->is_object() || at->is_null()) {
            at = &(*at)[key];
        } else {
            return fail(ExitCode::usage, "--set " + override.path + ": " + walked + " is " +
                                             std::string(at->type_name()) +
                                             ", not an object: it has no field " + key);
        }
        walked += (walked.empty() ? "" : ".") + key;
        if (last) {
            *at = override.value;
        }
    }
    return {};
}

const std::vector<Scenario>& scenarios() {
    static const std::vector<Scenario> all = {
        {"message", "a plain text message from a person",
         "2xx: an authentic event is stored and acknowledged", accepted()},
        {"bounce",
         "a delivery status notification (RFC 3464) from MAILER-DAEMON for a gone mailbox",
         "2xx: bounces are events too (the sender must learn the address is gone)", accepted()},
        {"auto-reply", "an out-of-office reply (Auto-Submitted: auto-replied, Precedence)",
         "2xx: stored; the receiver must not answer it (no mail loops)", accepted()},
        {"large-attachment",
         "a message with a large PDF attachment (--size, default 10MiB; the event lists it by "
         "size and sha256)",
         "2xx: the event JSON stays small, attachments are not inline", accepted()},
        {"encoded-headers",
         "RFC 2047 encoded From, To and Subject (UTF-8 and ISO-8859-1) and an RFC 2231 "
         "filename in three parts",
         "2xx: stored with the decoded names, subject and filename", accepted()},
        {"malformed-mime",
         "a broken message: unclosed quote, raw 8-bit header, bad base64, unknown charset, no "
         "closing boundary",
         "2xx: the parser read what it could (see warnings); the receiver must not fail on it",
         accepted()},
        {"duplicate", "one event delivered twice, same event id, each signed afresh",
         "2xx both times: the second is acknowledged as a duplicate and not stored again",
         accepted()},
        {"burst", "--count events (default 20) for one org, back to back on one connection",
         "2xx for each: none dropped, none rate-limited into loss", accepted()},
        {"stale-timestamp",
         "a message signed with a timestamp 10 minutes old (beyond the usual 5-minute "
         "tolerance), sent once",
         "4xx (401 or 403): a replayed or delayed request is refused", rejected()},
        {"wrong-secret", "a message signed with a random secret instead of the receiver's",
         "4xx (401 or 403): a forged signature is refused", rejected()},
    };
    return all;
}

Result<const Scenario*> find_scenario(std::string_view name) {
    std::string known;
    for (const auto& s : scenarios()) {
        if (s.name == name) {
            return &s;
        }
        known += (known.empty() ? "" : ", ") + std::string(s.name);
    }
    const std::string what = name.empty() ? std::string("no scenario given")
                                          : "unknown scenario '" + std::string(name) + "'";
    return fail(ExitCode::usage, what + ": known scenarios: " + known +
                                     " (`hookctl trigger --list` says what each sends)");
}

std::string raw_message(const Scenario& scenario, const Options& options, int index) {
    std::vector<std::pair<std::string_view, std::string>> values = {
        {"nonce", options.nonce},
        {"date", util::format_rfc5322_ms(options.now_ms)},
        {"index", index > 0 ? "." + std::to_string(index) : std::string()},
        {"suffix", index > 0 ? " (" + std::to_string(index) + ")" : std::string()},
    };
    std::string_view name = scenario.name;
    if (name == "bounce") {
        return fill(k_bounce, values);
    }
    if (name == "auto-reply") {
        return fill(k_auto_reply, values);
    }
    if (name == "large-attachment") {
        values.emplace_back("size", std::to_string(options.attachment_size));
        values.emplace_back("attachment",
                            base64_lines(attachment_bytes(options.attachment_size, options.nonce)));
        return fill(k_large, values);
    }
    if (name == "encoded-headers") {
        return fill(k_encoded, values);
    }
    if (name == "malformed-mime") {
        return fill(k_malformed, values);
    }
    return fill(k_plain, values);
}

Result<std::vector<Delivery>> build(const Scenario& scenario, const Options& options) {
    mime::ParseOptions parse;
    parse.org_id = options.org_id;
    parse.received_at = util::format_time_ms(options.now_ms);
    auto make = [&](int index, std::string label) -> Result<Delivery> {
        Delivery d;
        d.label = std::move(label);
        d.raw_mime = raw_message(scenario, options, index);
        auto event = mime::parse_message(d.raw_mime, parse);
        HOOKCTL_RETURN_IF_ERROR(event);
        for (const auto& o : options.overrides) {
            if (auto ok = apply_override(*event, o); !ok) {
                return std::unexpected(ok.error());
            }
        }
        d.event_id = event->value("event_id", "");
        d.trace_id = event->value("trace_id", "");
        d.body = event->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        d.expect = scenario.expect;
        return d;
    };
    std::vector<Delivery> out;
    std::string_view name = scenario.name;
    int count = name == "burst" ? options.count : 1;
    if (count < 1) {
        return fail(ExitCode::usage, "--count must be 1 or more");
    }
    for (int i = 0; i < count; ++i) {
        auto d = make(name == "burst" ? i + 1 : 0,
                      count > 1 ? std::to_string(i + 1) + "/" + std::to_string(count) : "");
        HOOKCTL_RETURN_IF_ERROR(d);
        out.push_back(std::move(*d));
    }
    if (name == "duplicate") {
        out.front().label = "first";
        Delivery again = out.front();
        again.label = "again (same event id)";
        out.push_back(std::move(again));
    } else if (name == "stale-timestamp") {
        out.front().timestamp_offset = -options.stale_by;
    } else if (name == "wrong-secret") {
        out.front().wrong_secret = true;
    }
    return out;
}

} // namespace hookctl::trigger
