#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/receive/budget.hpp>

using namespace hookctl::receive;

namespace {
constexpr std::size_t k_mib = 1024 * 1024;
}

TEST_CASE("receive::BodyBudget refuses what would pass the limit and takes it back on release") {
    BodyBudget budget(100 * k_mib);
    CHECK(budget.limit() == 100 * k_mib);
    CHECK(budget.large_share() == 75 * k_mib);
    BodyReservation a(budget);
    BodyReservation b(budget);
    CHECK(a.hold(24 * k_mib));
    CHECK(b.hold(24 * k_mib));
    CHECK(budget.in_use() == 48 * k_mib);
    BodyReservation c(budget);
    CHECK(c.hold(24 * k_mib));
    // 72 MiB of large bodies held: a fourth would pass the large share (75 MiB).
    BodyReservation d(budget);
    CHECK_FALSE(d.hold(24 * k_mib));
    CHECK(d.held() == 0);
    CHECK(budget.refused() == 1);
    CHECK(budget.in_use() == 72 * k_mib);
    // Small bodies still fit in the quarter kept for them.
    std::vector<BodyReservation> small;
    for (int i = 0; i < 28; ++i) {
        small.emplace_back(budget);
        CHECK(small.back().hold(k_mib));
    }
    CHECK(budget.in_use() == 100 * k_mib);
    BodyReservation e(budget);
    CHECK_FALSE(e.hold(1));
    CHECK(budget.refused() == 2);
    // Released bytes are free again, for large and small requests.
    a.release();
    CHECK(a.held() == 0);
    CHECK(budget.in_use() == 76 * k_mib);
    CHECK(d.hold(24 * k_mib));
    small.pop_back();
    CHECK(e.hold(1000));
}

TEST_CASE("receive::BodyBudget lets a growing (chunked) body move from small to large") {
    BodyBudget budget(8 * k_mib); // large share 6 MiB
    BodyReservation r(budget);
    CHECK(r.hold(64 * 1024));
    CHECK(r.hold(k_mib)); // still small
    CHECK(r.hold(4 * k_mib));
    CHECK(budget.in_use() == 4 * k_mib);
    BodyReservation other(budget);
    CHECK_FALSE(other.hold(3 * k_mib)); // 4 + 3 MiB of large bodies > 6 MiB
    CHECK(other.hold(k_mib));           // small: fits in the total
    CHECK_FALSE(r.hold(7 * k_mib));     // over the large share, the holding stays
    CHECK(r.held() == 4 * k_mib);
    CHECK(r.hold(2 * k_mib)); // never shrinks
    CHECK(r.held() == 4 * k_mib);
    r = BodyReservation();
    CHECK(budget.in_use() == k_mib);
}

TEST_CASE("receive::BodyReservation gives its bytes back when destroyed or moved over") {
    BodyBudget budget(10 * k_mib);
    {
        BodyReservation r(budget);
        CHECK(r.hold(5 * k_mib));
        BodyReservation moved(std::move(r));
        CHECK(r.held() == 0);
        CHECK(moved.held() == 5 * k_mib);
        CHECK(budget.in_use() == 5 * k_mib);
        BodyReservation other(budget);
        CHECK(other.hold(k_mib));
        moved = std::move(other);
        CHECK(budget.in_use() == k_mib);
    }
    CHECK(budget.in_use() == 0);
    BodyReservation unbounded;
    CHECK(unbounded.hold(1ULL << 40));
}

TEST_CASE("receive::BodyBudget::largest_body is what a budget can ever serve") {
    CHECK(BodyBudget::largest_body(256 * k_mib) == 192 * k_mib);
    CHECK(BodyBudget::largest_body(512 * 1024) == 512 * 1024); // only small bodies: the limit
    CHECK(BodyBudget::largest_body(k_mib + k_mib / 4) == k_mib);
    BodyBudget budget(256 * k_mib);
    BodyReservation r(budget);
    CHECK(r.hold(BodyBudget::largest_body(256 * k_mib)));
    BodyBudget tiny(512 * 1024);
    BodyReservation t(tiny);
    CHECK(t.hold(BodyBudget::largest_body(512 * 1024)));
}

TEST_CASE("receive::BodyBudget stays exact under concurrent holds and releases") {
    BodyBudget budget(64 * k_mib);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&budget] {
            for (int i = 0; i < 2000; ++i) {
                BodyReservation r(budget);
                if (r.hold(static_cast<std::size_t>(i % 7 + 1) * 512 * 1024)) {
                    CHECK(budget.in_use() <= budget.limit());
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(budget.in_use() == 0);
}
