// Library-level verification throughput against OpenSSL's raw HMAC-SHA256, measured side by
// side in one run: rounds alternate between the two so machine noise hits both alike.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <hookctl/sig/verify.hpp>
#include <hookctl/util/encoding.hpp>

using namespace hookctl;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
    std::size_t body_size = 1 << 20;
    int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
    int per_round = 40;
    std::string body = util::random_bytes(body_size);
    std::string secret = "bench-secret";
    std::int64_t ts = 1'700'000'000;

    // A correctly signed request, so verify does the whole job (timestamp, HMAC, compare).
    std::string mac = util::hex_encode([&] {
        std::string m(32, '\0');
        unsigned len = 0;
        std::string msg = std::to_string(ts) + "." + body;
        HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
             reinterpret_cast<unsigned char*>(m.data()), &len);
        return m;
    }());
    util::HeaderList headers;
    headers.add("X-Signature", mac);
    headers.add("X-Signature-Timestamp", std::to_string(ts));
    std::vector<keys::Key> keys =
        *keys::decode_keys({{keys::SecretBytes(secret), "bench"}}, keys::SecretEncoding::raw);

    std::vector<double> lib_mbps, raw_mbps;
    for (int r = 0; r < rounds; ++r) {
        auto t0 = Clock::now();
        for (int i = 0; i < per_round; ++i) {
            util::MemorySource source(body);
            auto v = sig::verify({sig::Scheme::mailparse, std::chrono::seconds(300), ts}, headers,
                                 keys, source);
            if (!v || !v->ok()) {
                std::fprintf(stderr, "verification failed in the benchmark\n");
                return 1;
            }
        }
        auto t1 = Clock::now();
        for (int i = 0; i < per_round; ++i) {
            unsigned char out[32];
            unsigned len = 0;
            HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                 reinterpret_cast<const unsigned char*>(body.data()), body.size(), out, &len);
        }
        auto t2 = Clock::now();
        double mb = static_cast<double>(per_round) * static_cast<double>(body_size) / 1e6;
        lib_mbps.push_back(mb / std::chrono::duration<double>(t1 - t0).count());
        raw_mbps.push_back(mb / std::chrono::duration<double>(t2 - t1).count());
    }
    double lib = median(lib_mbps), raw = median(raw_mbps);
    std::printf("hmac-verify 1MiB: hookctl sig::verify %.0f MB/s, OpenSSL HMAC() %.0f MB/s, "
                "ratio %.3f (goal >= 0.9)\n",
                lib, raw, lib / raw);
    return 0;
}
