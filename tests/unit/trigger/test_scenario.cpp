#include <set>

#include <doctest/doctest.h>

#include <hookctl/trigger/scenario.hpp>

using namespace hookctl;
using nlohmann::json;

namespace {

trigger::Options options(std::string nonce = "n0nce") {
    trigger::Options o;
    o.now_ms = 1'764'160'000'123;
    o.nonce = std::move(nonce);
    o.count = 5;
    o.attachment_size = 300'000;
    return o;
}

std::vector<trigger::Delivery> built(std::string_view name, const trigger::Options& o) {
    auto scenario = trigger::find_scenario(name);
    REQUIRE(scenario.has_value());
    auto deliveries = trigger::build(**scenario, o);
    REQUIRE(deliveries.has_value());
    return std::move(*deliveries);
}

json event(const trigger::Delivery& d) {
    auto doc = json::parse(d.body, nullptr, false);
    REQUIRE_FALSE(doc.is_discarded());
    return doc;
}

bool has_header(const json& doc, std::string_view name, std::string_view value) {
    for (const auto& pair : doc["headers"]) {
        if (pair[0] == name && pair[1] == value) {
            return true;
        }
    }
    return false;
}

} // namespace

TEST_CASE("trigger::scenarios each build a parsed event that documents its answer") {
    for (const auto& s : trigger::scenarios()) {
        CAPTURE(s.name);
        auto deliveries = built(s.name, options());
        REQUIRE_FALSE(deliveries.empty());
        for (const auto& d : deliveries) {
            auto doc = event(d);
            CHECK(doc["schema_version"] == "1");
            CHECK(doc["org_id"] == "org_trigger");
            CHECK(d.event_id == doc["event_id"]);
            CHECK(d.event_id.starts_with("evt_"));
            CHECK(d.raw_mime.find("\r\n") != std::string::npos);
            CHECK(d.expect.text() == s.expect.text());
        }
        CHECK_FALSE(s.answer.empty());
    }
}

