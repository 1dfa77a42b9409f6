// hookctl listen: a local test receiver that verifies, deduplicates, archives durably and
// injects faults on demand.
#include <charconv>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <unistd.h>

#include <hookctl/receive/archive_store.hpp>
#include <hookctl/receive/server.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>
#include <hookctl/util/watch.hpp>

#include "archive_key.hpp"
#include "common.hpp"
#include "listen_tls.hpp"

namespace hookctl::cli {
namespace {

struct ListenFlags {
    std::string bind = "127.0.0.1:8080";
    std::string path = "/webhooks/email";
    std::string scheme = "mailparse";
    std::string tolerance = "5m";
    std::string archive = "./hookctl.db";
    std::string max_body = "25MiB";
    std::string max_buffered = "256MiB";
    std::size_t max_inflight = 4096;
    std::string fail_rate = "0";
    int fail_status = 503;
    std::string throttle_rate = "0";
    std::string retry_after = "1s";
    std::string latency;
    std::string drop_rate = "0";
    std::uint64_t fail_first = 0;
    std::optional<std::uint64_t> seed;
    std::string tls_cert;
    std::string tls_key;
    std::string ready_file;
    unsigned threads = 0;
    std::string header_timeout = "10s";
    std::string body_timeout = "30s";
    std::string max_header_bytes = "16KiB";
    std::size_t max_headers = 100;
    std::string drain_timeout = "10s";
    std::string forward_to;
    std::string synchronous = "full";
    std::string archive_key; // --archive-key FILE: bodies stored encrypted
    SecretFlags secrets;
    ListenTlsFlags tls; // --tls-client-ca, --allow-from, --trust-proxy, --cacert (listen_tls.cpp)
};

// Writes whole lines to stderr, one write(2) each, so lines from server threads never mix.
class LineWriter {
public:
    void write(std::string line) {
        line += '\n';
        std::lock_guard lock(m_mutex);
        std::size_t done = 0;
        while (done < line.size()) {
            auto n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
            if (n <= 0) {
                return;
            }
            done += static_cast<std::size_t>(n);
        }
    }

private:
    std::mutex m_mutex;
};

std::string millis(std::chrono::microseconds us) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(us.count()) / 1000.0);
    return buf;
}

Result<std::pair<std::string, std::uint16_t>> parse_bind(const std::string& text) {
    auto bad = [&] {
        return fail(ExitCode::usage, "--bind: '" + text +
                                         "' is not HOST:PORT; write 127.0.0.1:8080, [::1]:8080 "
                                         "or 127.0.0.1:0 for a free port");
    };
    std::string host;
    std::string_view port_text;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == std::string::npos) {
            return bad();
        }
        host = text.substr(1, close - 1);
        port_text = std::string_view(text).substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos) {
            return bad();
        }
        host = text.substr(0, colon);
        port_text = std::string_view(text).substr(colon + 1);
    }
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (host.empty() || port_text.empty() || ec != std::errc() ||
        end != port_text.data() + port_text.size() || port > 65535) {
        return bad();
    }
    return std::pair{host, static_cast<std::uint16_t>(port)};
}

bool is_loopback(const std::string& host) {
    return host.starts_with("127.") || host == "::1" || host == "localhost";
}

Result<std::chrono::milliseconds> duration_flag(const std::string& text, const char* flag) {
    auto d = util::parse_duration(text);
    if (!d) {
        return fail(ExitCode::usage, std::string(flag) + ": " + d.error().message);
    }
    return *d;
}

