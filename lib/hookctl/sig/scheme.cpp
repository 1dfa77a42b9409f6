#include <string>

#include <hookctl/sig/scheme.hpp>

namespace hookctl::sig {

using keys::SecretEncoding;

const std::array<SchemeInfo, 7>& all_schemes() {
    static const std::array<SchemeInfo, 7> schemes{{
        {Scheme::mailparse, "mailparse", "X-Signature", "X-Signature-Timestamp", "", true, true,
         SecretEncoding::raw},
        {Scheme::standard, "standard", "webhook-signature", "webhook-timestamp", "webhook-id", true,
         true, SecretEncoding::standard_webhooks},
        {Scheme::svix, "svix", "svix-signature", "svix-timestamp", "svix-id", true, true,
         SecretEncoding::standard_webhooks},
        {Scheme::stripe, "stripe", "Stripe-Signature", "", "", true, true, SecretEncoding::raw},
        {Scheme::github, "github", "X-Hub-Signature-256", "", "", false, false,
         SecretEncoding::raw},
        {Scheme::slack, "slack", "X-Slack-Signature", "X-Slack-Request-Timestamp", "", true, false,
         SecretEncoding::raw},
        {Scheme::shopify, "shopify", "X-Shopify-Hmac-Sha256", "", "", false, false,
         SecretEncoding::raw},
    }};
    return schemes;
}

const SchemeInfo& info(Scheme scheme) {
    return all_schemes()[static_cast<std::size_t>(scheme)];
}

Result<Scheme> parse_scheme(std::string_view name) {
    for (const auto& s : all_schemes()) {
        if (s.name == name) {
            return s.scheme;
        }
    }
    return fail(ExitCode::usage,
                "unknown scheme '" + std::string(name) +
                    "': use mailparse, standard, svix, stripe, github, slack or shopify");
}

std::optional<Scheme> detect_scheme(const util::HeaderList& headers) {
    // Most specific first: a request can carry X-Signature beside a vendor's own header.
    static constexpr Scheme order[] = {Scheme::standard, Scheme::svix,  Scheme::stripe,
                                       Scheme::github,   Scheme::slack, Scheme::shopify,
                                       Scheme::mailparse};
    for (Scheme s : order) {
        if (headers.contains(info(s).signature_header)) {
            return s;
        }
    }
    return std::nullopt;
}

std::string signed_prefix(Scheme scheme, std::int64_t timestamp, std::string_view id) {
    std::string ts = std::to_string(timestamp);
    switch (scheme) {
    case Scheme::mailparse:
    case Scheme::stripe:
        return ts + ".";
    case Scheme::standard:
    case Scheme::svix:
        return std::string(id) + "." + ts + ".";
    case Scheme::slack:
        return "v0:" + ts + ":";
    case Scheme::github:
    case Scheme::shopify:
        return {};
    }
    return {};
}

} // namespace hookctl::sig
