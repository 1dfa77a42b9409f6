#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <hookctl/http/client.hpp>
#include <hookctl/receive/server.hpp>

// listen's flags for mutual TLS, source allowlists and the CAs --forward-to trusts, apart from
// cmd/listen.cpp so the receiver's other flags and these change without stepping on each other.
namespace hookctl::cli {

struct ListenTlsFlags {
    std::string client_ca;                    // --tls-client-ca FILE
    std::vector<std::string> client_subjects; // --tls-client-subject PATTERN (repeatable)
    std::vector<std::string> allow_from;      // --allow-from CIDR (repeatable)
    std::vector<std::string> trust_proxy;     // --trust-proxy CIDR (repeatable)
    http::TlsClientSpec forward;              // --cacert / --capath for --forward-to
};

void add_listen_tls_options(CLI::App& cmd, ListenTlsFlags& flags);

// Checks and copies the flags into `options`; fails (exit 2) on a malformed CIDR or a flag that
// needs another (--tls-client-subject without --tls-client-ca).
Result<void> apply_listen_tls_options(const ListenTlsFlags& flags, receive::ListenOptions& options);

// The client options of --forward-to (the CAs it trusts); fails (exit 2) when --cacert or
// --capath is given without --forward-to, or names an unusable file.
Result<http::ClientOptions> forward_client_options(const ListenTlsFlags& flags, bool forwarding);

} // namespace hookctl::cli
