#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/mime/pool.hpp>

using namespace hookctl;

TEST_CASE("mime::OrderedPool hands results back in submission order, whatever finishes first") {
    for (unsigned seed = 1; seed <= 20; ++seed) {
        CAPTURE(seed);
        const int threads = 1 + static_cast<int>(seed % 4);
        std::vector<int> delays_us;
        std::mt19937 random(seed);
        for (int i = 0; i < 300; ++i) {
            delays_us.push_back(static_cast<int>(random() % 400));
        }
        mime::OrderedPool<std::string> pool(
            threads,
            [&](const std::string& raw, const std::string& label) {
                std::this_thread::sleep_for(
                    std::chrono::microseconds(delays_us[static_cast<std::size_t>(std::stoi(raw))]));
                return label + ":" + raw;
            },
            8);
        std::vector<std::string> got;
        auto ready = [&](std::string&& out) { got.push_back(std::move(out)); };
        for (int i = 0; i < 300; ++i) {
            pool.submit(std::to_string(i), "m", ready);
        }
        pool.finish(ready);
        REQUIRE(got.size() == 300);
        for (int i = 0; i < 300; ++i) {
            CHECK(got[static_cast<std::size_t>(i)] == "m:" + std::to_string(i));
        }
    }
}

TEST_CASE("mime::OrderedPool holds at most its window between submission and hand-back") {
    std::atomic<int> submitted{0};
    std::atomic<int> handed{0};
    int most = 0;
    mime::OrderedPool<int> pool(
        3, [](const std::string& raw, const std::string&) { return std::stoi(raw); }, 5);
    auto ready = [&](int&&) { ++handed; };
    for (int i = 0; i < 200; ++i) {
        pool.submit(std::to_string(i), "m", ready);
        ++submitted;
        most = std::max(most, submitted.load() - handed.load());
    }
    CHECK(most <= 5);
    CHECK(most >= 1);
    pool.finish(ready);
    CHECK(handed.load() == 200);

    // The byte bound: messages of 1 KiB with a window of 2 KiB never hold more than 2 (plus the
    // one submitted past the bound's check).
    mime::OrderedPool<std::size_t> by_bytes(
        2, [](const std::string& raw, const std::string&) { return raw.size(); }, 100, 2048);
    int in_window = 0;
    int most_bytes = 0;
    auto done = [&](std::size_t&&) { --in_window; };
    for (int i = 0; i < 50; ++i) {
        by_bytes.submit(std::string(1024, 'x'), "m", done);
        ++in_window;
        most_bytes = std::max(most_bytes, in_window);
    }
    by_bytes.finish(done);
    CHECK(most_bytes <= 3);
    CHECK(in_window == 0);
}
