#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <sstream>

#include <hookctl/probe/probe.hpp>
#include <hookctl/sig/sign.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::probe {
namespace {

// A printable, bounded view of an answer body for reports (JSON, XML and a terminal alike).
std::string snippet(std::string_view body, std::size_t limit = 160) {
    std::string out;
    for (char c : body.substr(0, limit)) {
        out += (c >= 0x20 && c < 0x7f) ? c : (c == '\n' || c == '\r' || c == '\t') ? ' ' : '?';
    }
    if (body.size() > limit) {
        out += "...";
    }
    return out;
}

std::string describe(const Exchange& answer, std::chrono::milliseconds timeout) {
    if (answer.status != 0) {
        std::string got = std::to_string(answer.status);
        if (!answer.body.empty()) {
            got += ": " + snippet(answer.body);
        }
        return got;
    }
    if (answer.timed_out) {
        return "no answer within " + std::to_string(timeout.count()) + " ms";
    }
    return "no answer: " + (answer.error.empty() ? std::string("transport error") : answer.error);
}

std::string milliseconds(std::chrono::microseconds latency) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f ms", static_cast<double>(latency.count()) / 1000.0);
    return text;
}

bool is_2xx(long status) {
    return status >= 200 && status < 300;
}
bool is_4xx(long status) {
    return status >= 400 && status < 500;
}

// A probe event: clearly a test (type hookctl.probe), never a real-looking email.
std::string event_body(const std::string& event_id, std::string_view check, std::int64_t now,
                       std::size_t pad_to = 0) {
    nlohmann::json doc = {
        {"schema_version", "1"},
        {"type", "hookctl.probe"},
        {"event_id", event_id},
        {"created_at", now},
        {"probe", {{"check", check}, {"tool", "hookctl " HOOKCTL_VERSION}}},
        {"note", "conformance test event sent by hookctl probe; safe to discard"},
    };
    std::string body = doc.dump();
    if (pad_to > body.size()) {
        doc["padding"] = "";
        std::string shell = doc.dump(); // ..."padding":""}
        std::size_t fill = pad_to > shell.size() ? pad_to - shell.size() : 0;
        doc["padding"] = std::string(fill, 'x');
        body = doc.dump();
    }
    return body;
}

std::string new_event_id() {
    return "evt_probe_" + util::hex_encode(util::random_bytes(10));
}

class Battery {
public:
    Battery(const ProbeOptions& options, Transport& transport)
        : m_options(options)
        , m_transport(transport) {}

    Result<Report> run();

    // One check: its name (as --only/--skip and the report name it), the member that runs it
    // (its result, or an error that stops the run), and whether it appears only where it
    // applies (listed()).
    struct Check {
        std::string_view name;
        Result<CheckResult> (Battery::*run)();
        bool only_where_applicable;
    };
    static const std::vector<Check>& table();

private:
    struct Prepared {
        util::HeaderList headers; // signature headers and the usual ones
        std::string body;
    };

    Result<Prepared> prepare(std::string body, const std::string& event_id, std::int64_t timestamp,
                             const std::vector<keys::Key>& keys) const;
    util::HeaderList common_headers(const std::string& event_id) const;
    Result<Exchange> send(const Prepared& request);
    // The event `body` of `event_id`, signed at `timestamp` with the options' keys, sent.
    Result<Exchange> send_signed(const std::string& body, const std::string& event_id,
                                 std::int64_t timestamp);
    bool selected(std::string_view check) const;
    std::int64_t now() const { return m_options.now ? m_options.now() : util::unix_now_s(); }
    void record(CheckResult result);
    void started(std::string_view check) const {
        if (m_options.started) {
            m_options.started(check);
        }
    }

    // Each returns the result, or an error that stops the run.
    // Sends `request`, which the endpoint must refuse with a 4xx (ideally one of `preferred`).
    Result<CheckResult> expect_rejection(std::string_view name, const Prepared& request,
                                         std::string_view what, std::vector<long> preferred);

    Result<void> send_control();
    Result<CheckResult> check_valid();
    Result<CheckResult> check_duplicate();
    Result<CheckResult> check_tampered_body();
    Result<CheckResult> check_wrong_secret();
    Result<CheckResult> check_stale_timestamp();
    Result<CheckResult> check_future_timestamp();
    Result<CheckResult> check_timestamp(std::string_view name, std::int64_t sign);
    Result<CheckResult> check_missing_signature();
    Result<CheckResult> check_malformed_json();
    Result<CheckResult> check_oversized_body();
    Result<CheckResult> check_latency();
    Result<CheckResult> check_tls_version();
    Result<CheckResult> check_mtls_required();

