#include <doctest/doctest.h>

#include <hookctl/receive/metrics.hpp>

using namespace hookctl::receive;
using std::chrono::microseconds;

TEST_CASE("receive::Metrics renders counters and histograms in Prometheus text format") {
    Metrics m;
    m.record_request(202, "accepted", microseconds(800));
    m.record_request(202, "accepted", microseconds(3000));
    m.record_request(401, "no_match", microseconds(100));
    m.record_verification_failure("no_match");
    m.record_fault("drop");
    m.record_batch(2);
    m.record_stored();
    m.record_stored();
    m.record_duplicate();
    auto text = m.render();
    CHECK(text.find("hookctl_requests_total{status=\"202\",reason=\"accepted\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("hookctl_requests_total{status=\"401\",reason=\"no_match\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("hookctl_verification_failures_total{reason=\"no_match\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("hookctl_faults_injected_total{kind=\"drop\"} 1\n") != std::string::npos);
    CHECK(text.find("hookctl_events_stored_total 2\n") != std::string::npos);
    CHECK(text.find("hookctl_duplicates_total 1\n") != std::string::npos);
    // Cumulative buckets: 0.0001s and 0.0008s are <= 0.001; 0.003s is not.
    CHECK(text.find("hookctl_request_duration_seconds_bucket{le=\"0.001\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("hookctl_request_duration_seconds_bucket{le=\"+Inf\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("hookctl_commit_batch_size_bucket{le=\"4\"} 1\n") != std::string::npos);
    CHECK(text.find("hookctl_commit_batch_size_sum 2\n") != std::string::npos);
    CHECK(m.requests(202) == 2);
    CHECK(m.requests_total() == 3);
}

TEST_CASE("receive::Metrics counts verifications per key, the body budget and failed accepts") {
    Metrics m;
    CHECK(m.render().find("hookctl_buffered_bytes") == std::string::npos); // no budget watched
    BodyBudget budget(4096);
    m.watch_budget(&budget);
    BodyReservation r(budget);
    REQUIRE(r.hold(1000));
    m.record_verified("ab12cd34");
    m.record_verified("ab12cd34");
    m.record_verified("0f0f0f0f");
    m.record_accept_failure();
    auto text = m.render();
    CHECK(text.find("hookctl_verified_total{key=\"ab12cd34\"} 2\n") != std::string::npos);
    CHECK(text.find("hookctl_verified_total{key=\"0f0f0f0f\"} 1\n") != std::string::npos);
    CHECK(text.find("hookctl_buffered_bytes 1000\n") != std::string::npos);
    CHECK(text.find("hookctl_buffered_bytes_limit 4096\n") != std::string::npos);
    CHECK(text.find("hookctl_accept_failures_total 1\n") != std::string::npos);
    CHECK(m.verified_by_key().at("ab12cd34") == 2);
}
