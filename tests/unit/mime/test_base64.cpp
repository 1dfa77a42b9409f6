#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <gmime/gmime.h>

#include <hookctl/mime/base64.hpp>

using namespace hookctl;

namespace {

// `input` cut into chunks of the given sizes (the last one takes the rest), decoded step by
// step with the given function: what a filter stream would give.
template <class Step>
std::string decode_in_chunks(const std::string& input, const std::vector<std::size_t>& sizes,
                             Step&& step) {
    std::string decoded;
    int state = 0;
    std::uint32_t save = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; at < input.size(); ++i) {
        std::size_t len =
            i < sizes.size() ? std::min(sizes[i], input.size() - at) : input.size() - at;
        std::vector<unsigned char> out(len * 3 / 4 + 4);
        const auto* in = reinterpret_cast<const unsigned char*>(input.data() + at);
        std::size_t n = step(in, len, out.data(), state, save);
        decoded.append(reinterpret_cast<const char*>(out.data()), n);
        at += len;
    }
    return decoded;
}

std::string with_gmime(const std::string& input, const std::vector<std::size_t>& sizes) {
    return decode_in_chunks(input, sizes,
                            [](const unsigned char* in, std::size_t len, unsigned char* out,
                               int& state, std::uint32_t& save) {
                                guint32 saved = save;
                                std::size_t n = g_mime_encoding_base64_decode_step(in, len, out,
                                                                                   &state, &saved);
                                save = saved;
                                return n;
                            });
}

std::string with_hookctl(const std::string& input, const std::vector<std::size_t>& sizes) {
    return decode_in_chunks(input, sizes, mime::base64_decode_step);
}

} // namespace

TEST_CASE("mime::base64_decode_step skips and keeps each byte value as GMime does") {
    for (int b = 0; b < 256; ++b) {
        CAPTURE(b);
        for (const char* tail : {"REVGR0g", "REVGR0g=", "REVG\r\nR0g=", "RE=VGR0g=="}) {
            std::string input = std::string("QUJDRA") + static_cast<char>(b) + tail;
            for (std::vector<std::size_t> sizes :
                 {std::vector<std::size_t>{}, {3}, {7}, {2, 5}, {6, 1, 1}}) {
                CHECK(with_hookctl(input, sizes) == with_gmime(input, sizes));
            }
        }
    }
}

TEST_CASE("mime::base64_decode_step decodes as GMime does, whatever the chunks and the noise") {
    std::mt19937 random(20260101); // fixed: a failure replays
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const std::string noise = "\r\n \t=-_.!\x80\xff";
    for (int round = 0; round < 3000; ++round) {
        CAPTURE(round);
        std::size_t length = random() % 600;
        std::string input;
        for (std::size_t i = 0; i < length; ++i) {
            bool noisy = random() % 20 == 0;
            input += noisy ? noise[random() % noise.size()] : alphabet[random() % 64];
            if (random() % 77 == 0) {
                input += "\r\n";
            }
        }
        for (int pad = static_cast<int>(random() % 3); pad > 0; --pad) {
            input += '=';
        }
        std::vector<std::size_t> sizes;
        for (std::size_t at = 0; at < input.size();) {
            sizes.push_back(1 + random() % 97);
            at += sizes.back();
        }
        CHECK(with_hookctl(input, sizes) == with_gmime(input, sizes));
    }
}
