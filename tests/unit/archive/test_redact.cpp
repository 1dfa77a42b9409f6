#include <doctest/doctest.h>

#include <hookctl/archive/redact.hpp>

using namespace hookctl;
using namespace hookctl::archive;
using ojson = nlohmann::ordered_json;

namespace {

Redactor redactor(std::vector<FieldPath> fields = {}, const char* key = "k1") {
    return Redactor(keys::SecretBytes(std::string(key)), true, std::move(fields));
}

ojson exported() {
    return ojson::parse(R"({
        "event_id": "evt_1", "org_id": "org_1", "status": "delivered",
        "headers": [["Content-Type", "application/json"]],
        "payload": {
            "event_id": "evt_1", "subject": "Your invoice",
            "from": {"name": "Ann Smith", "address": "Ann@Example.org"},
            "to": [{"name": "Support", "address": "support@example.com"},
                   {"name": "Ann", "address": "ann@example.org"}],
            "text": "Call me on 555", "html": null, "message_id": "<1@mail.example.org>",
            "attachments": [{"filename": "passport-ann.pdf", "size": 3}],
            "headers": [["From", "Ann Smith <ann@example.org>"],
                        ["Content-Type", "multipart/mixed; charset=utf-8; boundary=\"b1\""],
                        ["Date", "Tue, 24 Nov 2026 10:00:00 +0000"]],
            "metadata": {"customer": {"id": "cus_42"}, "plan": "pro"}
        },
        "raw_mime_base64": "RnJvbTogYW5u"})");
}

} // namespace

TEST_CASE("archive::Redactor replaces personal fields with stable pseudonyms") {
    auto r = redactor({{"metadata", "customer", "id"}});
    ojson e = exported();
    r.redact_export(e);
    CHECK_FALSE(e.contains("raw_mime_base64"));
    CHECK(e["event_id"] == "evt_1");
    CHECK(e["org_id"] == "org_1");
    const auto& p = e["payload"];
    const std::string text = e.dump();
    for (const char* personal : {"Ann", "ann@", "example.org", "invoice", "Call me", "passport",
                                 "cus_42", "mail.example"}) {
        CHECK_MESSAGE(text.find(personal) == std::string::npos, personal);
    }
    // Addresses compare without case: Ann@Example.org and ann@example.org are one token.
    CHECK(p["from"]["address"] == p["to"][1]["address"]);
    CHECK(p["from"]["address"] != p["to"][0]["address"]);
    CHECK(p["from"]["address"].get<std::string>().ends_with("@redacted.invalid"));
    CHECK(p["attachments"][0]["filename"].get<std::string>().ends_with(".pdf"));
    CHECK(p["attachments"][0]["size"] == 3);
    CHECK(p["html"].is_null());
    CHECK(p["headers"][1][1] == "multipart/mixed; charset=utf-8");
    CHECK(p["headers"][2][1] == "Tue, 24 Nov 2026 10:00:00 +0000");
    CHECK(p["metadata"]["plan"] == "pro");

    ojson again = exported();
    r.redact_export(again);
    CHECK(again == e);
    ojson other = exported();
    redactor({{"metadata", "customer", "id"}}, "k2").redact_export(other);
    CHECK(other["payload"]["from"]["address"] != p["from"]["address"]);
}

TEST_CASE("archive::parse_field_paths splits commas and dots and refuses empty names") {
    auto paths = parse_field_paths("a.b, c");
    REQUIRE(paths);
    CHECK(*paths == std::vector<FieldPath>{{"a", "b"}, {"c"}});
    CHECK_FALSE(parse_field_paths("a..b"));
    CHECK_FALSE(parse_field_paths("a,"));
    CHECK(parse_field_paths("").error().code == ExitCode::usage);
}

TEST_CASE("archive::Redactor redacts a JSON payload exported as text like an object") {
    auto r = redactor();
    ojson e = exported();
    ojson as_text = exported();
    as_text["payload"] = as_text["payload"].dump(2); // not canonical: exported as a string
    r.redact_export(e);
    r.redact_export(as_text);
    CHECK(as_text["payload"].is_object());
    CHECK(as_text == e);
    ojson plain = ojson::parse(R"({"event_id": "evt_2", "payload": "Dear Ann, hello"})");
    r.redact_export(plain);
    CHECK(plain["payload"].get<std::string>().starts_with("payload_"));
    CHECK(plain["payload"].get<std::string>().find("Ann") == std::string::npos);
}
