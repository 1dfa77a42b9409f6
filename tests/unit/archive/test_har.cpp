#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <hookctl/archive/har.hpp>

#include "../temp_dir.hpp"

using namespace hookctl;
using namespace hookctl::archive;
using nlohmann::json;

namespace {

using testing::TempDir;

const std::string k_binary("\x00\xff\xfe{not text}\n", 14);

struct Stored {
    TempDir dir;
    std::unique_ptr<Store> archive = [&] {
        auto a = archive::open(dir.file("har.db"));
        REQUIRE(a.has_value());
        return std::move(*a);
    }();

    Stored() {
        std::vector<NewEvent> events(2);
        events[0].event_id = "evt_text";
        events[0].received_at_ms = 1'764'160'000'000;
        events[0].org_id = "acme";
        events[0].scheme = "mailparse";
        events[0].headers.add("Content-Type", "application/json");
        events[0].headers.add("X-Signature", "00ff");
        events[0].headers.add("X-Signature-Timestamp", "1764160000");
        events[0].headers.add("Host", "127.0.0.1:8080");
        events[0].headers.add("X-Tenant", "blue");
        events[0].body = R"({"event_id":"evt_text","subject":"caf\u00e9 / 'quoted'"})";
        events[1].event_id = "evt_binary";
        events[1].received_at_ms = 1'764'160'001'000;
        events[1].headers.add("Content-Type", "application/octet-stream");
        events[1].body = k_binary;
        REQUIRE(archive->insert_events(events).has_value());
        Attempt a;
        a.event_id = "evt_text";
        a.target = "https://staging.example/hooks";
        a.at_ms = 1'764'160'002'000;
        a.http_status = 503;
        a.latency_ms = 41.5;
        a.outcome = AttemptOutcome::failed;
        a.reason = "http_503";
        a.detail = "upstream unavailable";
        REQUIRE(archive->record_attempt(a).has_value());
    }
};

} // namespace

TEST_CASE("archive::export_har writes HAR 1.2 with the stored request and the last response") {
    Stored s;
    std::ostringstream out;
    auto n = export_har(*s.archive, {}, out);
    REQUIRE(n.has_value());
    CHECK(*n == 2);
    auto doc = json::parse(out.str());
    CHECK(doc["log"]["version"] == "1.2");
    CHECK(doc["log"]["creator"]["name"] == "hookctl");
    auto& entries = doc["log"]["entries"];
    REQUIRE(entries.size() == 2);
    auto& text = entries[0];
    CHECK(text["request"]["method"] == "POST");
    CHECK(text["request"]["url"] == "https://staging.example/hooks");
    CHECK(text["request"]["postData"]["text"] ==
          R"({"event_id":"evt_text","subject":"caf\u00e9 / 'quoted'"})");
    CHECK(text["request"]["postData"]["mimeType"] == "application/json");
    CHECK(text["response"]["status"] == 503);
    CHECK(text["response"]["content"]["text"] == "upstream unavailable");
    CHECK(text["time"] == 41.5);
    CHECK(text["_hookctl"]["event_id"] == "evt_text");
    auto& binary = entries[1];
    CHECK(binary["request"]["url"] == "http://receiver.invalid/");
    CHECK(binary["request"]["postData"]["encoding"] == "base64");
    CHECK(binary["response"]["status"] == 0);
    CHECK(binary["response"]["comment"] == "no delivery attempt recorded");
}

TEST_CASE("archive::read_har gives back every body byte for byte, with its event id") {
    Stored s;
    std::ostringstream out;
    REQUIRE(export_har(*s.archive, {}, out).has_value());
    auto requests = read_har(out.str(), "x.har");
    REQUIRE(requests.has_value());
    REQUIRE(requests->size() == 2);
    CHECK((*requests)[0].entry == 1);
    CHECK((*requests)[0].event_id == "evt_text");
    CHECK((*requests)[0].org_id == "acme");
    CHECK((*requests)[0].body == R"({"event_id":"evt_text","subject":"caf\u00e9 / 'quoted'"})");
    CHECK((*requests)[0].started_ms == 1'764'160'000'000);
    CHECK((*requests)[1].body == k_binary);
    CHECK((*requests)[1].content_type == "application/octet-stream");
}

