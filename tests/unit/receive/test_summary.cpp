#include <doctest/doctest.h>

#include <hookctl/receive/server.hpp>

using namespace hookctl::receive;

TEST_CASE("receive::classify_request sorts every answer into one summary kind") {
    CHECK(classify_request(200, "metrics") == RequestKind::internal);
    CHECK(classify_request(200, "healthz") == RequestKind::internal);
    for (auto kind : {FaultDecision::Kind::drop, FaultDecision::Kind::fail,
                      FaultDecision::Kind::fail_first, FaultDecision::Kind::throttle}) {
        FaultDecision decision;
        decision.kind = kind;
        auto reason = decision.reason();
        CAPTURE(reason);
        CHECK(parse_fault_reason(reason) == kind);
        // A fault counts as a fault whatever status it answered (0 for a dropped connection).
        for (int status : {0, 202, 429, 500, 503}) {
            CHECK(classify_request(status, reason) == RequestKind::fault);
        }
    }
    CHECK_FALSE(parse_fault_reason("none").has_value());
    CHECK_FALSE(parse_fault_reason("fault_").has_value());
    CHECK(classify_request(202, "accepted") == RequestKind::accepted);
    CHECK(classify_request(200, "duplicate") == RequestKind::duplicate);
    CHECK(classify_request(401, "no_match") == RequestKind::rejected);
    CHECK(classify_request(400, "invalid_json") == RequestKind::rejected);
    CHECK(classify_request(413, "too_large") == RequestKind::rejected);
    CHECK(classify_request(503, "store_failed") == RequestKind::other);
    CHECK(classify_request(0, "client_closed") == RequestKind::other);
}

TEST_CASE("receive::count_requests adds to requests and to the kind's own count") {
    Summary s;
    count_requests(s, RequestKind::internal, 7);
    count_requests(s, RequestKind::accepted, 5);
    count_requests(s, RequestKind::duplicate, 2);
    count_requests(s, RequestKind::rejected, 3);
    count_requests(s, RequestKind::fault, 4);
    count_requests(s, RequestKind::other, 1);
    CHECK(s.requests == 15); // /metrics and /healthz are not requests of the summary
    CHECK(s.accepted == 5);
    CHECK(s.duplicates == 2);
    CHECK(s.rejected == 3);
    CHECK(s.faults == 4);
}
