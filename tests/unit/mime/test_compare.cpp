#include <doctest/doctest.h>

#include <hookctl/mime/compare.hpp>

using namespace hookctl::mime;
using json = nlohmann::json;

namespace {

json event() {
    return json::parse(R"({
        "subject": "Invoice 1042", "from": {"name": "Ann", "address": "ann@example.org"},
        "to": [{"name": "", "address": "support@example.com"}], "cc": [], "date": "2026-11-25",
        "text": "Hello there, the invoice is attached.\n", "html": null,
        "attachments": [{"filename": "a.pdf", "size": 10, "content_type": "application/pdf",
                         "sha256": "00", "storage_key": "x"}],
        "org_id": "org_1", "received_at": "2026-11-25T08:00:00.000Z"})");
}

} // namespace

TEST_CASE("mime::compare_events finds nothing between equal events, whatever lies outside") {
    json a = event();
    json b = event();
    b["org_id"] = "another";
    b["attachments"][0]["storage_key"] = "y";
    CHECK(compare_events(a, b).empty());
}

TEST_CASE("mime::compare_events names each field that differs, in report order") {
    json a = event();
    json b = event();
    b["text"] = "Hello there, the invoice is NOT attached.\n";
    b["to"][0]["address"] = "sales@example.com";
    b["attachments"][0]["sha256"] = "ff";
    auto diffs = compare_events(a, b);
    REQUIRE(diffs.size() == 3);
    CHECK(diffs[0].field == "to");
    CHECK(diffs[1].field == "text");
    CHECK(diffs[1].stored.find("is [attached") != std::string::npos);
    CHECK(diffs[1].reparsed.find("is [NOT attached") != std::string::npos);
    CHECK(diffs[2].field == "attachments");
    CHECK(diffs[2].stored == "[0] sha256 \"00\"");
    b.erase("subject");
    CHECK(compare_events(a, b).front().field == "subject");
}

TEST_CASE("mime::DivergenceTally counts rates per field and keeps diffs for the first events") {
    DivergenceTally tally(1);
    tally.add("evt_1", {});
    tally.add("evt_2", {{"subject", "a", "b"}});
    tally.add("evt_3", {{"subject", "a", "b"}, {"html", "c", "d"}});
    tally.add("evt_4", {});
    tally.skip("no raw MIME stored");
    tally.skip("no raw MIME stored");
    CHECK(tally.compared() == 4);
    CHECK(tally.divergent() == 2);
    CHECK(tally.rate() == doctest::Approx(0.5));
    CHECK(tally.rate(tally.fields()[0]) == doctest::Approx(0.5)); // subject
    CHECK(tally.fields()[6].field == "html");
    CHECK(tally.fields()[6].divergent == 1);
    CHECK(tally.events()[0].diffs.size() == 1);
    CHECK(tally.events()[1].diffs.empty());
    CHECK(tally.events()[1].fields == std::vector<std::string>{"subject", "html"});
    CHECK(tally.skipped().front().second == 2);
    CHECK(tally.exceeds(0.49));
    CHECK_FALSE(tally.exceeds(0.5));
}