    // Whether a TLS check is listed: only where it applies (see check_names()).
    bool listed(std::string_view check) const;

    const ProbeOptions& m_options;
    Transport& m_transport;
    Report m_report;
    bool m_first_request = true;
    Exchange m_control; // the answer to the valid event
    std::string m_valid_id;
    std::string m_valid_body;
};

bool Battery::selected(std::string_view check) const {
    if (!m_options.only.empty() &&
        std::ranges::find(m_options.only, check) == m_options.only.end()) {
        return false;
    }
    return std::ranges::find(m_options.skip, check) == m_options.skip.end();
}

util::HeaderList Battery::common_headers(const std::string& event_id) const {
    util::HeaderList headers;
    headers.add("Content-Type", "application/json");
    headers.add("Idempotency-Key", event_id);
    headers.add("User-Agent", "hookctl-probe/" HOOKCTL_VERSION);
    return headers;
}

Result<Battery::Prepared> Battery::prepare(std::string body, const std::string& event_id,
                                           std::int64_t timestamp,
                                           const std::vector<keys::Key>& keys) const {
    sig::SignRequest request;
    request.scheme = m_options.scheme;
    request.timestamp = timestamp;
    request.id = event_id;
    util::MemorySource source(body);
    auto signed_ = sig::sign(request, keys, source);
    HOOKCTL_RETURN_IF_ERROR(signed_);
    Prepared out;
    out.headers = common_headers(event_id);
    for (const auto& [name, value] : signed_->headers.entries()) {
        out.headers.add(name, value);
    }
    out.body = std::move(body);
    return out;
}

Result<Exchange> Battery::send(const Prepared& request) {
    Exchange answer =
        m_transport.post(m_options.url, request.headers, request.body, m_options.timeout);
    if (m_first_request && answer.tls_failed) {
        // A certificate problem fails every check alike: say what it is once, with its fix.
        return fail(ExitCode::environment, "cannot reach " + m_options.url + ": " + answer.error);
    }
    if (m_first_request && answer.unreachable) {
        return fail(ExitCode::environment,
                    "cannot reach " + m_options.url + ": " + answer.error +
                        "; check that the endpoint is up and the URL is right");
    }
    m_first_request = false;
    return answer;
}

void Battery::record(CheckResult result) {
    switch (result.status) {
    case Status::pass:
        ++m_report.passed;
        break;
    case Status::fail:
        ++m_report.failed;
        break;
    case Status::skip:
        ++m_report.skipped;
        break;
    }
    m_report.checks.push_back(std::move(result));
}

Result<CheckResult> Battery::expect_rejection(std::string_view name, const Prepared& request,
                                              std::string_view what, std::vector<long> preferred) {
    if (!is_2xx(m_control.status)) {
        return CheckResult{std::string(name),
                           Status::skip,
                           "4xx",
                           "",
                           "not meaningful: the endpoint did not accept the valid event either (" +
                               describe(m_control, m_options.timeout) +
                               "); check the URL, --scheme and the secret",
                           {}};
    }
    started(name);
    auto answer = send(request);
    HOOKCTL_RETURN_IF_ERROR(answer);
    std::string statuses;
    for (long status : preferred) {
        statuses += (statuses.empty() ? "" : " or ") + std::to_string(status);
    }
    CheckResult result{std::string(name),
                       Status::fail,
                       "4xx (" + statuses + ")",
                       describe(*answer, m_options.timeout),
                       "",
                       answer->latency};
    if (is_4xx(answer->status)) {
        result.status = Status::pass;
        if (std::ranges::find(preferred, answer->status) == preferred.end()) {
            result.detail = "rejected; " + statuses + " would say why more precisely";
        }
    } else if (is_2xx(answer->status)) {
        result.detail = "accepted " + std::string(what) + ": the endpoint does not check it";
    } else if (answer->status >= 500) {
        result.detail = "server error on " + std::string(what) + ": it should be rejected with 4xx";
    } else if (answer->status == 0) {
        result.detail = "no HTTP answer to " + std::string(what);
    } else {
        result.detail = "unexpected status for " + std::string(what);
    }
    return result;
}