Result<receive::ListenOptions> build_options(const ListenFlags& f) {
    receive::ListenOptions o;
    auto bind = parse_bind(f.bind);
    HOOKCTL_RETURN_IF_ERROR(bind);
    o.host = bind->first == "localhost" ? "127.0.0.1" : bind->first;
    o.port = bind->second;
    if (f.path.empty() || f.path.front() != '/') {
        return fail(ExitCode::usage, "--path: '" + f.path + "' must start with /");
    }
    o.path = f.path;
    if (f.scheme == "auto") {
        o.check.scheme.reset();
    } else {
        auto scheme = sig::parse_scheme(f.scheme);
        HOOKCTL_RETURN_IF_ERROR(scheme);
        o.check.scheme = *scheme;
    }
    auto tolerance = duration_flag(f.tolerance, "--tolerance");
    HOOKCTL_RETURN_IF_ERROR(tolerance);
    o.check.tolerance = std::chrono::duration_cast<std::chrono::seconds>(*tolerance);
    auto max_body = util::parse_size(f.max_body);
    if (!max_body) {
        return fail(ExitCode::usage, "--max-body: " + max_body.error().message);
    }
    o.max_body = *max_body;
    auto max_buffered = util::parse_size(f.max_buffered);
    if (!max_buffered) {
        return fail(ExitCode::usage, "--max-buffered: " + max_buffered.error().message);
    }
    o.max_buffered = *max_buffered;
    if (o.max_body > receive::BodyBudget::largest_body(o.max_buffered)) {
        return fail(ExitCode::usage,
                    "--max-body " + f.max_body + " cannot fit in --max-buffered " + f.max_buffered +
                        " (bodies over 1MiB may use three quarters of it together): raise "
                        "--max-buffered to at least " +
                        std::to_string((o.max_body * 4 + 2) / 3) + " bytes or lower --max-body");
    }
    auto header_bytes = util::parse_size(f.max_header_bytes);
    if (!header_bytes) {
        return fail(ExitCode::usage, "--max-header-bytes: " + header_bytes.error().message);
    }
    o.max_header_bytes = *header_bytes;
    o.max_header_count = f.max_headers;
    if (f.max_inflight == 0) {
        return fail(ExitCode::usage, "--max-inflight must be at least 1");
    }
    o.max_inflight = f.max_inflight;
    for (auto [text, target, flag] :
         {std::tuple{&f.header_timeout, &o.header_timeout, "--header-timeout"},
          std::tuple{&f.body_timeout, &o.body_timeout, "--body-timeout"},
          std::tuple{&f.drain_timeout, &o.drain_timeout, "--drain-timeout"}}) {
        auto d = duration_flag(*text, flag);
        HOOKCTL_RETURN_IF_ERROR(d);
        *target = *d;
    }
    auto& faults = o.faults;
    for (auto [text, target, flag] :
         {std::tuple{&f.fail_rate, &faults.fail_rate, "--fail-rate"},
          std::tuple{&f.throttle_rate, &faults.throttle_rate, "--throttle-rate"},
          std::tuple{&f.drop_rate, &faults.drop_rate, "--drop-rate"}}) {
        auto p = receive::parse_probability(*text, flag);
        HOOKCTL_RETURN_IF_ERROR(p);
        *target = *p;
    }
    if (f.fail_status < 100 || f.fail_status > 599) {
        return fail(ExitCode::usage, "--fail-status: " + std::to_string(f.fail_status) +
                                         " is not an HTTP status (100-599)");
    }
    faults.fail_status = f.fail_status;
    auto retry_after = duration_flag(f.retry_after, "--retry-after");
    HOOKCTL_RETURN_IF_ERROR(retry_after);
    faults.retry_after = std::chrono::ceil<std::chrono::seconds>(*retry_after);
    if (!f.latency.empty()) {
        auto latency = receive::parse_latency(f.latency);
        HOOKCTL_RETURN_IF_ERROR(latency);
        faults.latency_min = latency->first;
        faults.latency_max = latency->second;
    }
    faults.fail_first = f.fail_first;
    faults.seed = f.seed ? *f.seed : std::random_device{}();
    o.tls_cert = f.tls_cert;
    o.tls_key = f.tls_key;
    if (auto applied = apply_listen_tls_options(f.tls, o); !applied) {
        return std::unexpected(applied.error());
    }
    o.threads = f.threads;
    o.hangup = receive::hangup_action_of_this_process();
    return o;
}

