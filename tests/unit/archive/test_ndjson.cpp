#include <filesystem>
#include <sstream>
#include <string>
#include <unistd.h>

#include <doctest/doctest.h>

#include <hookctl/archive/ndjson.hpp>

#include "../temp_dir.hpp"

// Designated initializers that leave fields at their defaults are the point here; GCC 12
// warns about them under -Wextra.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace fs = std::filesystem;
using namespace hookctl;
using namespace hookctl::archive;
using json = nlohmann::ordered_json;

namespace {

// A fresh archive path in a directory removed at the end of the test.
struct TempArchive {
    testing::TempDir dir{"hookctl-ndjson"};
    std::string path = dir.file("a.db");
};

constexpr std::int64_t k_now = 1764180000000;

} // namespace

TEST_CASE("archive::import_ndjson then export_ndjson round-trips every field and byte") {
    TempArchive t;
    auto archive = archive::open(t.path);
    REQUIRE(archive);
    std::string input =
        R"({"event_id":"e1","payload":{"type":"email.received","n":[1,2.5,"x"]},"org_id":"acme","received_at":"2025-11-26T18:00:00.250Z","headers":[["X-Signature","ab"],["X-Signature","cd"]]})"
        "\n"
        R"({"event_id":"e2","payload":"not json {","status":"failed","last_error":"http_500","attempts":3,"headers":{"Content-Type":"text/plain"}})"
        "\r\n\n   \n"
        R"({"event_id":"e3","body_base64":"AP8BAg==","raw_mime_base64":"RnJvbTogYQ0KDQpoaQ==","status":"dead","reason":"http_410","received_at":1764180000})"
        "\n"
        R"({"event_id":"e4","payload":"{\"a\": 1}"})"
        "\n";
    std::istringstream in(input);
    auto summary = import_ndjson(**archive, in, "input.ndjson", k_now);
    REQUIRE(summary);
    CHECK(summary->lines == 4);
    CHECK(summary->inserted == 4);
    CHECK(summary->duplicates == 0);

    auto e1 = (*archive)->get_event("e1");
    REQUIRE(e1);
    CHECK((*e1)->body == R"({"type":"email.received","n":[1,2.5,"x"]})");
    CHECK((*e1)->received_at_ms == 1764180000250);
    CHECK((*e1)->headers.entries().size() == 2);
    CHECK((*e1)->source == "import");
    auto e2 = (*archive)->get_event("e2");
    CHECK((*e2)->body == "not json {");
    CHECK((*e2)->status == EventStatus::failed);
    CHECK((*e2)->attempts == 3);
    CHECK((*e2)->received_at_ms == k_now);
    auto e3 = (*archive)->get_event("e3");
    CHECK((*e3)->body == std::string("\x00\xff\x01\x02", 4));
    CHECK((*e3)->raw_mime == "From: a\r\n\r\nhi");
    CHECK((*e3)->last_error == "http_410");
    CHECK((*e3)->received_at_ms == 1764180000000);

    std::ostringstream out;
    auto exported = export_ndjson(**archive, {}, out);
    REQUIRE(exported);
    CHECK(*exported == 4);
    std::istringstream lines(out.str());
    std::string line;
    std::vector<json> docs;
    while (std::getline(lines, line)) {
        docs.push_back(json::parse(line));
    }
    REQUIRE(docs.size() == 4);
    CHECK(docs[0]["payload"].is_object());
    CHECK(docs[0]["received_at"] == "2025-11-26T18:00:00.250Z");
    CHECK(docs[1]["payload"] == "not json {");
    CHECK(docs[2].contains("body_base64"));
    CHECK_FALSE(docs[2].contains("payload"));
    CHECK(docs[3]["payload"] == "{\"a\": 1}"); // not compact JSON: kept as the exact string

    // Import the export into a second archive: the same bytes and fields come back.
    TempArchive t2;
    auto second = archive::open(t2.path);
    REQUIRE(second);
    std::istringstream again(out.str());
    auto summary2 = import_ndjson(**second, again, "export", k_now + 99999);
    REQUIRE(summary2);
    CHECK(summary2->inserted == 4);
    for (const char* id : {"e1", "e2", "e3", "e4"}) {
        auto a = (*archive)->get_event(id);
        auto b = (*second)->get_event(id);
        REQUIRE(a);
        REQUIRE(b);
        REQUIRE(b->has_value());
        CHECK((*a)->body == (*b)->body);
        CHECK((*a)->raw_mime == (*b)->raw_mime);
        CHECK((*a)->received_at_ms == (*b)->received_at_ms);
        CHECK((*a)->status == (*b)->status);
        CHECK((*a)->attempts == (*b)->attempts);
        CHECK((*a)->last_error == (*b)->last_error);
        CHECK((*a)->org_id == (*b)->org_id);
        CHECK((*a)->source == (*b)->source);
        CHECK((*a)->headers.entries() == (*b)->headers.entries());
    }

    // Importing it again: every event is a duplicate, nothing changes.
    std::istringstream third(out.str());
    auto summary3 = import_ndjson(**second, third, "export", k_now);
    REQUIRE(summary3);
    CHECK(summary3->inserted == 0);
    CHECK(summary3->duplicates == 4);
}

TEST_CASE("archive::import_ndjson rejects a bad line by number and imports nothing") {
    TempArchive t;
    auto archive = archive::open(t.path);
    REQUIRE(archive);
    struct Case {
        std::string bad_line;
        std::string expect;
    };
    for (const auto& c : std::vector<Case>{
             {"{not json", "not valid JSON"},
             {R"({"payload":{}})", "event_id"},
             {R"({"event_id":"x"})", "payload"},
             {R"({"event_id":"x","payload":1,"status":"lost"})", "status"},
             {R"({"event_id":"x","payload":1,"received_at":"yesterday"})", "received_at"},
             {R"({"event_id":"x","payload":1,"headers":[["a"]]})", "headers"},
             {R"({"event_id":"x","payload":1,"org_id":5})", "org_id"},
             {R"({"event_id":"x","body_base64":"***"})", "body_base64"},
             {R"([1,2])", "JSON object"},
         }) {
        std::string input = R"({"event_id":"ok1","payload":{}})"
                            "\n\n" +
                            c.bad_line + "\n" + R"({"event_id":"ok2","payload":{}})" + "\n";
        std::istringstream in(input);
        auto r = import_ndjson(**archive, in, "bad.ndjson", k_now);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ExitCode::usage);
        CHECK(r.error().message.find("bad.ndjson line 3") != std::string::npos);
        CHECK(r.error().message.find(c.expect) != std::string::npos);
        CHECK(r.error().message.find("nothing was imported") != std::string::npos);
        CHECK(*(*archive)->count_events({}) == 0);
        CHECK_FALSE((*archive)->in_transaction());
    }
}

TEST_CASE("archive::import_ndjson imports a large file in one transaction") {
    TempArchive t;
    auto archive = archive::open(t.path);
    REQUIRE(archive);
    std::string input;
    for (int i = 0; i < 3000; ++i) {
        input += R"({"event_id":"big)" + std::to_string(i) + R"(","payload":{"i":)" +
                 std::to_string(i) + "}}\n";
    }
    std::istringstream in(input);
    auto r = import_ndjson(**archive, in, "big", k_now);
    REQUIRE(r);
    CHECK(r->inserted == 3000);
    CHECK(*(*archive)->count_events({}) == 3000);
}