// The checks in report order. `valid` is the control: its event is sent before any check runs
// (see send_control), whatever is selected. The TLS checks appear only where they apply.
const std::vector<Battery::Check>& Battery::table() {
    static const std::vector<Check> k_table = {
        {"valid", &Battery::check_valid, false},
        {"duplicate", &Battery::check_duplicate, false},
        {"tampered-body", &Battery::check_tampered_body, false},
        {"wrong-secret", &Battery::check_wrong_secret, false},
        {"stale-timestamp", &Battery::check_stale_timestamp, false},
        {"future-timestamp", &Battery::check_future_timestamp, false},
        {"missing-signature", &Battery::check_missing_signature, false},
        {"malformed-json", &Battery::check_malformed_json, false},
        {"oversized-body", &Battery::check_oversized_body, false},
        {"latency", &Battery::check_latency, false},
        {"tls-version", &Battery::check_tls_version, true},
        {"mtls-required", &Battery::check_mtls_required, true},
    };
    return k_table;
}

Result<Report> Battery::run() {
    m_report.url = m_options.url;
    m_report.scheme = std::string(sig::info(m_options.scheme).name);
    if (auto sent = send_control(); !sent) {
        return std::unexpected(sent.error());
    }
    for (const Check& check : table()) {
        if (check.only_where_applicable && !listed(check.name)) {
            continue;
        }
        if (!selected(check.name)) {
            record({std::string(check.name),
                    Status::skip,
                    "",
                    "",
                    "not selected (--only/--skip)",
                    {}});
            continue;
        }
        auto result = (this->*check.run)();
        HOOKCTL_RETURN_IF_ERROR(result);
        record(std::move(*result));
    }
    return m_report;
}

// The valid event goes first, whatever is selected: it is the control that makes a rejection
// mean something (an endpoint refusing everything would pass every 4xx check), and duplicate
// and latency are measured on it.
Result<void> Battery::send_control() {
    m_valid_id = new_event_id();
    m_valid_body = event_body(m_valid_id, "valid", now());
    started("valid");
    auto answer = send_signed(m_valid_body, m_valid_id, now());
    HOOKCTL_RETURN_IF_ERROR(answer);
    m_control = *answer;
    return {};
}

Result<Exchange> Battery::send_signed(const std::string& body, const std::string& event_id,
                                      std::int64_t timestamp) {
    auto request = prepare(body, event_id, timestamp, m_options.keys);
    HOOKCTL_RETURN_IF_ERROR(request);
    return send(*request);
}

Result<CheckResult> Battery::check_valid() {
    CheckResult r{"valid", Status::fail,     "2xx", describe(m_control, m_options.timeout),
                  "",      m_control.latency};
    if (is_2xx(m_control.status)) {
        r.status = Status::pass;
    } else if (m_control.status == 401 || m_control.status == 403) {
        r.detail = "a correctly signed event was refused: is the secret or scheme (" +
                   m_report.scheme + ") right?";
    } else {
        r.detail = "a correctly signed event was not accepted";
    }
    return r;
}

Result<CheckResult> Battery::check_duplicate() {
    if (!is_2xx(m_control.status)) {
        return CheckResult{"duplicate",
                           Status::skip,
                           "2xx (treated as a duplicate)",
                           "",
                           "the first delivery was not accepted, so there is nothing to repeat",
                           {}};
    }
    started("duplicate");
    // The same event (same id and body), freshly signed as a sender's retry would be.
    auto answer = send_signed(m_valid_body, m_valid_id, now());
    HOOKCTL_RETURN_IF_ERROR(answer);
    CheckResult r{"duplicate",
                  Status::fail,
                  "2xx (treated as a duplicate)",
                  describe(*answer, m_options.timeout),
                  "",
                  answer->latency};
    std::string lower = answer->body;
    std::ranges::transform(lower, lower.begin(),
                           [](char c) { return static_cast<char>(std::tolower(c)); });
    if (is_2xx(answer->status)) {
        r.status = Status::pass;
        if (lower.find("duplicate") != std::string::npos) {
            r.detail = "the endpoint reported a duplicate";
        } else if (m_control.status != answer->status) {
            r.detail = "told apart by status (" + std::to_string(m_control.status) + " then " +
                       std::to_string(answer->status) + ")";
        } else {
            r.detail = "accepted again; the endpoint does not say whether it deduplicated";
        }
    } else if (answer->status == 409) {
        r.detail = "409 on a retry makes senders give up or retry forever: answer 2xx";
    } else {
        r.detail = "a retry of an accepted event must be acknowledged with 2xx";
    }
    return r;
}

