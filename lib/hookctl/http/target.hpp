#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <hookctl/http/client.hpp>
#include <hookctl/http/config.hpp>
#include <hookctl/http/deliver.hpp>
#include <hookctl/http/retry.hpp>

namespace hookctl::http {

// What resolve_delivery's messages tell a person to do when something is missing, in the
// caller's words: the commands name their flags, the library names none. Each ends a message;
// an empty one is left out.
struct DeliveryAdvice {
    std::string missing_config; // the config file given does not exist ("pass --config FILE")
    std::string unknown_target; // no such target in the config ("pass --config FILE or --to URL")
    std::string confirm;        // a production target, no one to ask ("pass --yes to confirm")
    std::string add_secret;     // no secret ("pass --secret-env NAME, --secret-file PATH or ...")
};

// Delivery settings, shared by send, replay, trigger and probe: where to (checked and looked up
// by resolve_delivery), and the retry policy and timeouts already parsed (the commands parse
// and name their flags; resolve_delivery only checks the values' ranges).
struct DeliverySpec {
    std::string config_path;                 // the config file (empty: the default path)
    std::string to;                          // a URL, or
    std::string target;                      // the name of a target in the config file
    std::string scheme;                      // empty: the target's, or mailparse
    std::vector<keys::SecretSource> secrets; // empty: the target's
    bool yes = false;                        // a production target is confirmed
    bool insecure = false;                   // skip TLS verification
    TlsClientSpec tls;                       // wins over the target's, group by group
    DeliveryAdvice advice;                   // what messages advise (a replay plan omits it)
    int retries = 5;                         // after the first attempt: 0 to 1000
    std::chrono::milliseconds backoff_base{500};
    std::chrono::milliseconds backoff_max{30000};
    std::optional<std::chrono::milliseconds> max_elapsed; // empty: no limit
    std::chrono::milliseconds timeout{30000};             // whole request, above zero
    std::chrono::milliseconds connect_timeout{10000};     // above zero
};

struct ResolvedDelivery {
    Endpoint endpoint;
    RetryPolicy policy;
    ClientOptions client;
    std::optional<Target> target; // when the spec named a target
    std::string target_label;     // the target name, or the URL
};

// What resolve_delivery does beyond checking: a real send loads the keys and asks the
// production guard; a dry run checks everything else exactly as the send would.
enum class Resolve { to_send, to_check };

// Checks and resolves `spec`: exactly one of `to` (an http:// or https:// URL) and `target`
// (the commands check these first, naming their flags), the target from the config, the
// production guard (`prompt` empty when there is no TTY), the secrets loaded and decoded for
// the scheme, the retry count and durations checked, the TLS files read and checked
// (resolve_tls_client: the spec's trust and client certificate win over the target's). Every
// failure is exit 2 and happens before anything is sent; messages about something missing end
// with `spec.advice`. With Resolve::to_check, no secret is loaded and no guard asked. Keyrings
// are judged at `keyring_time_s` (Unix seconds: the command's clock, which honours HOOKCTL_NOW).
Result<ResolvedDelivery> resolve_delivery(const DeliverySpec& spec, const Prompt& prompt,
                                          std::int64_t keyring_time_s,
                                          Resolve mode = Resolve::to_send);

} // namespace hookctl::http
