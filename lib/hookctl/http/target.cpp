#include <hookctl/http/target.hpp>

namespace hookctl::http {

Result<ResolvedDelivery> resolve_delivery(const DeliverySpec& spec, const Prompt& prompt,
                                          std::int64_t keyring_time_s, Resolve mode) {
    ResolvedDelivery out;
    if (spec.to.empty() == spec.target.empty()) {
        return fail(ExitCode::usage, spec.to.empty()
                                         ? "no destination: give a URL or a target name"
                                         : "a URL and a target name both given: give one of them");
    }
    std::vector<keys::SecretSource> sources = spec.secrets;
    sig::Scheme scheme = sig::Scheme::mailparse;
    if (!spec.target.empty()) {
        auto config = load_config_or_default(spec.config_path, spec.advice.missing_config);
        HOOKCTL_RETURN_IF_ERROR(config);
        auto target = config->find_target(spec.target, spec.advice.unknown_target);
        HOOKCTL_RETURN_IF_ERROR(target);
        out.target = **target;
        out.target_label = out.target->name;
        out.endpoint.url = out.target->url;
        scheme = out.target->scheme;
        if (sources.empty()) {
            sources = out.target->secrets;
        }
        if (mode == Resolve::to_send) {
            auto guard = check_production_guard(*out.target, spec.yes, prompt, spec.advice.confirm);
            HOOKCTL_RETURN_IF_ERROR(guard);
        }
    } else {
        if (!(spec.to.starts_with("http://") || spec.to.starts_with("https://"))) {
            return fail(ExitCode::usage, "URL " + spec.to + ": not an http:// or https:// URL");
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

    if (spec.retries < 0 || spec.retries > 1000) {
        return fail(ExitCode::usage, "the retry count must be a whole number from 0 to 1000, not " +
                                         std::to_string(spec.retries));
    }
    if (spec.backoff_base.count() < 0 || spec.backoff_max.count() < 0 ||
        (spec.max_elapsed && spec.max_elapsed->count() < 0)) {
        return fail(ExitCode::usage, "the backoff delays and the retry time limit cannot be "
                                     "negative");
    }
    if (spec.timeout.count() <= 0 || spec.connect_timeout.count() <= 0) {
        return fail(ExitCode::usage,
                    "the request timeout and the connect timeout must be above zero");
    }
    out.policy.retries = spec.retries;
    out.policy.backoff_base = spec.backoff_base;
    out.policy.backoff_max = spec.backoff_max;
    out.policy.max_elapsed = spec.max_elapsed;
    out.client.total_timeout = spec.timeout;
    out.client.connect_timeout = spec.connect_timeout;
    out.client.insecure = spec.insecure;
    auto tls = resolve_tls_client(spec.tls, out.target ? out.target->tls : TlsClientSpec{},
                                  out.target ? out.target->name : std::string(), process_env);
    HOOKCTL_RETURN_IF_ERROR(tls);
    out.client.tls = std::move(*tls);
    if (mode == Resolve::to_check) {
        return out;
    }

    if (sources.empty()) {
        std::string fix = spec.advice.add_secret;
        if (out.target) {
            fix += (fix.empty() ? "" : ", or ") +
                   std::string("set secret_env/secret_file/keyring on the target");
        }
        return fail(ExitCode::usage, "no secret to sign with" + (fix.empty() ? "" : ": " + fix));
    }
    auto texts = keys::load_secrets(sources, keyring_time_s);
    HOOKCTL_RETURN_IF_ERROR(texts);
    auto keys = keys::decode_keys(*texts, sig::info(scheme).encoding);
    HOOKCTL_RETURN_IF_ERROR(keys);
    out.endpoint.keys = std::move(*keys);
    return out;
}

} // namespace hookctl::http