Result<CheckResult> Battery::check_tampered_body() {
    std::string id = new_event_id();
    auto request = prepare(event_body(id, "tampered-body", now()), id, now(), m_options.keys);
    HOOKCTL_RETURN_IF_ERROR(request);
    // One byte changed after signing, still valid JSON.
    auto at = request->body.find("safe to discard");
    request->body[at] = 'S';
    return expect_rejection("tampered-body", *request, "a body changed after signing", {401, 403});
}

Result<CheckResult> Battery::check_wrong_secret() {
    std::string id = new_event_id();
    keys::Key wrong;
    wrong.kind = keys::KeyKind::hmac;
    wrong.bytes = keys::SecretBytes(util::random_bytes(32));
    wrong.origin = "a random secret";
    auto request = prepare(event_body(id, "wrong-secret", now()), id, now(), {wrong});
    HOOKCTL_RETURN_IF_ERROR(request);
    return expect_rejection("wrong-secret", *request, "a signature made with a wrong secret",
                            {401, 403});
}

Result<CheckResult> Battery::check_stale_timestamp() {
    return check_timestamp("stale-timestamp", -1);
}

Result<CheckResult> Battery::check_future_timestamp() {
    return check_timestamp("future-timestamp", 1);
}

// A correctly signed event whose timestamp is --timestamp-offset seconds in the past (sign -1)
// or the future (+1).
Result<CheckResult> Battery::check_timestamp(std::string_view name, std::int64_t sign) {
    if (!sig::info(m_options.scheme).has_timestamp) {
        return CheckResult{std::string(name),
                           Status::skip,
                           "4xx",
                           "",
                           "scheme " + m_report.scheme + " signs no timestamp",
                           {}};
    }
    std::string id = new_event_id();
    std::int64_t ts = now() + sign * m_options.timestamp_offset.count();
    auto request = prepare(event_body(id, name, ts), id, ts, m_options.keys);
    HOOKCTL_RETURN_IF_ERROR(request);
    std::string what = "a timestamp " + std::to_string(m_options.timestamp_offset.count()) +
                       (sign < 0 ? " s old" : " s in the future");
    return expect_rejection(name, *request, what, {401, 403});
}

Result<CheckResult> Battery::check_missing_signature() {
    std::string id = new_event_id();
    Prepared request{common_headers(id), event_body(id, "missing-signature", now())};
    return expect_rejection("missing-signature", request, "a request without signature",
                            {401, 403});
}

Result<CheckResult> Battery::check_malformed_json() {
    std::string id = new_event_id();
    std::string body = event_body(id, "malformed-json", now());
    body.resize(body.size() / 2); // cut in the middle: not JSON any more
    auto request = prepare(body, id, now(), m_options.keys);
    HOOKCTL_RETURN_IF_ERROR(request);
    return expect_rejection("malformed-json", *request, "malformed JSON with a valid signature",
                            {400, 422});
}

Result<CheckResult> Battery::check_oversized_body() {
    std::string id = new_event_id();
    auto request = prepare(event_body(id, "oversized-body", now(), m_options.max_body + 1), id,
                           now(), m_options.keys);
    HOOKCTL_RETURN_IF_ERROR(request);
    auto r = expect_rejection(
        "oversized-body", *request,
        "a body of " + std::to_string(m_options.max_body + 1) + " bytes (over --max-body)", {413});
    if (r) {
        r->expected = "4xx (413), not a hang";
    }
    return r;
}

Result<CheckResult> Battery::check_latency() {
    started("latency");
    std::string budget = std::to_string(m_options.latency_budget.count()) + " ms";
    if (m_control.status == 0) {
        return CheckResult{
            "latency", Status::skip, "<= " + budget, "", "the valid event got no answer to time",
            {}};
    }
    CheckResult r{"latency",
                  Status::pass,
                  "<= " + budget,
                  milliseconds(m_control.latency),
                  "answer time of the valid event",
                  m_control.latency};
    if (m_control.latency > m_options.latency_budget) {
        r.status = Status::fail;
        r.detail = "the valid event was answered slower than the budget";
    }
    return r;
}

bool Battery::listed(std::string_view check) const {
    if (std::ranges::find(m_options.only, check) != m_options.only.end()) {
        return true;
    }
    if (check == "tls-version") {
        return m_options.url.starts_with("https://");
    }
    return m_options.expect_mtls;
}

