// The CPU that `hookctl listen` cannot avoid per webhook, measured on one thread with the
// request bench/listen-wrk.lua sends (2 KiB JSON body, mailparse signature):
//   verify+json  receive::check_request: HMAC-SHA256 verify, then nlohmann's SAX pass
//   verify only  sig::verify over the same request (the HMAC part of the above)
//   json only    nlohmann::json::accept over the same body
//   insert       the archive store listen's writer thread uses, in group commits of BATCH
//                rows (WAL, synchronous=FULL), CPU of the writing thread only
// Thread CPU time (CLOCK_THREAD_CPUTIME_ID), so waits for the disk are not counted.
// Usage: bench_listen_costs DIR [EVENTS] [BATCH]
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/receive/archive_store.hpp>
#include <hookctl/receive/handler.hpp>
#include <hookctl/sig/sign.hpp>
#include <hookctl/sig/verify.hpp>

namespace {

double thread_cpu_us() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// The body bench/listen-wrk.lua builds.
std::string body_of(int i) {
    std::string body = R"({"event_id":"bench_1_)" + std::to_string(i) +
                       R"(","org_id":"org_bench","subject":"benchmark","pad":")";
    body.append(2048 - 120, 'x');
    body += "\"}";
    return body;
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "bench_listen_costs: %s\n", what.c_str());
    std::exit(1);
}

} // namespace

int main(int argc, char** argv) {
    using namespace hookctl;
    if (argc < 2) {
        die("usage: bench_listen_costs DIR [EVENTS] [BATCH]");
    }
    std::string dir = argv[1];
    int events = argc > 2 ? std::atoi(argv[2]) : 20000;
    int batch = argc > 3 ? std::atoi(argv[3]) : 20;
    if (events <= 0 || batch <= 0) {
        die("EVENTS and BATCH must be positive");
    }

    std::vector<keys::SecretText> texts;
    texts.push_back({keys::SecretBytes("bench-secret-value"), "bench"});
    auto keys = receive::make_key_set(texts, sig::Scheme::mailparse);
    if (!keys) {
        die(keys.error().message);
    }
    const std::int64_t now = std::time(nullptr);
    std::vector<std::string> bodies;
    std::vector<util::HeaderList> headers;
    for (int i = 0; i < events; ++i) {
        bodies.push_back(body_of(i));
        util::MemorySource source(bodies.back());
        auto s = sig::sign({sig::Scheme::mailparse, now, ""},
                           keys->for_scheme(sig::Scheme::mailparse), source);
        if (!s) {
            die(s.error().message);
        }
        s->headers.add("Content-Type", "application/json");
        headers.push_back(std::move(s->headers));
    }

    std::vector<receive::IncomingEvent> checked;
    checked.reserve(static_cast<std::size_t>(events));
    double start = thread_cpu_us();
    for (int i = 0; i < events; ++i) {
        auto c = receive::check_request({}, *keys, headers[static_cast<std::size_t>(i)],
                                        bodies[static_cast<std::size_t>(i)], now * 1000);
        if (c.status != 0) {
            die("check_request refused the bench request: " + c.reason);
        }
        checked.push_back(std::move(c.event));
    }
    double verify_us = (thread_cpu_us() - start) / events;

    start = thread_cpu_us();
    for (int i = 0; i < events; ++i) {
        util::MemorySource source(bodies[static_cast<std::size_t>(i)]);
        auto v = sig::verify({sig::Scheme::mailparse, std::chrono::seconds(300), now},
                             headers[static_cast<std::size_t>(i)],
                             keys->for_scheme(sig::Scheme::mailparse), source);
        if (!v || !v->ok()) {
            die("sig::verify refused the bench request");
        }
    }
    double hmac_us = (thread_cpu_us() - start) / events;

    start = thread_cpu_us();
    for (const auto& body : bodies) {
        if (!nlohmann::json::accept(body)) {
            die("the bench body is not JSON");
        }
    }
    double json_us = (thread_cpu_us() - start) / events;

    // The store listen writes through (receive::open_archive_store), as its writer thread does.
    auto store = receive::open_archive_store(dir + "/costs.db", true);
    if (!store) {
        die(store.error().message);
    }
    std::vector<receive::IncomingEvent> pending;
    start = thread_cpu_us();
    for (int i = 0; i < events; ++i) {
        pending.push_back(std::move(checked[static_cast<std::size_t>(i)]));
        if (static_cast<int>(pending.size()) == batch || i + 1 == events) {
            auto r = (*store)->insert_batch(pending);
            if (!r) {
                die(r.error().message);
            }
            pending.clear();
        }
    }
    double insert_us = (thread_cpu_us() - start) / events;

    std::printf("per-request CPU, %d requests of 2 KiB, commits of %d: verify+json %.1f us "
                "(verify alone %.1f us, json alone %.1f us), insert %.1f us, total %.1f us\n",
                events, batch, verify_us, hmac_us, json_us, insert_us, verify_us + insert_us);
    return 0;
}
