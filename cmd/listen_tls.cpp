// listen: --tls-client-ca, --tls-client-subject, --allow-from, --trust-proxy, and the CAs that
// --forward-to trusts (--cacert, --capath).
#include "listen_tls.hpp"

namespace hookctl::cli {

void add_tls_client_options(CLI::App& cmd, http::TlsClientSpec& tls,
                            bool client_certificate); // send.cpp

void add_listen_tls_options(CLI::App& cmd, ListenTlsFlags& flags) {
    cmd.add_option("--tls-client-ca", flags.client_ca,
                   "Require a client certificate issued by a CA in this PEM FILE (mutual TLS)")
        ->type_name("FILE")
        ->group("TLS");
    cmd.add_option("--tls-client-subject", flags.client_subjects,
                   "Accept only client certificates whose subject or a subjectAltName matches "
                   "PATTERN (shell-style; repeatable)")
        ->type_name("PATTERN")
        ->allow_extra_args(false)
        ->group("TLS");
    cmd.add_option("--allow-from", flags.allow_from,
                   "Answer 403 to sources outside CIDR (IPv4 or IPv6; repeatable)")
        ->type_name("CIDR")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->group("Access");
    cmd.add_option("--trust-proxy", flags.trust_proxy,
                   "Take the client address from Forwarded/X-Forwarded-For when the peer is in "
                   "CIDR (repeatable)")
        ->type_name("CIDR")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->group("Access");
    add_tls_client_options(cmd, flags.forward, false);
}

namespace {

Result<std::vector<util::Cidr>> parse_cidrs(const std::vector<std::string>& texts,
                                            const std::string& flag) {
    std::vector<util::Cidr> out;
    for (const auto& text : texts) {
        auto cidr = util::parse_cidr(text);
        if (!cidr) {
            return fail(ExitCode::usage, flag + ": " + cidr.error().message);
        }
        out.push_back(*cidr);
    }
    return out;
}

} // namespace

Result<void> apply_listen_tls_options(const ListenTlsFlags& flags,
                                      receive::ListenOptions& options) {
    if (!flags.client_subjects.empty() && flags.client_ca.empty()) {
        return fail(ExitCode::usage, "--tls-client-subject needs --tls-client-ca FILE (the CA "
                                     "that issues the client certificates)");
    }
    options.tls_client_ca = flags.client_ca;
    options.tls_client_subjects = flags.client_subjects;
    auto allow = parse_cidrs(flags.allow_from, "--allow-from");
    HOOKCTL_RETURN_IF_ERROR(allow);
    auto proxies = parse_cidrs(flags.trust_proxy, "--trust-proxy");
    HOOKCTL_RETURN_IF_ERROR(proxies);
    options.access.allow_from = std::move(*allow);
    options.access.trusted_proxies = std::move(*proxies);
    return {};
}

Result<http::ClientOptions> forward_client_options(const ListenTlsFlags& flags, bool forwarding) {
    http::ClientOptions out;
    if (!forwarding) {
        if (flags.forward.has_trust()) {
            return fail(ExitCode::usage, "--cacert and --capath set the CAs --forward-to trusts: "
                                         "pass --forward-to URL too");
        }
        return out;
    }
    auto tls = http::resolve_tls_client(flags.forward, {}, "", http::process_env);
    HOOKCTL_RETURN_IF_ERROR(tls);
    out.tls = std::move(*tls);
    return out;
}

} // namespace hookctl::cli
