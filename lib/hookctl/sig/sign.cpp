#include <hookctl/sig/crypto.hpp>
#include <hookctl/sig/sign.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::sig {

using keys::KeyKind;

std::string new_message_id() {
    static constexpr char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
    std::string bytes = util::random_bytes(26);
    std::string id = "msg_";
    for (unsigned char b : bytes) {
        id += alphabet[b % 32];
    }
    return id;
}

Result<Signed> sign(const SignRequest& request, const std::vector<keys::Key>& keys,
                    util::ByteSource& body) {
    const SchemeInfo& scheme = info(request.scheme);
    if (keys.empty()) {
        return fail(ExitCode::usage, "no secret to sign with: give --secret-env NAME, "
                                     "--secret-file PATH or --keyring FILE");
    }
    if (!scheme.multi_signature && keys.size() > 1) {
        return fail(ExitCode::usage,
                    "scheme " + std::string(scheme.name) + " carries one signature, but " +
                        std::to_string(keys.size()) +
                        " secrets were given: sign with the new secret only (receivers verify "
                        "with several)");
    }
    bool any_ed25519 = false;
    for (const auto& key : keys) {
        if (key.kind == KeyKind::ed25519_public) {
            return fail(ExitCode::usage, "secret from " + key.origin +
                                             " is a whpk_ public key: signing needs the whsk_ "
                                             "signing key");
        }
        if (key.kind == KeyKind::ed25519_private) {
            if (request.scheme != Scheme::standard && request.scheme != Scheme::svix) {
                return fail(ExitCode::usage, "ed25519 keys (whsk_) sign only the standard and "
                                             "svix schemes");
            }
            any_ed25519 = true;
        }
    }
    if (!scheme.id_header.empty() && request.id.empty()) {
        return fail(ExitCode::usage, "scheme " + std::string(scheme.name) +
                                         " signs a message id: give --id or leave it to default");
    }

    std::string prefix = signed_prefix(request.scheme, request.timestamp, request.id);
    // ed25519 signs the whole message at once, so its body is held in memory; HMAC streams.
    std::string whole;
    util::MemorySource held(whole);
    util::ByteSource* source = &body;
    if (any_ed25519) {
        auto all = util::read_all(body);
        HOOKCTL_RETURN_IF_ERROR(all);
        whole = prefix + *all;
        held = util::MemorySource(std::string_view(whole).substr(prefix.size()));
        source = &held;
    }

    std::vector<std::string_view> hmac_keys;
    for (const auto& key : keys) {
        if (key.kind == KeyKind::hmac) {
            hmac_keys.push_back(key.bytes.view());
        }
    }
    auto macs = hmac_sha256_stream(hmac_keys, prefix, *source);
    HOOKCTL_RETURN_IF_ERROR(macs);

    Signed out;
    std::vector<std::string> encoded;
    std::size_t next_mac = 0;
    for (const auto& key : keys) {
        out.fingerprints.push_back(key.fingerprint);
        if (key.kind == KeyKind::ed25519_private) {
            auto sig = ed25519_sign(key.bytes.view(), whole);
            HOOKCTL_RETURN_IF_ERROR(sig);
            encoded.push_back("v1a," + util::base64_encode(*sig));
            continue;
        }
        const std::string& mac = (*macs)[next_mac++];
        switch (request.scheme) {
        case Scheme::mailparse:
        case Scheme::stripe:
            encoded.push_back(util::hex_encode(mac));
            break;
        case Scheme::standard:
        case Scheme::svix:
            encoded.push_back("v1," + util::base64_encode(mac));
            break;
        case Scheme::github:
            encoded.push_back("sha256=" + util::hex_encode(mac));
            break;
        case Scheme::slack:
            encoded.push_back("v0=" + util::hex_encode(mac));
            break;
        case Scheme::shopify:
            encoded.push_back(util::base64_encode(mac));
            break;
        }
    }

    auto join = [&](std::string_view separator, std::string_view each_prefix) {
        std::string value;
        for (const auto& e : encoded) {
            if (!value.empty()) {
                value += separator;
            }
            value += each_prefix;
            value += e;
        }
        return value;
    };
    std::string ts = std::to_string(request.timestamp);
    switch (request.scheme) {
    case Scheme::mailparse:
        out.headers.add(std::string(scheme.signature_header), join(",", ""));
        out.headers.add(std::string(scheme.timestamp_header), ts);
        break;
    case Scheme::standard:
    case Scheme::svix:
        out.headers.add(std::string(scheme.id_header), request.id);
        out.headers.add(std::string(scheme.timestamp_header), ts);
        out.headers.add(std::string(scheme.signature_header), join(" ", ""));
        break;
    case Scheme::stripe:
        out.headers.add(std::string(scheme.signature_header), "t=" + ts + "," + join(",", "v1="));
        break;
    case Scheme::github:
    case Scheme::shopify:
        out.headers.add(std::string(scheme.signature_header), encoded.front());
        break;
    case Scheme::slack:
        out.headers.add(std::string(scheme.signature_header), encoded.front());
        out.headers.add(std::string(scheme.timestamp_header), ts);
        break;
    }
    return out;
}

Result<std::int64_t> parse_timestamp(std::string_view text) {
    auto seconds = util::parse_unix_seconds(text);
    HOOKCTL_RETURN_IF_ERROR(seconds);
    if (*seconds < 0) {
        return fail(ExitCode::usage, "timestamp " + std::string(text) +
                                         " is negative: give Unix seconds since 1970, e.g. "
                                         "1700000000 (date +%s prints now)");
    }
    std::string digits = std::to_string(*seconds);
    if (digits.size() >= 13) {
        return fail(ExitCode::usage, "timestamp " + std::string(text) +
                                         " looks like milliseconds: give Unix seconds, e.g. " +
                                         digits.substr(0, digits.size() - 3) +
                                         " (drop the last three digits)");
    }
    return *seconds;
}

} // namespace hookctl::sig
