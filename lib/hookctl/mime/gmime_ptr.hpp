#pragma once

// RAII for the GMime/GLib objects the parser touches. Nothing else in hookctl calls
// g_object_unref or g_free directly.

#include <memory>

#include <gmime/gmime.h>

namespace hookctl::mime {

// Initialises GMime once per process (thread-safe); every entry point calls it first.
void ensure_gmime();

struct GObjectUnref {
    void operator()(gpointer object) const {
        if (object != nullptr) {
            g_object_unref(object);
        }
    }
};

// An owned reference to a GObject (streams, parsers, messages, filters).
template <class T> using Owned = std::unique_ptr<T, GObjectUnref>;

struct GFree {
    void operator()(gpointer memory) const { g_free(memory); }
};

// A string GMime or GLib allocated and the caller must free.
using GString_ = std::unique_ptr<char, GFree>;

struct ParserOptionsFree {
    void operator()(GMimeParserOptions* options) const {
        if (options != nullptr) {
            g_mime_parser_options_free(options);
        }
    }
};

using OwnedParserOptions = std::unique_ptr<GMimeParserOptions, ParserOptionsFree>;

} // namespace hookctl::mime
