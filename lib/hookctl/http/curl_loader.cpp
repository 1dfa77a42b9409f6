// libcurl, loaded when a command first uses it.
//
// libcurl.so.4 brings 26 more shared libraries (nghttp2, ssh2, rtmp, gnutls, krb5, ldap, ...)
// that the dynamic loader would otherwise map and relocate at the start of every command,
// `hookctl verify` and `sign` included, which never send anything: they were most of its
// start-up time (issue 16). This file defines the libcurl functions hookctl calls; the first
// call dlopen()s libcurl.so.4 and binds the real ones, so the executable has no DT_NEEDED on
// libcurl (the link drops it with --as-needed, as nothing else references it).
//
// A libcurl function used elsewhere in hookctl but missing here still links, straight to
// libcurl.so: the program works and only its start-up is slower again (bench/sign-verify.sh
// prints the libraries `hookctl` loads at start).
//
// The functions are hidden (this file is compiled with -fvisibility=hidden): the executable
// never exports them, so libcurl's own calls cannot bind back to these forwarders.
#define CURL_DISABLE_TYPECHECK // the typecheck macros would rename the definitions below
#include <cstdarg>
#include <cstdio>
#include <dlfcn.h>
#include <string>

#include <curl/curl.h>

namespace {

// The real entry points, or null members when libcurl.so.4 could not be loaded.
struct Curl {
    bool loaded = false;
    std::string error;
    decltype(&::curl_global_init) global_init = nullptr;
    decltype(&::curl_version) version = nullptr;
    decltype(&::curl_getdate) getdate = nullptr;
    decltype(&::curl_easy_init) easy_init = nullptr;
    decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
    decltype(&::curl_easy_setopt) easy_setopt = nullptr;
    decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
    decltype(&::curl_easy_perform) easy_perform = nullptr;
    decltype(&::curl_easy_strerror) easy_strerror = nullptr;
    decltype(&::curl_multi_init) multi_init = nullptr;
    decltype(&::curl_multi_cleanup) multi_cleanup = nullptr;
    decltype(&::curl_multi_setopt) multi_setopt = nullptr;
    decltype(&::curl_multi_add_handle) multi_add_handle = nullptr;
    decltype(&::curl_multi_remove_handle) multi_remove_handle = nullptr;
    decltype(&::curl_multi_socket_action) multi_socket_action = nullptr;
    decltype(&::curl_multi_info_read) multi_info_read = nullptr;
    decltype(&::curl_multi_strerror) multi_strerror = nullptr;
    decltype(&::curl_slist_append) slist_append = nullptr;
    decltype(&::curl_slist_free_all) slist_free_all = nullptr;
};

// libcurl's ABI has been soname 4 since 2006 (libcurl 7.16), 8.x included.
constexpr const char* k_soname = "libcurl.so.4";

Curl load() {
    Curl c;
    void* handle = ::dlopen(k_soname, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char* why = ::dlerror();
        c.error = why != nullptr ? why : "unknown error";
        return c;
    }
    bool all = true;
    auto bind = [&](auto& slot, const char* name) {
        slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(::dlsym(handle, name));
        if (slot == nullptr) {
            all = false;
            c.error = std::string(k_soname) + " has no " + name;
        }
    };
    bind(c.global_init, "curl_global_init");
    bind(c.version, "curl_version");
    bind(c.getdate, "curl_getdate");
    bind(c.easy_init, "curl_easy_init");
    bind(c.easy_cleanup, "curl_easy_cleanup");
    bind(c.easy_setopt, "curl_easy_setopt");
    bind(c.easy_getinfo, "curl_easy_getinfo");
    bind(c.easy_perform, "curl_easy_perform");
    bind(c.easy_strerror, "curl_easy_strerror");
    bind(c.multi_init, "curl_multi_init");
    bind(c.multi_cleanup, "curl_multi_cleanup");
    bind(c.multi_setopt, "curl_multi_setopt");
    bind(c.multi_add_handle, "curl_multi_add_handle");
    bind(c.multi_remove_handle, "curl_multi_remove_handle");
    bind(c.multi_socket_action, "curl_multi_socket_action");
    bind(c.multi_info_read, "curl_multi_info_read");
    bind(c.multi_strerror, "curl_multi_strerror");
    bind(c.slist_append, "curl_slist_append");
    bind(c.slist_free_all, "curl_slist_free_all");
    c.loaded = all; // the handle stays open for the life of the process
    return c;
}

// Loads libcurl once per process (thread-safe); says once on stderr why it could not.
const Curl& curl() {
    static const Curl loaded = [] {
        Curl c = load();
        if (!c.loaded) {
            std::fprintf(stderr,
                         "hookctl: cannot load %s (%s); install Debian's libcurl4 package\n",
                         k_soname, c.error.c_str());
        }
        return c;
    }();
    return loaded;
}

// The value after `option` in curl_easy_setopt/curl_multi_setopt, read as the type libcurl's
// option numbering gives it (every such type is passed in one integer register on the ABIs
// Debian supports, but reading it as its own type is what the C standard asks).
template <class Call> auto forward_option(int option, va_list args, Call&& call) {
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        return call(va_arg(args, long));
    }
    if (option < CURLOPTTYPE_FUNCTIONPOINT) {
        return call(va_arg(args, void*));
    }
    if (option < CURLOPTTYPE_OFF_T) {
        using Function = void (*)();
        return call(va_arg(args, Function));
    }
    if (option < CURLOPTTYPE_BLOB) {
        return call(va_arg(args, curl_off_t));
    }
    return call(va_arg(args, void*)); // struct curl_blob*
}

} // namespace

