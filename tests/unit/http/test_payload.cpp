#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <hookctl/http/payload.hpp>
#include <hookctl/mime/parse.hpp>

using namespace hookctl;
using http::PayloadFailure;
using http::PayloadInput;

TEST_CASE("http::build_payload sends JSON as given, with its event_id and trace_id") {
    std::string json =
        R"({"event_id":"evt_given_in_body","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"})";
    auto payload = http::build_payload(PayloadInput{.raw = json});
    REQUIRE(payload.has_value());
    CHECK(payload->body == json);
    CHECK(payload->event_id == "evt_given_in_body");
    CHECK(payload->trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");

    // An event id given by the caller wins over the body's; the body's trace id is still used.
    auto given = http::build_payload(PayloadInput{.raw = json, .event_id = "evt_from_caller"});
    REQUIRE(given.has_value());
    CHECK(given->event_id == "evt_from_caller");
    CHECK(given->trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_CASE("http::build_payload makes the event id from the body when it has none") {
    for (std::string json : {std::string(R"({"type":"email.received"})"),
                             std::string(R"({"event_id":42,"trace_id":7})"), std::string("[1,2]"),
                             std::string(R"("text")")}) {
        CAPTURE(json);
        auto payload = http::build_payload(PayloadInput{.raw = json});
        REQUIRE(payload.has_value());
        CHECK(payload->event_id == mime::event_id_for(json));
        CHECK(payload->event_id.size() == 4 + 24);
        CHECK(payload->trace_id.empty());
    }
    // The same bytes, the same id; other bytes, another.
    CHECK(http::build_payload(PayloadInput{.raw = "{}"})->event_id ==
          http::build_payload(PayloadInput{.raw = "{}"})->event_id);
    CHECK(http::build_payload(PayloadInput{.raw = "{}"})->event_id !=
          http::build_payload(PayloadInput{.raw = "{ }"})->event_id);
}

TEST_CASE("http::build_payload refuses a body that is not JSON, unless the type says other") {
    auto broken = http::build_payload(PayloadInput{.raw = "{broken"});
    REQUIRE_FALSE(broken.has_value());
    CHECK(broken.error().kind == PayloadFailure::not_json);
    CHECK(broken.error().error.code == ExitCode::usage);
    CHECK(broken.error().error.message.find("not valid JSON") != std::string::npos);
    CHECK(broken.error().error.message.find("--") == std::string::npos); // names no flag

    // Other bytes are sent as they are, ids taken from nothing but the bytes.
    std::string form = R"(event_id=evt_not_read&trace_id=x)";
    auto other = http::build_payload(
        PayloadInput{.raw = form, .content_type = "application/x-www-form-urlencoded"});
    REQUIRE(other.has_value());
    CHECK(other->body == form);
    CHECK(other->event_id == mime::event_id_for(form));
    CHECK(other->trace_id.empty());
}

TEST_CASE("http::build_payload parses a message to the event JSON, with the org id") {
    std::string eml = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n"
                      "Message-ID: <m1@example.com>\r\n\r\nbody\r\n";
    auto payload =
        http::build_payload(PayloadInput{.raw = eml, .is_eml = true, .org_id = "org_test"});
    REQUIRE(payload.has_value());
    auto event = nlohmann::json::parse(payload->body);
    CHECK(event["org_id"] == "org_test");
    CHECK(event["event_id"] == mime::event_id_for(eml)); // the event's id is that of the message
    CHECK(payload->event_id == mime::event_id_for(eml));
    CHECK(payload->trace_id == event["trace_id"].get<std::string>());
    CHECK_FALSE(payload->trace_id.empty());

    auto empty = http::build_payload(PayloadInput{.raw = "", .is_eml = true});
    REQUIRE_FALSE(empty.has_value());
    CHECK(empty.error().kind == PayloadFailure::message);
    CHECK(empty.error().error.code == ExitCode::usage);
}
