#include <array>
#include <cstdint>
#include <cstring>

#include <gmime/gmime.h>

#include <hookctl/mime/base64.hpp>

namespace hookctl::mime {

namespace {

constexpr unsigned char k_skip = 0xff;
constexpr const char* k_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The value of each base64 character, k_skip for the bytes decoding ignores.
constexpr std::array<unsigned char, 256> k_rank = [] {
    std::array<unsigned char, 256> rank{};
    rank.fill(k_skip);
    for (unsigned char i = 0; i < 64; ++i) {
        rank[static_cast<unsigned char>(k_alphabet[i])] = i;
    }
    return rank;
}();

// For the character at position `p` of a quartet: its six bits already in place in the
// 24-bit group, or k_invalid for a byte outside the alphabet.
constexpr std::uint32_t k_invalid = 1U << 24;
using Table = std::array<std::uint32_t, 256>;
constexpr std::array<Table, 4> k_placed = [] {
    std::array<Table, 4> placed{};
    for (std::size_t p = 0; p < 4; ++p) {
        for (std::size_t c = 0; c < 256; ++c) {
            placed[p][c] =
                k_rank[c] == k_skip ? k_invalid : std::uint32_t{k_rank[c]} << (18 - 6 * p);
        }
    }
    return placed;
}();

} // namespace

std::size_t base64_decode_step(const unsigned char* in, std::size_t len, unsigned char* out,
                               int& state, std::uint32_t& save) {
    int npad = (state >> 8) & 0xff;
    if (npad != 0 || std::memchr(in, '=', len) != nullptr) {
        // Padding in play: GMime's own step, for its handling of '=' across chunks.
        guint32 saved = save;
        std::size_t n = g_mime_encoding_base64_decode_step(in, len, out, &state, &saved);
        save = saved;
        return n;
    }
    int n = state & 0xff;
    std::uint32_t saved = save;
    const unsigned char* end = in + len;
    unsigned char* start = out;
    while (in < end) {
        // Whole quartets while they come (n == 0 between them): one test for four characters.
        while (n == 0 && end - in >= 4) {
            std::uint32_t bits =
                k_placed[0][in[0]] | k_placed[1][in[1]] | k_placed[2][in[2]] | k_placed[3][in[3]];
            if ((bits & k_invalid) != 0) {
                break;
            }
            out[0] = static_cast<unsigned char>(bits >> 16);
            out[1] = static_cast<unsigned char>(bits >> 8);
            out[2] = static_cast<unsigned char>(bits);
            out += 3;
            in += 4;
            saved = bits; // as the one-character loop leaves it
        }
        if (in == end) {
            break;
        }
        unsigned char c = k_rank[*in++];
        if (c == k_skip) {
            continue;
        }
        saved = saved << 6 | c;
        if (++n == 4) {
            *out++ = static_cast<unsigned char>(saved >> 16);
            *out++ = static_cast<unsigned char>(saved >> 8);
            *out++ = static_cast<unsigned char>(saved);
            n = 0;
        }
    }
    state = n;
    save = n != 0 ? saved : 0;
    return static_cast<std::size_t>(out - start);
}

} // namespace hookctl::mime