TEST_CASE("trigger::build: each email scenario carries what it is named for") {
    auto bounce = event(built("bounce", options()).front());
    CHECK(bounce["subject"] == "Undelivered Mail Returned to Sender");
    CHECK(bounce["from"]["address"] == "MAILER-DAEMON@mx.acme.example");
    CHECK(has_header(bounce, "Auto-Submitted", "auto-replied"));

    auto reply = event(built("auto-reply", options()).front());
    CHECK(has_header(reply, "Auto-Submitted", "auto-replied"));
    CHECK(has_header(reply, "Precedence", "auto_reply"));

    auto large = event(built("large-attachment", options()).front());
    REQUIRE(large["attachments"].size() == 1);
    CHECK(large["attachments"][0]["size"] == 300'000);
    CHECK(large["attachments"][0]["filename"] == "contracts-scan.pdf");
    CHECK_FALSE(large["attachments"][0].contains("content")); // not inline: the event stays small
    CHECK(built("large-attachment", options()).front().body.size() < 10'000);

    auto encoded = event(built("encoded-headers", options()).front());
    CHECK(encoded["subject"] ==
          "R\xc3\xa9sum\xc3\xa9 et facture n\xc2\xb0 42 \xe2\x80\x94 \xe2\x9c\x93");
    CHECK(encoded["from"]["name"] == "J\xc3\xb6rg M\xc3\xbcller");
    CHECK(encoded["to"][0]["name"] == "Fran\xc3\xa7ois");
    REQUIRE(encoded["attachments"].size() == 1);
    CHECK(encoded["attachments"][0]["filename"] ==
          "r\xc3\xa9sum\xc3\xa9 n\xc2\xb0 42 \xe2\x80\x94 J\xc3\xb6rg.pdf");

    auto malformed = event(built("malformed-mime", options()).front());
    CHECK_FALSE(malformed["warnings"].empty());
}

TEST_CASE("trigger::build: duplicate, burst, stale and wrong-secret shape their deliveries") {
    auto dup = built("duplicate", options());
    REQUIRE(dup.size() == 2);
    CHECK(dup[0].event_id == dup[1].event_id);
    CHECK(dup[0].body == dup[1].body);
    CHECK(dup[1].label == "again (same event id)");

    auto burst = built("burst", options());
    REQUIRE(burst.size() == 5);
    std::set<std::string> ids;
    for (const auto& d : burst) {
        ids.insert(d.event_id);
        CHECK(event(d)["org_id"] == "org_trigger");
    }
    CHECK(ids.size() == 5);
    CHECK(burst[4].label == "5/5");

    auto stale = built("stale-timestamp", options());
    CHECK(stale.front().timestamp_offset == std::chrono::seconds(-600));
    CHECK_FALSE(stale.front().expect.accept);
    CHECK(built("wrong-secret", options()).front().wrong_secret);
    CHECK(built("message", options()).front().timestamp_offset.count() == 0);
}

TEST_CASE("trigger::build: a new nonce makes new event ids, the same nonce the same") {
    CHECK(built("message", options("a")).front().event_id ==
          built("message", options("a")).front().event_id);
    CHECK(built("message", options("a")).front().event_id !=
          built("message", options("b")).front().event_id);
}

TEST_CASE("trigger::apply_override sets fields, nested paths and array items") {
    auto o = options();
    for (const char* text :
         {"subject=Re: hello", "from.address=x@example.org", "priority=3", "tags=[\"a\",\"b\"]",
          "attachments.0.filename=renamed.pdf", "custom.nested.flag=true"}) {
        auto parsed = trigger::parse_override(text);
        REQUIRE(parsed.has_value());
        o.overrides.push_back(*parsed);
    }
    auto doc = event(built("large-attachment", o).front());
    CHECK(doc["subject"] == "Re: hello");
    CHECK(doc["from"]["address"] == "x@example.org");
    CHECK(doc["priority"] == 3);
    CHECK(doc["tags"] == json::array({"a", "b"}));
    CHECK(doc["attachments"][0]["filename"] == "renamed.pdf");
    CHECK(doc["custom"]["nested"]["flag"] == true);

    // event_id set by --set is the delivery's id too.
    auto id = trigger::parse_override("event_id=evt_fixed");
    REQUIRE(id.has_value());
    trigger::Options with_id = options();
    with_id.overrides = {*id};
    CHECK(built("message", with_id).front().event_id == "evt_fixed");
}

TEST_CASE("trigger::apply_override refuses what it cannot set") {
    CHECK_FALSE(trigger::parse_override("no-equals-sign").has_value());
    CHECK_FALSE(trigger::parse_override("=value").has_value());
    json doc = {{"subject", "s"}, {"list", json::array({1})}};
    auto into_string = trigger::parse_override("subject.x=1");
    auto out_of_range = trigger::parse_override("list.3=1");
    REQUIRE(into_string.has_value());
    REQUIRE(out_of_range.has_value());
    auto r1 = trigger::apply_override(doc, *into_string);
    REQUIRE_FALSE(r1.has_value());
    CHECK(r1.error().code == ExitCode::usage);
    CHECK(r1.error().message.find("subject is string") != std::string::npos);
    auto r2 = trigger::apply_override(doc, *out_of_range);
    REQUIRE_FALSE(r2.has_value());
    CHECK(r2.error().message.find("has 1 items") != std::string::npos);
}

TEST_CASE("trigger::find_scenario names the known ones for an unknown name") {
    auto unknown = trigger::find_scenario("bounced");
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().code == ExitCode::usage);
    for (const auto& s : trigger::scenarios()) {
        CHECK(unknown.error().message.find(std::string(s.name)) != std::string::npos);
    }
    auto none = trigger::find_scenario("");
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().message.starts_with("no scenario given: known scenarios: message, "));
}

TEST_CASE("trigger::Expectation: 2xx accepts, 4xx rejects, the rest is not as documented") {
    trigger::Expectation accept{true, {}};
    trigger::Expectation reject{false, {401, 403}};
    CHECK(accept.text() == "2xx");
    CHECK(reject.text() == "4xx (401 or 403)");
    CHECK(accept.met_by(202));
    CHECK_FALSE(accept.met_by(401));
    CHECK_FALSE(accept.met_by(0));
    CHECK(reject.met_by(401));
    CHECK(reject.met_by(400));
    CHECK_FALSE(reject.met_by(202));
    CHECK_FALSE(reject.met_by(500));
}