Result<ExitCode> run_listen(const ListenFlags& flags, Context& context) {
    auto options = build_options(flags);
    HOOKCTL_RETURN_IF_ERROR(options);
    // Secrets: loaded now, and again on SIGUSR1 (see receive::Reloader) or when a keyring window
    // ends. A secret read from stdin cannot be read twice, so reloads keep it. Keyring windows are
    // judged by the clock at each request (not HOOKCTL_NOW): a verify-only secret stops verifying
    // the second its window ends.
    auto started_at = util::unix_now_s();
    auto texts = load_secret_flags(flags.secrets, started_at);
    HOOKCTL_RETURN_IF_ERROR(texts);
    auto receiver =
        receive::receiver_keys(flags.secrets.sources(), *texts, options->check.scheme, started_at);
    HOOKCTL_RETURN_IF_ERROR(receiver);
    receive::KeyStore keys(std::move(receiver->loader), std::move(receiver->initial));

    // Read before the address is bound: a bad key file is an input error (exit 2).
    auto cipher = load_archive_cipher(flags.archive_key);
    HOOKCTL_RETURN_IF_ERROR(cipher);

    bool json_logs = context.global.log_format == "json" ||
                     (context.global.log_format.empty() && !is_tty(STDERR_FILENO));
    bool color = !json_logs && !context.global.no_color && is_tty(STDERR_FILENO);
    bool quiet = context.global.quiet;
    auto writer = std::make_shared<LineWriter>();

    receive::ServerHooks hooks;
    hooks.on_notice = [writer, json_logs](std::string_view message, bool warning) {
        if (json_logs) {
            writer->write(nlohmann::json{
                {"ts", util::format_time_ms(util::unix_now_ms())},
                {"level", warning ? "warn" : "info"},
                {"msg",
                 message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        } else {
            writer->write(std::string(warning ? "hookctl: warning: " : "hookctl: ") +
                          std::string(message));
        }
    };
    if (!is_loopback(options->host)) {
        hooks.on_notice("listening on " + options->host +
                            ", which is not a loopback address: other machines can reach this "
                            "receiver",
                        true);
    }
    if (options->faults.any()) {
        hooks.on_notice("fault injection on, seed " + std::to_string(options->faults.seed) +
                            " (give --seed " + std::to_string(options->faults.seed) +
                            " to repeat these decisions)",
                        false);
    }
    // Keyrings and secret files are read again when they change (rotate begin/finish on the
    // receiver's keyring takes effect without a restart or a dropped connection), as on SIGUSR1.
    std::vector<std::string> watched = flags.secrets.keyrings;
    for (const auto& path : flags.secrets.files) {
        if (path != "-") {
            watched.push_back(path);
        }
    }
    receive::Reloader reloader(hooks.on_notice);
    reloader.add("secrets", receive::reload_secrets(keys, [] { return util::unix_now_s(); }));
    util::FileWatcher watcher(watched, std::chrono::milliseconds(250),
                              [&reloader] { reloader.reload("secret files changed"); });

    std::string ready_file = flags.ready_file;
    std::string ready_error;
    hooks.on_listening = [writer, json_logs, ready_file, &ready_error](const std::string& url) {
        if (json_logs) {
            writer->write(nlohmann::json{
                {"ts", util::format_time_ms(util::unix_now_ms())},
                {"level", "info"},
                {"msg", "listening"},
                {"url", url}}.dump());
        } else {
            writer->write("listening on " + url);
        }
        if (!ready_file.empty()) {
            auto written = util::write_file_atomic(ready_file, url + "\n", 0644);
            if (!written) {
                writer->write("hookctl: warning: --ready-file: " + written.error().message);
            }
        }
    };
    if (!quiet) {
        hooks.on_request = [writer, json_logs, color](const receive::RequestRecord& r) {
            if (json_logs) {
                nlohmann::json doc = {{"ts", util::format_time_ms(util::unix_now_ms())},
                                      {"level", r.status >= 500 || r.status == 0 ? "warn" : "info"},
                                      {"msg", "request"},
                                      {"method", r.method},
                                      {"path", r.target},
                                      {"status", r.status},
                                      {"reason_code", r.reason_code},
                                      {"latency_ms", static_cast<double>(r.latency.count()) / 1000},
                                      {"peer", r.peer}};
                doc["event_id"] =
                    r.event_id.empty() ? nlohmann::json() : nlohmann::json(r.event_id);
                doc["trace_id"] =
                    r.trace_id.empty() ? nlohmann::json() : nlohmann::json(r.trace_id);
                if (!r.verified_by.empty()) {
                    doc["verified_by"] = r.verified_by;
                }
                if (!r.client.empty()) {
                    doc["client"] = r.client;
                }
                if (!r.client_identity.empty()) {
                    doc["client_identity"] = r.client_identity;
                }
                if (!r.reason.empty()) {
                    doc["reason"] = r.reason;
                }
                writer->write(doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
                return;
            }
            std::string status = r.status == 0 ? "---" : std::to_string(r.status);
            if (color) {
                const char* c = r.status >= 200 && r.status < 300  ? "\x1b[32m"
                                : r.status >= 500 || r.status == 0 ? "\x1b[31m"
                                                                   : "\x1b[33m";
                status = c + status + "\x1b[0m";
            }
            std::string line = util::format_time_ms(util::unix_now_ms()) + " " + status + " " +
                               r.reason_code + " " + r.method + " " + r.target + " " +
                               millis(r.latency) + "ms";
            if (!r.event_id.empty()) {
                line += " event=" + r.event_id;
            }
            if (!r.trace_id.empty()) {
                line += " trace=" + r.trace_id;
            }
            if (!r.verified_by.empty()) {
                line += " key=" + r.verified_by;
            }
            if (!r.client.empty()) {
                line += " client=" + r.client;
            }
            if (!r.client_identity.empty()) {
                line += " tls_client=\"" + r.client_identity + "\"";
            }
            if (!r.reason.empty()) {
                line += " (" + r.reason + ")";
            }
            writer->write(std::move(line));
        };
    }

    if (!flags.forward_to.empty() && !flags.forward_to.starts_with("http://") &&
        !flags.forward_to.starts_with("https://")) {
        return fail(ExitCode::usage,
                    "--forward-to: '" + flags.forward_to + "' is not an http:// or https:// URL");
    }
    // The archive (and the forwarder, which reads it) are opened once the address is bound, so
    // a listen that cannot bind leaves no new archive file behind.
    std::unique_ptr<receive::EventStore> store;
    auto forward_client = forward_client_options(flags.tls, !flags.forward_to.empty());
    HOOKCTL_RETURN_IF_ERROR(forward_client);
    std::unique_ptr<receive::Forwarder> forwarder;
    auto open_store = [&]() -> Result<receive::EventStore*> {
        // Opened once; the forwarder takes a connection of its own through this handle.
        auto opened = archive::open(
            flags.archive, receive::archive_store_options(flags.synchronous == "full",
                                                          receive::k_archive_lock_wait, *cipher));
        HOOKCTL_RETURN_IF_ERROR(opened);
        const archive::Store& handle = **opened;
        auto made = receive::archive_event_store(std::move(*opened));
        HOOKCTL_RETURN_IF_ERROR(made);
        store = std::move(*made);
        if (flags.forward_to.empty()) {
            return store.get();
        }
        auto started = receive::Forwarder::start(
            flags.forward_to, handle, keys,
            [writer, json_logs, quiet](const receive::ForwardOutcome& o) {
                if (quiet && o.delivered) {
                    return;
                }
                if (json_logs) {
                    writer->write(nlohmann::json{
                        {"ts", util::format_time_ms(util::unix_now_ms())},
                        {"level", o.delivered ? "info" : "warn"},
                        {"msg", "forward"},
                        {"event_id", o.event_id},
                        {"outcome", o.delivered ? "delivered" : "failed"},
                        {"status", o.http_status},
                        {"attempts", o.attempts},
                        {"reason", o.reason},
                        {"detail",
                         o.detail}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
                } else {
                    writer->write("forward " + o.event_id + ": " +
                                  (o.delivered
                                       ? std::string("delivered")
                                       : "failed (" + o.reason +
                                             (o.detail.empty() ? "" : ": " + o.detail) + ")") +
                                  " after " + std::to_string(o.attempts) + " attempt(s)");
                }
            },
            *forward_client);
        HOOKCTL_RETURN_IF_ERROR(started);
        forwarder = std::move(*started);
        return store.get();
    };
    if (!flags.forward_to.empty()) {
        hooks.on_stored = [&forwarder](receive::StoredEvent e) {
            forwarder->enqueue(std::move(e));
        };
    }

    receive::Metrics metrics;
    auto summary = receive::serve(*options, keys, open_store, metrics, reloader, hooks);
    if (forwarder) {
        forwarder->close(); // forwards what is queued, then stops
    }
    HOOKCTL_RETURN_IF_ERROR(summary);
    double seconds = static_cast<double>(summary->elapsed.count()) / 1000.0;
    nlohmann::json doc = {
        {"requests", summary->requests},     {"accepted", summary->accepted},
        {"duplicates", summary->duplicates}, {"rejected", summary->rejected},
        {"faults", summary->faults},         {"store_failures", summary->store_failures},
        {"batches", summary->batches},       {"seconds", seconds},
        {"drained", summary->drained}};
    if (context.global.json) {
        print_json(doc);
    }
    if (json_logs) {
        doc["msg"] = "summary";
        doc["ts"] = util::format_time_ms(util::unix_now_ms());
        doc["level"] = "info";
        writer->write(doc.dump());
    } else if (!quiet) {
        char rate[32];
        std::snprintf(rate, sizeof rate, "%.1f", seconds);
        writer->write(
            "stopped after " + std::string(rate) + "s: " + std::to_string(summary->requests) +
            " requests, " + std::to_string(summary->accepted) + " accepted, " +
            std::to_string(summary->duplicates) + " duplicates, " +
            std::to_string(summary->rejected) + " rejected, " + std::to_string(summary->faults) +
            " injected faults, " + std::to_string(summary->store_failures) +
            " not stored (archive errors), " + std::to_string(summary->batches) + " commits" +
            (summary->drained ? "" : " (drain timeout: some requests were cut off)"));
    }
    return ExitCode::ok;
}

} // namespace

void register_listen(CLI::App& app, Context& context) {
    auto f = std::make_shared<ListenFlags>();
    auto* cmd = app.add_subcommand(
        "listen", "Local test receiver: verify, deduplicate, archive durably, inject faults");
    cmd->add_option("--bind", f->bind, "Listen on HOST:PORT (port 0: a free port)")
        ->type_name("HOST:PORT")
        ->default_str("127.0.0.1:8080");
    cmd->add_option("--path", f->path, "The webhook path")->default_str("/webhooks/email");
    cmd->add_option("--scheme", f->scheme, "Signature scheme, or auto (from the headers)")
        ->check(CLI::IsMember(scheme_names(true)))
        ->default_str("mailparse");
    cmd->add_option("--tolerance", f->tolerance,
                    "Allowed timestamp skew, both directions (default 5m)")
        ->type_name("DURATION");
    cmd->add_option("--archive", f->archive,
                    "Archive: an SQLite file (default ./hookctl.db) or a postgres:// URI (no "
                    "password in it: PGPASSWORD, ~/.pgpass)")
        ->type_name("FILE|URI");
    add_archive_key_option(*cmd, f->archive_key);
    cmd->add_option("--max-body", f->max_body, "Largest body accepted; larger gets 413")
        ->type_name("SIZE")
        ->default_str("25MiB");
    cmd->add_option("--max-buffered", f->max_buffered,
                    "Body bytes held for requests whose signature is not checked yet, at most; "
                    "beyond: 503 + Retry-After before the body is read")
        ->type_name("SIZE")
        ->default_str("256MiB");
    cmd->add_option("--max-inflight", f->max_inflight,
                    "Events accepted but not yet committed, at most; beyond: 429 + Retry-After")
        ->type_name("N")
        ->default_str("4096");
    cmd->add_option("--synchronous", f->synchronous,
                    "full: fsync every commit (survives power loss); normal: survives a killed "
                    "process, not power loss, faster")
        ->check(CLI::IsMember({"full", "normal"}))
        ->default_str("full");
    cmd->add_option("--ready-file", f->ready_file,
                    "Write the URL to FILE (atomically) once listening")
        ->type_name("FILE");
    cmd->add_option("--tls-cert", f->tls_cert, "Serve HTTPS with this PEM certificate chain")
        ->type_name("FILE")
        ->group("TLS");
    cmd->add_option("--tls-key", f->tls_key, "The PEM private key of --tls-cert")
        ->type_name("FILE")
        ->group("TLS");
    const char* faults = "Fault injection";
    cmd->add_option("--fail-rate", f->fail_rate, "Answer --fail-status to this fraction (0-1)")
        ->type_name("P")
        ->group(faults);
    cmd->add_option("--fail-status", f->fail_status, "Status of injected failures")
        ->type_name("CODE")
        ->default_str("503")
        ->group(faults);
    cmd->add_option("--throttle-rate", f->throttle_rate,
                    "Answer 429 with Retry-After to this fraction (0-1)")
        ->type_name("P")
        ->group(faults);
    cmd->add_option("--retry-after", f->retry_after, "Retry-After of injected 429s")
        ->type_name("DURATION")
        ->default_str("1s")
        ->group(faults);
    cmd->add_option("--latency", f->latency, "Delay every answer: DUR, or MIN-MAX (uniform)")
        ->type_name("DUR|MIN-MAX")
        ->group(faults);
    cmd->add_option("--drop-rate", f->drop_rate,
                    "Close the connection without answering this fraction (0-1)")
        ->type_name("P")
        ->group(faults);
    cmd->add_option("--fail-first", f->fail_first,
                    "The first N requests of each event id get --fail-status")
        ->type_name("N")
        ->group(faults);
    cmd->add_option("--seed", f->seed, "Seed of the fault decisions (default: random, logged)")
        ->type_name("N")
        ->group(faults);
    const char* limits = "Limits";
    cmd->add_option("--threads", f->threads, "Server threads (default: one per core, at least 2)")
        ->type_name("N")
        ->group(limits);
    cmd->add_option("--header-timeout", f->header_timeout,
                    "Time to send a request's headers, and keep-alive idle time (default 10s)")
        ->type_name("DURATION")
        ->group(limits);
    cmd->add_option("--body-timeout", f->body_timeout,
                    "Time to send a request's body (default 30s)")
        ->type_name("DURATION")
        ->group(limits);
    cmd->add_option("--max-header-bytes", f->max_header_bytes,
                    "Largest request header block; larger gets 431 (default 16KiB)")
        ->type_name("SIZE")
        ->group(limits);
    cmd->add_option("--max-headers", f->max_headers,
                    "Most request header fields; more gets 431 (default 100)")
        ->type_name("N")
        ->group(limits);
    cmd->add_option("--drain-timeout", f->drain_timeout,
                    "On SIGINT/SIGTERM, time to finish in-flight requests (default 10s)")
        ->type_name("DURATION")
        ->group(limits);
    cmd->add_option("--forward-to", f->forward_to,
                    "After storing, forward each new event to URL (re-signed with the same "
                    "scheme and secret) and record delivered/failed on it")
        ->type_name("URL");
    add_secret_options(*cmd, f->secrets);
    add_listen_tls_options(*cmd, f->tls);
    set_run(*cmd, f, context, run_listen);
}

} // namespace hookctl::cli
