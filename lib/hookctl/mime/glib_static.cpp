// GLib's slice allocator replaced at link time by malloc (ld's --wrap, set with
// HOOKCTL_STATIC_DEPS in CMakeLists.txt; only linked into such builds). GLib 2.74's allocator
// keeps per-thread magazines of small blocks; GLib itself made g_slice_* plain malloc in 2.76.
// GMime allocates every GObject of a message tree (parts, headers, parameters, streams)
// through it: 12-15% of a corpus parse. G_SLICE=always-malloc would do the same, but GLib
// reads it before main() can set it.
#include <cstring>
#include <glib.h>

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

} // extern "C"