TEST_CASE("archive::read_har reads a browser's HAR: GETs skipped, ids from headers or body") {
    json har = {{"log",
                 {{"version", "1.2"},
                  {"entries",
                   {{{"request", {{"method", "GET"}, {"url", "https://a.example/"}}}},
                    {{"request",
                      {{"method", "POST"},
                       {"url", "https://a.example/hook"},
                       {"headers", {{{"name", "Idempotency-Key"}, {"value", "evt_hdr"}}}},
                       {"postData", {{"mimeType", "application/json"}, {"text", "{\"a\":1}"}}}}}},
                    {{"request",
                      {{"method", "POST"},
                       {"url", "https://a.example/hook"},
                       {"postData", {{"text", R"({"event_id":"evt_body"})"}}}}}}}}}}};
    auto requests = read_har(har.dump(), "browser.har");
    REQUIRE(requests.has_value());
    REQUIRE(requests->size() == 2);
    CHECK((*requests)[0].entry == 2);
    CHECK((*requests)[0].event_id == "evt_hdr");
    CHECK((*requests)[1].event_id == "evt_body");
    CHECK((*requests)[1].content_type == "application/json");

    TempDir dir;
    auto path = dir.file("browser.har");
    {
        std::ofstream f(path);
        f << har.dump();
    }
    auto third = read_har_entry(path, 3);
    REQUIRE(third.has_value());
    CHECK(third->body == R"({"event_id":"evt_body"})");
    auto get = read_har_entry(path, 1);
    REQUIRE_FALSE(get.has_value());
    CHECK(get.error().message.find("no request body") != std::string::npos);
    auto missing = read_har_entry(path, 9);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find("has 3 entries") != std::string::npos);
    auto not_har = read_har("{\"a\":1}", "other.json");
    REQUIRE_FALSE(not_har.has_value());
    CHECK(not_har.error().code == ExitCode::usage);
}

TEST_CASE("archive::carried_headers drops signatures and connection headers, keeps the rest") {
    util::HeaderList stored;
    for (const char* name : {"X-Signature", "webhook-signature", "Stripe-Signature", "Host",
                             "Content-Length", "Content-Type", "Idempotency-Key", "traceparent",
                             "Proxy-Authorization", "X-Tenant", "User-Agent"}) {
        stored.add(name, "v");
    }
    auto carried = carried_headers(stored);
    std::vector<std::string> names;
    for (const auto& [name, value] : carried.entries()) {
        names.push_back(name);
    }
    CHECK(names == std::vector<std::string>{"X-Tenant", "User-Agent"});
}

TEST_CASE("archive::export_curl writes a script that signs at run time and holds no secret") {
    Stored s;
    std::ostringstream out;
    auto n = export_curl(*s.archive, {}, out, {"events.db", "2026-11-26T18:00:00.000Z"});
    REQUIRE(n.has_value());
    CHECK(*n == 2);
    const std::string script = out.str();
    CHECK(script.starts_with("#!/bin/sh\n"));
    CHECK(script.find("\"$hookctl\" sign") != std::string::npos);
    CHECK(script.find("--secret-env \"$secret_env\"") != std::string::npos);
    // The text body in a here-document, the binary one in base64; the stale signature and the
    // Host header are not carried, the tenant header is.
    CHECK(script.find(R"({"event_id":"evt_text","subject":"caf\u00e9 / 'quoted'"})") !=
          std::string::npos);
    CHECK(script.find("base64 -d") != std::string::npos);
    CHECK(script.find("X-Signature: 00ff") == std::string::npos);
    CHECK(script.find("Host:") == std::string::npos);
    CHECK(script.find("'X-Tenant: blue'") != std::string::npos);
    CHECK(script.find("post 'evt_binary' 'mailparse' 'Content-Type: application/octet-stream'") !=
          std::string::npos);
}
