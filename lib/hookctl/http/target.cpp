#include <charconv>

#include <hookctl/http/target.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::http {
namespace {

Result<std::chrono::milliseconds> duration_flag(const std::string& flag, const std::string& text) {
    auto d = util::parse_duration(text);
    if (!d) {
        return fail(ExitCode::usage, flag + ": " + d.error().message);
    }
    return *d;
}

} // namespace

Result<ResolvedDelivery> resolve_delivery(const DeliverySpec& spec, const Prompt& prompt,
                                          std::int64_t keyring_time_s, Resolve mode) {
    ResolvedDelivery out;
    if (spec.to.empty() == spec.target.empty()) {
        return fail(ExitCode::usage, spec.to.empty()
                                         ? "no destination: pass --to URL or --target NAME"
                                         : "--to and --target both given: pass one of them");
    }
    std::vector<keys::SecretSource> sources = spec.secrets;
    sig::Scheme scheme = sig::Scheme::mailparse;
    if (!spec.target.empty()) {
        auto config = load_config_or_default(spec.config_path);
        HOOKCTL_RETURN_IF_ERROR(config);
        auto target = config->find_target(spec.target);
        HOOKCTL_RETURN_IF_ERROR(target);
        out.target = **target;
        out.target_label = out.target->name;
        out.endpoint.url = out.target->url;
        scheme = out.target->scheme;
        if (sources.empty()) {
            sources = out.target->secrets;
        }
        if (mode == Resolve::to_send) {
            auto guard = check_production_guard(*out.target, spec.yes, prompt);
            HOOKCTL_RETURN_IF_ERROR(guard);
        }
    } else {
        if (!(spec.to.starts_with("http://") || spec.to.starts_with("https://"))) {
            return fail(ExitCode::usage, "--to " + spec.to + ": not an http:// or https:// URL");
        }
        out.endpoint.url = spec.to;
        out.target_label = spec.to;
    }
    if (!spec.scheme.empty()) {
        auto parsed = sig::parse_scheme(spec.scheme);
        HOOKCTL_RETURN_IF_ERROR(parsed);
        scheme = *parsed;
    }
    out.endpoint.scheme = scheme;

    int retries = 0;
    auto [ptr, ec] =
        std::from_chars(spec.retries.data(), spec.retries.data() + spec.retries.size(), retries);
    if (ec != std::errc() || ptr != spec.retries.data() + spec.retries.size() || retries < 0 ||
        retries > 1000) {
        return fail(ExitCode::usage,
                    "--retries " + spec.retries + ": expected a whole number from 0 to 1000");
    }
    out.policy.retries = retries;
    auto base = duration_flag("--backoff-base", spec.backoff_base);
    auto max = duration_flag("--backoff-max", spec.backoff_max);
    auto timeout = duration_flag("--timeout", spec.timeout);
    auto connect = duration_flag("--connect-timeout", spec.connect_timeout);
    for (auto* r : {&base, &max, &timeout, &connect}) {
        if (!*r) {
            return std::unexpected(r->error());
        }
    }
    out.policy.backoff_base = *base;
    out.policy.backoff_max = *max;
    if (!spec.max_elapsed.empty()) {
        auto elapsed = duration_flag("--max-elapsed", spec.max_elapsed);
        HOOKCTL_RETURN_IF_ERROR(elapsed);
        out.policy.max_elapsed = *elapsed;
    }
    if (timeout->count() <= 0 || connect->count() <= 0) {
        return fail(ExitCode::usage, "--timeout and --connect-timeout must be above zero");
    }
    out.client.total_timeout = *timeout;
    out.client.connect_timeout = *connect;
    out.client.insecure = spec.insecure;
    auto tls = resolve_tls_client(spec.tls, out.target ? out.target->tls : TlsClientSpec{},
                                  out.target ? out.target->name : std::string(), process_env);
    HOOKCTL_RETURN_IF_ERROR(tls);
    out.client.tls = std::move(*tls);
    if (mode == Resolve::to_check) {
        return out;
    }

    if (sources.empty()) {
        return fail(ExitCode::usage,
                    "no secret to sign with: pass --secret-env NAME, --secret-file PATH or "
                    "--keyring FILE" +
                        std::string(out.target ? ", or set secret_env/secret_file/keyring on "
                                                 "the target"
                                               : ""));
    }
    auto texts = keys::load_secrets(sources, keyring_time_s);
    HOOKCTL_RETURN_IF_ERROR(texts);
    auto keys = keys::decode_keys(*texts, sig::info(scheme).encoding);
    HOOKCTL_RETURN_IF_ERROR(keys);
    out.endpoint.keys = std::move(*keys);
    return out;
}

} // namespace hookctl::http
