// Functions of the statically linked GLib and GMime replaced at link time (ld's --wrap, set
// with HOOKCTL_STATIC_DEPS in CMakeLists.txt; only linked into such builds).
//
// 1. GLib's slice allocator becomes malloc. GLib 2.74's allocator keeps per-thread magazines
//    of small blocks; GLib itself made g_slice_* plain malloc in 2.76. GMime allocates every
//    GObject of a message tree (parts, headers, parameters, streams) through it: 12-15% of a
//    corpus parse. G_SLICE=always-malloc would do the same, but GLib reads it before main().
// 2. iconv_open keeps one converter of each pair of charsets it opens open for the rest of the
//    process. glibc unloads a charset's conversion module soon after its last converter
//    closes, and GMime closes its converters after every header and text part: the next
//    iconv_open of that charset dlopen()ed the module again (7% of a corpus parse).
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <glib.h>
#include <iconv.h>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

extern "C" {

gpointer __wrap_g_slice_alloc(gsize size) {
    return g_malloc(size);
}

gpointer __wrap_g_slice_alloc0(gsize size) {
    return g_malloc0(size);
}

gpointer __wrap_g_slice_copy(gsize size, gconstpointer block) {
    gpointer copy = g_malloc(size);
    if (copy != nullptr && block != nullptr) {
        std::memcpy(copy, block, size);
    }
    return copy;
}

void __wrap_g_slice_free1(gsize /*size*/, gpointer block) {
    g_free(block);
}

void __wrap_g_slice_free_chain_with_offset(gsize /*size*/, gpointer chain, gsize next_offset) {
    while (chain != nullptr) {
        auto* current = static_cast<char*>(chain);
        std::memcpy(&chain, current + next_offset, sizeof chain);
        g_free(current);
    }
}

iconv_t __real_iconv_open(const char* to, const char* from);

} // extern "C"

namespace {

const auto k_failed = reinterpret_cast<iconv_t>(static_cast<std::intptr_t>(-1));

// The converters kept open, by "from\nto"; at most 64, so that messages naming many charsets
// cannot make it grow without bound. Never destroyed: an iconv_open may come after main.
struct Kept {
    std::mutex mutex;
    std::vector<std::pair<std::string, iconv_t>> open;
};

void keep_loaded(const char* to, const char* from) {
    static auto* kept = new Kept;
    std::string key = std::string(from) + '\n' + to;
    std::lock_guard lock(kept->mutex);
    if (kept->open.size() >= 64) {
        return;
    }
    for (const auto& entry : kept->open) {
        if (entry.first == key) {
            return;
        }
    }
    if (iconv_t cd = __real_iconv_open(to, from); cd != k_failed) {
        kept->open.emplace_back(std::move(key), cd);
    }
}

} // namespace

extern "C" iconv_t __wrap_iconv_open(const char* to, const char* from) {
    iconv_t cd = __real_iconv_open(to, from);
    if (cd != k_failed && to != nullptr && from != nullptr) {
        int saved = errno;
        keep_loaded(to, from);
        errno = saved;
    }
    return cd;
}