Result<CheckResult> Battery::check_tls_version() {
    started("tls-version");
    CheckResult r{"tls-version", Status::skip, "TLS 1.0/1.1 refused", "", "", {}};
    if (!m_options.url.starts_with("https://")) {
        r.detail = "not a TLS endpoint (the URL is not https://)";
        return r;
    }
    LegacyTls offer = m_transport.offer_legacy_tls(m_options.url, m_options.timeout);
    switch (offer.outcome) {
    case LegacyTls::Outcome::refused:
        r.status = Status::pass;
        r.got = "refused";
        r.detail = offer.detail;
        break;
    case LegacyTls::Outcome::accepted:
        r.status = Status::fail;
        r.got = "accepted " + offer.version;
        r.detail = "the endpoint completes a handshake below TLS 1.2: allow only TLS 1.2 and 1.3";
        break;
    case LegacyTls::Outcome::not_offered:
        r.detail = "could not offer TLS 1.0/1.1 from this machine (" + offer.detail + ")";
        break;
    }
    return r;
}

Result<CheckResult> Battery::check_mtls_required() {
    started("mtls-required");
    CheckResult r{
        "mtls-required", Status::fail, "refused without a client certificate", "", "", {}};
    if (!m_options.url.starts_with("https://")) {
        r.got = "plain HTTP";
        r.detail = "mutual TLS is expected (--expect-mtls) but the URL is not https://";
        return r;
    }
    // A correctly signed event, so only the missing certificate can be the reason to refuse it.
    std::string id = new_event_id();
    auto request = prepare(event_body(id, "mtls-required", now()), id, now(), m_options.keys);
    HOOKCTL_RETURN_IF_ERROR(request);
    Exchange answer = m_transport.post_without_client_cert(m_options.url, request->headers,
                                                           request->body, m_options.timeout);
    r.latency = answer.latency;
    r.got = describe(answer, m_options.timeout);
    if (answer.status == 0 && answer.tls_failed) {
        r.status = Status::pass;
        r.got = "refused in the TLS handshake";
        r.detail = answer.error;
    } else if (answer.status == 401 || answer.status == 403) {
        r.status = Status::pass;
        r.detail = "refused after the handshake; refusing in the handshake reads no request "
                   "from an unknown client";
    } else if (is_2xx(answer.status)) {
        r.detail = "accepted a request from a client without a certificate: the endpoint does "
                   "not require mutual TLS";
    } else {
        r.detail = "neither refused in the handshake nor with 401/403";
    }
    return r;
}

} // namespace

const std::vector<std::string>& check_names() {
    static const std::vector<std::string> k_names = [] {
        std::vector<std::string> names;
        for (const auto& check : Battery::table()) {
            names.emplace_back(check.name);
        }
        return names;
    }();
    return k_names;
}

std::string_view to_string(Status status) {
    switch (status) {
    case Status::pass:
        return "pass";
    case Status::fail:
        return "fail";
    case Status::skip:
        break;
    }
    return "skip";
}

Result<void> validate_selection(const std::vector<std::string>& only,
                                const std::vector<std::string>& skip) {
    const auto& k_checks = check_names();
    std::string known;
    for (const auto& name : k_checks) {
        known += (known.empty() ? "" : ", ") + name;
    }
    for (const auto* list : {&only, &skip}) {
        for (const auto& name : *list) {
            if (std::ranges::find(k_checks, name) == k_checks.end()) {
                return fail(ExitCode::usage, "unknown check '" + name + "' in " +
                                                 (list == &only ? "--only" : "--skip") +
                                                 "; the checks are: " + known);
            }
        }
    }
    bool any = std::ranges::any_of(k_checks, [&](const std::string& name) {
        return (only.empty() || std::ranges::find(only, name) != only.end()) &&
               std::ranges::find(skip, name) == skip.end();
    });
    if (!any) {
        return fail(ExitCode::usage, "--only and --skip leave no check to run");
    }
    return {};
}

Result<Report> run(const ProbeOptions& options, Transport& transport) {
    if (auto ok = validate_selection(options.only, options.skip); !ok) {
        return std::unexpected(ok.error());
    }
    if (options.keys.empty()) {
        return fail(ExitCode::usage, "no secret for the endpoint: give --secret-env NAME, "
                                     "--secret-file PATH or a --target with a secret");
    }
    Battery battery(options, transport);
    return battery.run();
}

} // namespace hookctl::probe
