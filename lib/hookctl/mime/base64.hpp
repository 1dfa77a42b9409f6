#pragma once

#include <cstddef>
#include <cstdint>

namespace hookctl::mime {

// One step of base64 decoding with the same output and the same `state`/`save` as GMime's
// g_mime_encoding_base64_decode_step (and so its basic filter): bytes outside the alphabet
// are skipped, '=' is handled by GMime's own function. Chunks without '=' (all but the end
// of a part) are decoded four characters at a time, about four times faster. `out` needs
// room for len * 3 / 4 + 3 bytes. Returns the number of bytes written.
std::size_t base64_decode_step(const unsigned char* in, std::size_t len, unsigned char* out,
                               int& state, std::uint32_t& save);

} // namespace hookctl::mime