extern "C" {

CURLcode curl_global_init(long flags) {
    return curl().loaded ? curl().global_init(flags) : CURLE_FAILED_INIT;
}

char* curl_version() {
    static char unavailable[] = "libcurl (not loaded)";
    return curl().loaded ? curl().version() : unavailable;
}

time_t curl_getdate(const char* text, const time_t* unused) {
    return curl().loaded ? curl().getdate(text, unused) : -1;
}

CURL* curl_easy_init() {
    return curl().loaded ? curl().easy_init() : nullptr;
}

void curl_easy_cleanup(CURL* handle) {
    if (curl().loaded) {
        curl().easy_cleanup(handle);
    }
}

CURLcode curl_easy_setopt(CURL* handle, CURLoption option, ...) {
    if (!curl().loaded) {
        return CURLE_FAILED_INIT;
    }
    va_list args;
    va_start(args, option);
    CURLcode result = forward_option(
        option, args, [&](auto value) { return curl().easy_setopt(handle, option, value); });
    va_end(args);
    return result;
}

CURLcode curl_easy_getinfo(CURL* handle, CURLINFO info, ...) {
    if (!curl().loaded) {
        return CURLE_FAILED_INIT;
    }
    va_list args;
    va_start(args, info);
    void* out = va_arg(args, void*); // every CURLINFO value is returned through a pointer
    va_end(args);
    return curl().easy_getinfo(handle, info, out);
}

CURLcode curl_easy_perform(CURL* handle) {
    return curl().loaded ? curl().easy_perform(handle) : CURLE_FAILED_INIT;
}

const char* curl_easy_strerror(CURLcode code) {
    return curl().loaded ? curl().easy_strerror(code) : "libcurl is not loaded";
}

CURLM* curl_multi_init() {
    return curl().loaded ? curl().multi_init() : nullptr;
}

CURLMcode curl_multi_cleanup(CURLM* multi) {
    return curl().loaded ? curl().multi_cleanup(multi) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_setopt(CURLM* multi, CURLMoption option, ...) {
    if (!curl().loaded) {
        return CURLM_INTERNAL_ERROR;
    }
    va_list args;
    va_start(args, option);
    CURLMcode result = forward_option(
        option, args, [&](auto value) { return curl().multi_setopt(multi, option, value); });
    va_end(args);
    return result;
}

CURLMcode curl_multi_add_handle(CURLM* multi, CURL* handle) {
    return curl().loaded ? curl().multi_add_handle(multi, handle) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM* multi, CURL* handle) {
    return curl().loaded ? curl().multi_remove_handle(multi, handle) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_socket_action(CURLM* multi, curl_socket_t socket, int events, int* running) {
    return curl().loaded ? curl().multi_socket_action(multi, socket, events, running)
                         : CURLM_INTERNAL_ERROR;
}

CURLMsg* curl_multi_info_read(CURLM* multi, int* left) {
    return curl().loaded ? curl().multi_info_read(multi, left) : nullptr;
}

const char* curl_multi_strerror(CURLMcode code) {
    return curl().loaded ? curl().multi_strerror(code) : "libcurl is not loaded";
}

curl_slist* curl_slist_append(curl_slist* list, const char* text) {
    return curl().loaded ? curl().slist_append(list, text) : nullptr;
}

void curl_slist_free_all(curl_slist* list) {
    if (curl().loaded) {
        curl().slist_free_all(list);
    }
}

} // extern "C"
