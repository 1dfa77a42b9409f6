// hookctl events: list, show, stats, export, import, mark (and migrate) events in an archive.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/har.hpp>
#include <hookctl/archive/ndjson.hpp>
#include <hookctl/archive/rekey.hpp>
#include <hookctl/archive/reparse.hpp>
#include <hookctl/replay/plan.hpp>
#include <hookctl/replay/replay.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>

#include "archive_key.hpp"
#include "common.hpp"

namespace hookctl::cli {
namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* k_default_archive = "./hookctl.db";

// The filter flags list, export and stats share.
struct FilterFlags {
    std::vector<std::string> statuses;
    std::string since;
    std::string until;
    std::vector<std::string> orgs;
    std::int64_t limit = -1;
};

struct EventsOptions {
    std::string archive = k_default_archive;
    FilterFlags filter;
    std::string output = "-";
    std::string input = "-";
    std::vector<std::string> ids;
    std::string status;
    std::string reason;
    std::string run;
    bool archive_given = false;        // runs: --archive was given (else: every indexed run)
    std::string archive_key;           // --archive-key FILE
    std::vector<std::string> old_keys; // rekey: --old-key FILE
    std::size_t batch = 256;           // rekey: rows per transaction
    bool redact = false;               // export --redact
    std::string redact_fields;         // export --redact-fields a.b,c
    std::string redact_key;            // export --redact-key FILE
    bool compare = false;              // reparse --compare
    bool write = false;                // reparse --write
    std::string max_divergence = "0";  // reparse --max-divergence P
    std::string format = "ndjson";     // export: ndjson, curl or har
};

// A time flag (see util::parse_when_ms), named in the error.
Result<std::int64_t> parse_time_flag(const std::string& flag, const std::string& text) {
    auto when = util::parse_when_ms(text, util::unix_now_ms());
    if (!when) {
        return fail(ExitCode::usage, flag + ": " + when.error().message);
    }
    return *when;
}

Result<archive::EventFilter> make_filter(const FilterFlags& flags) {
    archive::EventFilter filter;
    for (const auto& list : flags.statuses) {
        std::stringstream parts(list);
        std::string item;
        while (std::getline(parts, item, ',')) {
            auto status = archive::parse_event_status(util::trim(item));
            if (!status) {
                return fail(ExitCode::usage, "--status: " + status.error().message);
            }
            filter.statuses.push_back(*status);
        }
    }
    if (!flags.since.empty()) {
        auto t = parse_time_flag("--since", flags.since);
        HOOKCTL_RETURN_IF_ERROR(t);
        filter.since_ms = *t;
    }
    if (!flags.until.empty()) {
        auto t = parse_time_flag("--until", flags.until);
        HOOKCTL_RETURN_IF_ERROR(t);
        filter.until_ms = *t;
    }
    filter.org_ids = flags.orgs;
    if (flags.limit >= 0) {
        filter.limit = static_cast<std::uint64_t>(flags.limit);
    }
    return filter;
}

void add_filter_options(CLI::App& cmd, FilterFlags& flags, bool with_limit) {
    cmd.add_option("--status", flags.statuses,
                   "Only events in these states: received, delivered, failed, dead (repeat or "
                   "comma-separate)")
        ->type_name("STATUS")
        ->allow_extra_args(false);
    cmd.add_option("--since", flags.since,
                   "Only events received at or after TIME (RFC 3339, YYYY-MM-DD, @unix, or a "
                   "duration ago such as 24h)")
        ->type_name("TIME");
    cmd.add_option("--until", flags.until, "Only events received before TIME (same forms)")
        ->type_name("TIME");
    cmd.add_option("--org", flags.orgs, "Only events of this org_id (repeat for several)")
        ->type_name("ID")
        ->allow_extra_args(false);
    if (with_limit) {
        cmd.add_option("--limit", flags.limit, "At most N events (default: all)")
            ->type_name("N")
            ->check(whole_number(1));
    }
}

void add_archive_option(CLI::App& cmd, EventsOptions& opt) {
    cmd.add_option("--archive", opt.archive,
                   "Archive: an SQLite file (default ./hookctl.db) or a postgres:// URI (no "
                   "password in it: PGPASSWORD, ~/.pgpass)")
        ->type_name("FILE|URI");
}

Result<std::unique_ptr<archive::Store>> open_archive(const EventsOptions& opt, archive::Mode mode) {
    auto cipher = load_archive_cipher(opt.archive_key, opt.old_keys);
    HOOKCTL_RETURN_IF_ERROR(cipher);
    return archive::open(opt.archive, {.mode = mode,
                                       .busy_timeout = std::chrono::milliseconds(5000),
                                       .synchronous_full = true,
                                       .cipher = *cipher});
}

// What the subcommands that select events start with: the filter flags read, then the archive
// opened.
struct Selection {
    archive::EventFilter filter;
    std::unique_ptr<archive::Store> archive;
};

Result<Selection> open_selection(const EventsOptions& opt, archive::Mode mode) {
    auto filter = make_filter(opt.filter);
    HOOKCTL_RETURN_IF_ERROR(filter);
    auto opened = open_archive(opt, mode);
    HOOKCTL_RETURN_IF_ERROR(opened);
    return Selection{std::move(*filter), std::move(*opened)};
}

bool printable_text(const std::string& body) {
    ojson probe = body;
    try {
        (void)probe.dump(); // strict: throws on invalid UTF-8
    } catch (const std::exception&) {
        return false;
    }
    for (unsigned char c : body) {
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
            return false;
        }
    }
    return true;
}

std::string cell(std::string text, std::size_t width) {
    for (auto& c : text) {
        if (c == '\n' || c == '\r' || c == '\t') {
            c = ' ';
        }
    }
    if (text.empty()) {
        text = "-";
    }
    if (text.size() > width) {
        text = text.substr(0, width - 1) + "~";
    }
    return text;
}

// ---------------------------------------------------------------------------------------------

Result<ExitCode> run_list(const EventsOptions& opt, Context& context) {
    auto selected = open_selection(opt, archive::Mode::read_only);
    HOOKCTL_RETURN_IF_ERROR(selected);
    auto& [filter, archive] = *selected;
    filter.with_body = false;
    const bool table = !context.global.json && is_tty(1);
    if (table) {
        std::printf("%-36s  %-24s  %-16s  %-9s  %8s  %s\n", "EVENT_ID", "RECEIVED_AT", "ORG",
                    "STATUS", "ATTEMPTS", "LAST_ERROR");
    }
    auto visited = archive->for_each_event(filter, [&](const archive::Event& e) {
        if (table) {
            std::printf("%-36s  %-24s  %-16s  %-9s  %8lld  %s\n", cell(e.event_id, 36).c_str(),
                        util::format_time_ms(e.received_at_ms).c_str(), cell(e.org_id, 16).c_str(),
                        std::string(to_string(e.status)).c_str(),
                        static_cast<long long>(e.attempts), cell(e.last_error, 60).c_str());
        } else {
            std::cout << archive::event_to_json(e, false).dump(-1, ' ', false,
                                                               ojson::error_handler_t::replace)
                      << '\n';
        }
        return true;
    });
    HOOKCTL_RETURN_IF_ERROR(visited);
    std::cout.flush();
    if (table && !context.global.quiet) {
        std::fprintf(stderr, "%llu event(s)\n", static_cast<unsigned long long>(*visited));
    }
    return ExitCode::ok;
}

Result<ExitCode> run_show(const EventsOptions& opt, Context& context) {
    auto opened = open_archive(opt, archive::Mode::read_only);
    HOOKCTL_RETURN_IF_ERROR(opened);
    auto& archive = *opened;
    const std::string& id = opt.ids.front();
    auto event = archive->get_event(id);
    HOOKCTL_RETURN_IF_ERROR(event);
    if (!event->has_value()) {
        return fail(ExitCode::usage, "no event with id '" + id + "' in " + opt.archive +
                                         ": list ids with `hookctl events list --archive " +
                                         opt.archive + "`");
    }
    const auto& e = **event;
    auto attempts = archive->attempts_for(id);
    HOOKCTL_RETURN_IF_ERROR(attempts);
    auto reparses = archive->reparses_of(id, context.global.json);
    HOOKCTL_RETURN_IF_ERROR(reparses);
    if (context.global.json) {
        auto doc = archive::event_to_json(e, true);
        ojson versions = ojson::array();
        for (const auto& r : *reparses) {
            auto payload = ojson::parse(r.body, nullptr, false);
            versions.push_back({{"version", r.version},
                                {"parser", r.parser},
                                {"created_at", util::format_time_ms(r.created_at_ms)},
                                {"divergent", r.divergent},
                                {"payload", payload.is_discarded() ? ojson(r.body) : payload}});
        }
        doc["reparses"] = std::move(versions);
        ojson list = ojson::array();
        for (const auto& a : *attempts) {
            list.push_back({{"run_id", a.run_id},
                            {"target", a.target},
                            {"attempt", a.attempt},
                            {"at", util::format_time_ms(a.at_ms)},
                            {"http_status", a.http_status},
                            {"latency_ms", a.latency_ms},
                            {"outcome", archive::to_string(a.outcome)},
                            {"reason", a.reason},
                            {"detail", a.detail}});
        }
        doc["delivery_attempts"] = std::move(list);
        std::cout << doc.dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
        return ExitCode::ok;
    }
    std::cout << "event_id:    " << e.event_id << '\n'
              << "received_at: " << util::format_time_ms(e.received_at_ms) << '\n'
              << "org_id:      " << (e.org_id.empty() ? "-" : e.org_id) << '\n'
              << "scheme:      " << (e.scheme.empty() ? "-" : e.scheme) << '\n'
              << "status:      " << to_string(e.status) << '\n'
              << "attempts:    " << e.attempts << '\n'
              << "last_error:  " << (e.last_error.empty() ? "-" : e.last_error) << '\n'
              << "updated_at:  " << util::format_time_ms(e.updated_at_ms) << '\n'
              << "trace_id:    " << (e.trace_id.empty() ? "-" : e.trace_id) << '\n'
              << "source:      " << (e.source.empty() ? "-" : e.source) << '\n'
              << "verified_by: " << (e.verified_by.empty() ? "-" : e.verified_by) << '\n'
              << "raw_mime:    "
              << (e.raw_mime ? std::to_string(e.raw_mime->size()) + " bytes" : std::string("-"))
              << "\n\nheaders:\n";
    for (const auto& [name, value] : e.headers.entries()) {
        std::cout << "  " << name << ": " << value << '\n';
    }
    std::cout << "\nbody (" << e.body.size() << " bytes):\n";
    if (printable_text(e.body)) {
        std::cout << e.body << (e.body.empty() || e.body.back() != '\n' ? "\n" : "");
    } else {
        std::cout << "  (binary; `--json` shows it as body_base64)\n";
    }
    if (!reparses->empty()) {
        std::cout << "\nre-parses (" << reparses->size() << "; the body above is version 0, "
                  << "`--json` shows each):\n";
        for (const auto& r : *reparses) {
            std::string fields;
            for (const auto& f : r.divergent) {
                fields += (fields.empty() ? "" : ", ") + f;
            }
            std::cout << "  v" << r.version << "  " << util::format_time_ms(r.created_at_ms) << "  "
                      << r.parser << "  differs in: " << (fields.empty() ? "-" : fields) << '\n';
        }
    }
    std::cout << "\ndelivery attempts (" << attempts->size() << "):\n";
    for (const auto& a : *attempts) {
        std::cout << "  " << util::format_time_ms(a.at_ms) << "  #" << a.attempt << "  "
                  << (a.http_status > 0 ? std::to_string(a.http_status) : std::string("---"))
                  << "  " << std::fixed << std::setprecision(1) << a.latency_ms << " ms  "
                  << archive::to_string(a.outcome) << (a.reason.empty() ? "" : "  " + a.reason)
                  << (a.run_id.empty() ? "" : "  run " + a.run_id) << "  " << a.target << '\n';
        if (!a.detail.empty()) {
            std::cout << "      " << cell(a.detail, 200) << '\n';
        }
    }
    return ExitCode::ok;
}

Result<ExitCode> run_stats(const EventsOptions& opt, Context& context) {
    auto selected = open_selection(opt, archive::Mode::read_only);
    HOOKCTL_RETURN_IF_ERROR(selected);
    auto& [filter, archive] = *selected;
    if (!opt.run.empty()) {
        auto run = archive->get_run(opt.run);
        HOOKCTL_RETURN_IF_ERROR(run);
        if (!*run) {
            return fail(ExitCode::usage, "--run " + opt.run + ": no such run in " + opt.archive +
                                             " (list runs with `hookctl events runs --archive " +
                                             opt.archive + "`)");
        }
    }
    auto stats = archive->stats(filter, opt.run);
    HOOKCTL_RETURN_IF_ERROR(stats);
    auto pairs = [](const std::vector<std::pair<std::string, std::int64_t>>& rows) {
        ojson obj = ojson::object();
        for (const auto& [key, count] : rows) {
            obj[key] = count;
        }
        return obj;
    };
    if (context.global.json) {
        ojson doc = {{"archive", opt.archive},
                     {"total", stats->total},
                     {"by_status", pairs(stats->by_status)},
                     {"by_org", pairs(stats->by_org)},
                     {"by_day", pairs(stats->by_day)},
                     {"attempts", stats->attempts},
                     {"attempts_by_outcome", pairs(stats->attempts_by_outcome)},
                     {"latency_ms",
                      {{"count", stats->latency.count},
                       {"p50", stats->latency.p50},
                       {"p95", stats->latency.p95},
                       {"p99", stats->latency.p99},
                       {"max", stats->latency.max}}}};
        if (!opt.run.empty()) {
            doc["run_id"] = opt.run;
        }
        std::cout << doc.dump() << '\n';
        return ExitCode::ok;
    }
    std::cout << "events: " << stats->total << '\n' << "\nby status:\n";
    for (const auto& [status, count] : stats->by_status) {
        std::cout << "  " << std::left << std::setw(12) << status << std::right << std::setw(10)
                  << count << '\n';
    }
    std::cout << "\nby org:\n";
    for (const auto& [org, count] : stats->by_org) {
        std::cout << "  " << std::left << std::setw(24) << (org.empty() ? "(none)" : org)
                  << std::right << std::setw(10) << count << '\n';
    }
    std::cout << "\nby day (UTC):\n";
    for (const auto& [day, count] : stats->by_day) {
        std::cout << "  " << day << std::setw(12) << count << '\n';
    }
    std::cout << "\ndelivery attempts: " << stats->attempts;
    for (const auto& [outcome, count] : stats->attempts_by_outcome) {
        std::cout << "  " << outcome << " " << count;
    }
    std::cout << '\n';
    if (stats->latency.count > 0) {
        std::cout << std::fixed << std::setprecision(1) << "latency (" << stats->latency.count
                  << " responses): p50 " << stats->latency.p50 << " ms, p95 " << stats->latency.p95
                  << " ms, p99 " << stats->latency.p99 << " ms, max " << stats->latency.max
                  << " ms\n";
    } else {
        std::cout << "latency: no responses recorded\n";
    }
    return ExitCode::ok;
}

// Writes an export with `write` to stdout, or to --output: first to FILE.partial, renamed when
// complete, so a failed export leaves no half file (`executable`: a script its owner can run).
Result<std::uint64_t>
write_export(const std::string& output, bool executable,
             const std::function<Result<std::uint64_t>(std::ostream&)>& write) {
    if (output == "-") {
        return write(std::cout);
    }
    std::string partial = output + ".partial";
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) {
        // The folder is missing or not writable: the environment, not the request (exit 4).
        return fail(ExitCode::environment, "--output: cannot write " + partial + ": " +
                                               std::strerror(errno) + " (check the folder)");
    }
    Result<std::uint64_t> written = write(out);
    out.close();
    if (written && executable) {
        std::error_code ec;
        std::filesystem::permissions(partial, std::filesystem::perms::owner_exec,
                                     std::filesystem::perm_options::add, ec);
    }
    if (written && (!out || std::rename(partial.c_str(), output.c_str()) != 0)) {
        written = fail(ExitCode::environment,
                       "--output: cannot write " + output + ": " + std::strerror(errno));
    }
    if (!written) {
        std::remove(partial.c_str());
    }
    return written;
}

Result<ExitCode> run_export_as(const EventsOptions& opt, Context& context);

// The redactor --redact, --redact-fields and --redact-key ask for; none when neither is given.
Result<std::optional<archive::Redactor>> make_redactor(const EventsOptions& opt) {
    if (!opt.redact && opt.redact_fields.empty()) {
        if (!opt.redact_key.empty()) {
            return fail(ExitCode::usage, "--redact-key needs --redact or --redact-fields");
        }
        return std::optional<archive::Redactor>();
    }
    std::vector<archive::FieldPath> fields;
    if (!opt.redact_fields.empty()) {
        auto parsed = archive::parse_field_paths(opt.redact_fields);
        HOOKCTL_RETURN_IF_ERROR(parsed);
        fields = std::move(*parsed);
    }
    keys::SecretBytes key(util::random_bytes(32)); // one export's pseudonyms, unlinkable
    if (!opt.redact_key.empty()) {
        // A file, not a keyring: no window to judge, so the time given does not matter.
        auto loaded = keys::load_secrets({{keys::SecretSource::Kind::file, opt.redact_key}}, 0);
        if (!loaded) {
            return fail(loaded.error().code, "--redact-key: " + loaded.error().message);
        }
        key = std::move(loaded->front().text);
    }
    return std::optional<archive::Redactor>(std::in_place, std::move(key), opt.redact,
                                            std::move(fields));
}

Result<ExitCode> run_export(const EventsOptions& opt, Context& context) {
    if (opt.format != "ndjson") {
        if (opt.redact || !opt.redact_fields.empty()) {
            return fail(ExitCode::usage,
                        "--redact and --redact-fields write NDJSON only: drop --format " +
                            opt.format +
                            " (a curl script or HAR of redacted mail could not "
                            "be sent as the original was)");
        }
        return run_export_as(opt, context);
    }
    auto redactor = make_redactor(opt);
    HOOKCTL_RETURN_IF_ERROR(redactor);
    const archive::Redactor* redacting = *redactor ? &**redactor : nullptr;
    auto selected = open_selection(opt, archive::Mode::read_only);
    HOOKCTL_RETURN_IF_ERROR(selected);
    auto& [filter, archive] = *selected;
    auto written = write_export(opt.output, false, [&](std::ostream& out) {
        return archive::export_ndjson(*archive, filter, out, redacting);
    });
    HOOKCTL_RETURN_IF_ERROR(written);
    if (!context.global.quiet) {
        std::cerr << "exported " << *written << " event(s) from " << opt.archive
                  << (redacting == nullptr ? "" : " (redacted; raw MIME left out)") << '\n';
    }
    return ExitCode::ok;
}

void add_export_format_option(CLI::App& cmd, std::string& format) {
    cmd.add_option("--format", format,
                   "ndjson (default), curl (a script of signed curl commands, signed when it "
                   "runs) or har (HAR 1.2 with the last response)")
        ->check(CLI::IsMember({"ndjson", "curl", "har"}))
        ->default_str("ndjson");
}

// events export --format curl|har: the other tools' formats (archive/har.hpp).
Result<ExitCode> run_export_as(const EventsOptions& opt, Context& context) {
    auto selected = open_selection(opt, archive::Mode::read_only);
    HOOKCTL_RETURN_IF_ERROR(selected);
    auto& [filter, archive] = *selected;
    auto write = [&](std::ostream& out) {
        return opt.format == "har"
                   ? archive::export_har(*archive, filter, out)
                   : archive::export_curl(*archive, filter, out,
                                          {opt.archive, util::format_time_ms(util::unix_now_ms())});
    };
    auto written = write_export(opt.output, opt.format == "curl", write);
    HOOKCTL_RETURN_IF_ERROR(written);
    if (!context.global.quiet) {
        std::cerr << "exported " << *written << " event(s) from " << opt.archive << " as "
                  << opt.format << '\n';
    }
    return ExitCode::ok;
}

Result<ExitCode> run_import(const EventsOptions& opt, Context& context) {
    std::ifstream file;
    std::istream* in = &std::cin;
    std::string name = opt.input == "-" ? "stdin" : opt.input;
    if (opt.input != "-") {
        file.open(opt.input, std::ios::binary);
        if (!file) {
            return fail(ExitCode::usage, "cannot read " + opt.input + ": " + std::strerror(errno) +
                                             " (give an NDJSON file, or '-' for stdin)");
        }
        in = &file;
    } else if (is_tty(0)) {
        return fail(ExitCode::usage, "import reads NDJSON from stdin, which is a terminal: give "
                                     "a file, or pipe the events in");
    }
    std::error_code ec;
    // A database server's archive is never removed; a file this import created is.
    const bool existed =
        archive::is_server_uri(opt.archive) || std::filesystem::exists(opt.archive, ec) || ec;
    auto opened = open_archive(opt, archive::Mode::create);
    HOOKCTL_RETURN_IF_ERROR(opened);
    auto& archive = *opened;
    auto summary = archive::import_ndjson(*archive, *in, name, util::unix_now_ms());
    if (!summary) {
        // Nothing was imported (one transaction): an archive this run created goes too, so a
        // failed import leaves no empty archive behind.
        if (!existed) {
            archive.reset(); // closed: its -wal and -shm go with it
            std::filesystem::remove(opt.archive, ec);
        }
        return std::unexpected(summary.error());
    }
    if (context.global.json) {
        print_json({{"archive", opt.archive},
                    {"lines", summary->lines},
                    {"inserted", summary->inserted},
                    {"duplicates", summary->duplicates}});
    } else if (!context.global.quiet) {
        std::cerr << "imported " << summary->inserted << " event(s) into " << opt.archive;
        if (summary->duplicates > 0) {
            std::cerr << " (" << summary->duplicates
                      << " duplicate id(s) already stored, left unchanged)";
        }
        std::cerr << '\n';
    }
    return ExitCode::ok;
}

Result<ExitCode> run_mark(const EventsOptions& opt, Context& context) {
    auto status = archive::parse_event_status(opt.status);
    if (!status) {
        return fail(ExitCode::usage, "--status: " + status.error().message);
    }
    if (*status == archive::EventStatus::received) {
        return fail(ExitCode::usage, "--status: use failed, dead or delivered");
    }
    auto opened = open_archive(opt, archive::Mode::read_write);
    HOOKCTL_RETURN_IF_ERROR(opened);
    auto& archive = *opened;
    if (auto marked = archive::mark_all(*archive, opt.ids, *status, opt.reason); !marked) {
        return std::unexpected(marked.error());
    }
    if (context.global.json) {
        print_json({{"archive", opt.archive},
                    {"marked", opt.ids.size()},
                    {"status", std::string(to_string(*status))}});
    } else if (!context.global.quiet) {
        std::cerr << "marked " << opt.ids.size() << " event(s) " << to_string(*status) << '\n';
    }
    return ExitCode::ok;
}

// --- rekey, reparse ---------------------------------------------------------------------------

std::atomic<int> g_rekey_stop{0};

void on_rekey_signal(int) {
    g_rekey_stop.store(1);
}

Result<ExitCode> run_rekey(const EventsOptions& opt, Context& context) {
    if (opt.archive_key.empty()) {
        return fail(ExitCode::usage, "events rekey needs --archive-key FILE: the key to move "
                                     "the archive to (--old-key FILE for the key it is under)");
    }
    auto opened = open_archive(opt, archive::Mode::read_write);
    HOOKCTL_RETURN_IF_ERROR(opened);
    auto& archive = *opened;
    struct sigaction action = {};
    action.sa_handler = on_rekey_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    LogSink logs(context);
    auto last = std::chrono::steady_clock::now();
    archive::RekeyOptions options;
    options.batch_rows = opt.batch;
    options.progress = [&](const archive::RekeyProgress& p) {
        auto now = std::chrono::steady_clock::now();
        if (now - last >= std::chrono::seconds(1)) {
            last = now;
            logs.write(false,
                       "rekey to " + p.to + ": " + std::to_string(p.resealed) +
                           " value(s) re-encrypted, about " + std::to_string(p.rows_left) +
                           " row(s) left",
                       {{"resealed", p.resealed}, {"rows_left", p.rows_left}});
        }
        return g_rekey_stop.load() == 0;
    };
    auto done = archive::rekey(*archive, options);
    HOOKCTL_RETURN_IF_ERROR(done);
    const auto& p = *done;
    if (context.global.json) {
        print_json({{"archive", opt.archive},
                    {"key", p.to},
                    {"finished", p.finished},
                    {"resumed", p.resumed},
                    {"encrypted_clear_archive", p.encrypting},
                    {"resealed", p.resealed},
                    {"unchanged", p.unchanged},
                    {"retired_keys", p.retired}});
    }
    if (!p.finished) {
        return fail(ExitCode::aborted,
                    "rekey of " + opt.archive + " interrupted after " + std::to_string(p.resealed) +
                        " value(s); the archive is readable with the old and the new key together: "
                        "run the same command again to finish");
    }
    if (!context.global.json && !context.global.quiet) {
        std::string retired;
        for (const auto& id : p.retired) {
            retired += (retired.empty() ? "" : ", ") + id;
        }
        std::cerr << opt.archive << ": " << (p.encrypting ? "encrypted " : "re-encrypted ")
                  << p.resealed << " value(s) under archive key " << p.to << " (" << p.unchanged
                  << " already under it)"
                  << (retired.empty() ? "" : "; key " + retired + " no longer used")
                  << (p.resumed ? "; resumed an unfinished rekey" : "") << '\n';
    }
    return ExitCode::ok;
}

std::string percent(double share) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f%%", share * 100.0);
    return buf;
}

Result<ExitCode> run_reparse(const EventsOptions& opt, Context& context) {
    if (!opt.compare && !opt.write) {
        return fail(ExitCode::usage, "events reparse needs --compare (report how today's parser "
                                     "diverges from the stored events) or --write (store the "
                                     "new parses beside them), or both");
    }
    auto max = parse_share("--max-divergence", opt.max_divergence, true);
    HOOKCTL_RETURN_IF_ERROR(max);
    auto selected =
        open_selection(opt, opt.write ? archive::Mode::read_write : archive::Mode::read_only);
    HOOKCTL_RETURN_IF_ERROR(selected);
    auto& [filter, archive] = *selected;
    archive::ReparseOptions options;
    options.filter = filter;
    options.write = opt.write;
    options.parser = std::string("hookctl ") + HOOKCTL_VERSION;
    auto done = archive::reparse_events(*archive, options);
    HOOKCTL_RETURN_IF_ERROR(done);
    const auto& tally = done->tally;
    const bool exceeded = opt.compare && tally.exceeds(*max);
    if (context.global.json) {
        ojson fields = ojson::object();
        for (const auto& f : tally.fields()) {
            fields[f.field] = {{"divergent", f.divergent}, {"rate", tally.rate(f)}};
        }
        ojson skipped = ojson::object();
        for (const auto& [reason, n] : tally.skipped()) {
            skipped[reason] = n;
        }
        ojson events = ojson::array();
        for (const auto& e : tally.events()) {
            ojson diffs = ojson::array();
            for (const auto& d : e.diffs) {
                diffs.push_back(
                    {{"field", d.field}, {"stored", d.stored}, {"reparsed", d.reparsed}});
            }
            events.push_back({{"event_id", e.event_id}, {"fields", e.fields}, {"diffs", diffs}});
        }
        ojson doc = {{"archive", opt.archive},     {"parser", options.parser},
                     {"examined", done->examined}, {"compared", tally.compared()},
                     {"skipped", skipped},         {"divergent", tally.divergent()},
                     {"divergence", tally.rate()}, {"max_divergence", *max},
                     {"exceeded", exceeded},       {"fields", fields},
                     {"events", events},           {"written", done->written}};
        std::cout << doc.dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
        return exceeded ? ExitCode::check_failed : ExitCode::ok;
    }
    std::cout << "re-parsed " << tally.compared() << " event(s) of " << opt.archive << " with "
              << options.parser;
    std::uint64_t skipped = 0;
    std::string reasons;
    for (const auto& [reason, n] : tally.skipped()) {
        skipped += n;
        reasons += (reasons.empty() ? "" : ", ") + reason + " " + std::to_string(n);
    }
    if (skipped > 0) {
        std::cout << " (skipped " << skipped << ": " << reasons << ")";
    }
    std::cout << "\n\n";
    if (opt.compare) {
        std::printf("%-12s %10s %9s\n", "FIELD", "DIVERGENT", "RATE");
        for (const auto& f : tally.fields()) {
            std::printf("%-12s %10llu %9s\n", f.field.c_str(),
                        static_cast<unsigned long long>(f.divergent),
                        percent(tally.rate(f)).c_str());
        }
        std::printf("%-12s %10llu %9s  (max %s)\n", "any",
                    static_cast<unsigned long long>(tally.divergent()),
                    percent(tally.rate()).c_str(), percent(*max).c_str());
        constexpr std::size_t k_listed = 20;
        if (!tally.events().empty()) {
            std::cout << "\ndivergent events:\n";
        }
        std::size_t listed = 0;
        for (const auto& e : tally.events()) {
            if (listed++ == k_listed) {
                std::cout << "  ... and " << tally.events().size() - k_listed
                          << " more (--json lists every one)\n";
                break;
            }
            std::cout << "  " << e.event_id << '\n';
            for (const auto& d : e.diffs) {
                std::cout << "    " << d.field << ": " << cell(d.stored, 200) << "\n"
                          << "    " << std::string(d.field.size(), ' ') << "  "
                          << cell(d.reparsed, 200) << '\n';
            }
        }
    }
    if (opt.write) {
        std::cout << (opt.compare ? "\n" : "") << "stored " << done->written
                  << " new parse(s) as new version(s) beside the stored events (`hookctl events "
                     "show ID` lists them)\n";
    }
    if (exceeded && !context.global.quiet) {
        std::cerr << "hookctl: divergence " << percent(tally.rate())
                  << " is above --max-divergence " << percent(*max) << '\n';
    }
    return exceeded ? ExitCode::check_failed : ExitCode::ok;
}

Result<ExitCode> run_migrate(const EventsOptions& opt, Context& context) {
    auto opened = open_archive(opt, archive::Mode::read_write);
    HOOKCTL_RETURN_IF_ERROR(opened);
    auto& archive = *opened;
    if (context.global.json) {
        print_json({{"archive", opt.archive}, {"schema_version", archive->schema_version()}});
    } else if (!context.global.quiet) {
        std::cerr << opt.archive << ": schema version " << archive->schema_version() << '\n';
    }
    return ExitCode::ok;
}

// --- runs ------------------------------------------------------------------------------------

// A run as listed, with the archive it lives in.
struct ListedRun {
    std::string archive;
    archive::Run run;
};

ojson run_json(const ListedRun& r) {
    const auto& p = r.run.progress;
    return {{"run_id", r.run.run_id},
            {"state", std::string(to_string(r.run.state))},
            {"kind", r.run.kind},
            {"source", r.run.source},
            {"target", r.run.target},
            {"selected", p.total},
            {"delivered", p.delivered},
            {"dead", p.dead},
            {"pending", p.pending()},
            {"started_at", util::format_time_ms(r.run.created_at_ms)},
            {"updated_at", util::format_time_ms(r.run.updated_at_ms)},
            {"started_by", r.run.started_by},
            {"archive", r.archive},
            {"last_error", r.run.last_error}};
}

// The runs of --archive, or of every archive the run index names (the runs this user started).
Result<std::vector<ListedRun>> find_runs(const EventsOptions& opt) {
    std::vector<ListedRun> out;
    std::map<std::string, std::vector<std::string>> by_archive; // archive -> run ids (empty: all)
    if (opt.archive_given) {
        by_archive[opt.archive];
    } else {
        for (const auto& [id, path] : replay::indexed_runs()) {
            by_archive[path].push_back(id);
        }
    }
    for (const auto& [path, ids] : by_archive) {
        auto db = archive::open(path, {.mode = archive::Mode::read_only});
        if (!db) {
            if (opt.archive_given) {
                return std::unexpected(db.error());
            }
            continue; // an archive that moved or was deleted since: its runs are gone with it
        }
        auto runs = (*db)->list_runs();
        HOOKCTL_RETURN_IF_ERROR(runs);
        for (auto& run : *runs) {
            if (ids.empty() || std::find(ids.begin(), ids.end(), run.run_id) != ids.end()) {
                out.push_back({path, std::move(run)});
            }
        }
    }
    std::sort(out.begin(), out.end(), [](const ListedRun& a, const ListedRun& b) {
        return a.run.created_at_ms > b.run.created_at_ms;
    });
    return out;
}

Result<ExitCode> run_runs(const EventsOptions& opt, Context& context) {
    auto runs = find_runs(opt);
    HOOKCTL_RETURN_IF_ERROR(runs);
    const bool table = !context.global.json && is_tty(1);
    if (!table) {
        for (const auto& r : *runs) {
            std::cout << run_json(r).dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
        }
        return ExitCode::ok;
    }
    std::printf("%-20s  %-9s  %8s  %9s  %6s  %7s  %-20s  %-18s  %s\n", "RUN_ID", "STATE",
                "SELECTED", "DELIVERED", "DEAD", "PENDING", "STARTED", "BY", "SOURCE -> TARGET");
    for (const auto& r : *runs) {
        const auto& p = r.run.progress;
        std::printf("%-20s  %-9s  %8lld  %9lld  %6lld  %7lld  %-20s  %-18s  %s -> %s\n",
                    cell(r.run.run_id, 20).c_str(), std::string(to_string(r.run.state)).c_str(),
                    static_cast<long long>(p.total), static_cast<long long>(p.delivered),
                    static_cast<long long>(p.dead), static_cast<long long>(p.pending()),
                    util::format_time_ms(r.run.created_at_ms).substr(0, 19).c_str(),
                    cell(r.run.started_by, 18).c_str(), r.run.source.c_str(), r.run.target.c_str());
    }
    if (!context.global.quiet) {
        std::fprintf(stderr, "%zu run(s)%s\n", runs->size(),
                     opt.archive_given ? ""
                                       : " (this user's, from the run index; --archive FILE "
                                         "lists one archive's)");
    }
    return ExitCode::ok;
}

Result<ExitCode> run_runs_show(const EventsOptions& opt, Context& context) {
    const std::string& id = opt.ids.front();
    std::string path = opt.archive;
    if (!opt.archive_given) {
        auto indexed = replay::indexed_archive(id);
        if (!indexed) {
            return fail(ExitCode::usage, "run " + id +
                                             " is not in this user's run index: pass "
                                             "--archive FILE (the archive it was "
                                             "recorded in)");
        }
        path = *indexed;
    }
    auto opened = archive::open(path, {.mode = archive::Mode::read_only});
    HOOKCTL_RETURN_IF_ERROR(opened);
    archive::Store& db = **opened;
    auto run = db.get_run(id);
    HOOKCTL_RETURN_IF_ERROR(run);
    if (!*run) {
        return fail(ExitCode::usage, "no run " + id + " in " + path +
                                         " (list runs with `hookctl events runs --archive " + path +
                                         "`)");
    }
    auto counts = db.count_run_items(id);
    auto attempts = db.count_attempts(id);
    if (!counts || !attempts) {
        return std::unexpected(!counts ? counts.error() : attempts.error());
    }
    auto workers = db.list_workers(id); // a run shared by workers (PostgreSQL); else none
    HOOKCTL_RETURN_IF_ERROR(workers);
    auto plan = nlohmann::json::parse((*run)->options_json, nullptr, false);
    ListedRun listed{path, **run};
    // The items decide the ledger (the run row may lag a crash by a second).
    listed.run.progress.total = counts->total() > 0 ? counts->total() : listed.run.progress.total;
    if (counts->total() > 0) {
        listed.run.progress.delivered = counts->delivered;
        listed.run.progress.dead = counts->dead;
    }
    const bool resumable = (*run)->state != archive::RunState::completed && counts->pending > 0;
    if (context.global.json) {
        auto doc = run_json(listed);
        doc["plan"] = plan.is_discarded() ? ojson(nullptr) : ojson::parse(plan.dump());
        ojson list = ojson::array();
        for (const auto& a : *attempts) {
            list.push_back({{"outcome", a.outcome}, {"reason", a.reason}, {"count", a.count}});
        }
        doc["attempts"] = std::move(list);
        ojson crew = ojson::array();
        for (const auto& w : *workers) {
            crew.push_back({{"worker", w.worker},
                            {"token", w.token},
                            {"state", w.state},
                            {"live", w.live},
                            {"started_at", util::format_time_ms(w.started_at_ms)},
                            {"seen_at", util::format_time_ms(w.seen_at_ms)},
                            {"claimed", w.claimed},
                            {"delivered", w.delivered},
                            {"dead", w.dead},
                            {"holding", w.holding}});
        }
        doc["workers"] = std::move(crew);
        doc["resume"] = resumable ? ojson(replay::resume_command(id, path)) : ojson(nullptr);
        std::cout << doc.dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
        return ExitCode::ok;
    }
    const auto& p = listed.run.progress;
    std::cout << "run_id:      " << id << '\n'
              << "state:       " << to_string((*run)->state) << '\n'
              << "archive:     " << path << '\n'
              << "source:      " << (*run)->source << '\n'
              << "target:      " << (*run)->target << '\n'
              << "started:     " << util::format_time_ms((*run)->created_at_ms) << " by "
              << ((*run)->started_by.empty() ? "-" : (*run)->started_by) << '\n'
              << "updated:     " << util::format_time_ms((*run)->updated_at_ms) << '\n'
              << "ledger:      selected " << p.total << " = delivered " << p.delivered << " + dead "
              << p.dead << " + pending " << p.pending() << '\n'
              << "last_error:  " << ((*run)->last_error.empty() ? "-" : (*run)->last_error) << '\n';
    if (!plan.is_discarded()) {
        std::cout << "\nplan:\n" << plan.dump(2) << '\n';
    }
    std::cout << "\nattempts:\n";
    for (const auto& a : *attempts) {
        std::cout << "  " << std::setw(8) << a.count << "  " << a.outcome
                  << (a.reason.empty() ? "" : "  " + a.reason) << '\n';
    }
    if (attempts->empty()) {
        std::cout << "  (none)\n";
    }
    if (!workers->empty()) {
        std::cout << "\nworkers:\n";
        for (const auto& w : *workers) {
            std::cout << "  worker " << w.worker << "  " << w.state << (w.live ? " (live)" : "")
                      << "  claimed " << w.claimed << ", delivered " << w.delivered << ", dead "
                      << w.dead << ", holding " << w.holding << "; last seen "
                      << util::format_time_ms(w.seen_at_ms) << '\n';
        }
    }
    if (resumable) {
        std::cout << "\nresume with: " << replay::resume_command(id, path) << '\n';
    }
    return ExitCode::ok;
}

using Runner = Result<ExitCode> (*)(const EventsOptions&, Context&);

void bind(CLI::App* cmd, std::shared_ptr<EventsOptions> opt, Context& context, Runner runner) {
    set_run(*cmd, opt, context, runner);
}

} // namespace

void register_events(CLI::App& app, Context& context) {
    auto* events = app.add_subcommand(
        "events", "List, show, count, export, import, copy, mark, re-parse and re-key events in an "
                  "archive");
    events->require_subcommand(1);
    register_events_tail(*events, context);
    register_events_copy(*events, context);

    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "list", "List events in storage order: a table on a TTY, NDJSON with --json or when "
                    "stdout is not a terminal (bodies left out; see export)");
        add_archive_option(*cmd, *opt);
        add_filter_options(*cmd, opt->filter, true);
        bind(cmd, opt, context, run_list);
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "show", "Show one event: fields, headers, body, re-parses and delivery attempts");
        add_archive_option(*cmd, *opt);
        add_archive_key_option(*cmd, opt->archive_key);
        cmd->add_option("id", opt->ids, "Event id")->required()->expected(1)->type_name("ID");
        bind(cmd, opt, context, run_show);
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "stats", "Counts by status, org and day; delivery latency percentiles");
        add_archive_option(*cmd, *opt);
        add_filter_options(*cmd, opt->filter, false);
        cmd->add_option("--run", opt->run, "Latency and attempts of this run only")
            ->type_name("RUN_ID");
        bind(cmd, opt, context, run_stats);
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "export", "Write events as NDJSON (the import format, bodies included)");
        add_archive_option(*cmd, *opt);
        add_archive_key_option(*cmd, opt->archive_key);
        add_filter_options(*cmd, opt->filter, true);
        cmd->add_flag("--redact", opt->redact,
                      "Replace addresses, names, subjects, bodies, attachment filenames and "
                      "header values with stable pseudonyms; drop raw MIME (for a vendor)");
        cmd->add_option("--redact-fields", opt->redact_fields,
                        "Also replace these payload fields (a.b,c: commas between fields, dots "
                        "into objects)")
            ->type_name("FIELDS");
        cmd->add_option("--redact-key", opt->redact_key,
                        "Pseudonym key FILE (mode 0600), so several exports share tokens "
                        "(default: a random key per export)")
            ->type_name("FILE");
        cmd->add_option("-o,--output", opt->output, "Write to FILE instead of stdout")
            ->type_name("FILE");
        add_export_format_option(*cmd, opt->format);
        bind(cmd, opt, context, run_export);
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "import", "Store NDJSON events (one object per line) in one transaction; a bad "
                      "line stores nothing and names its line number");
        add_archive_option(*cmd, *opt);
        add_archive_key_option(*cmd, opt->archive_key);
        cmd->add_option("file", opt->input, "NDJSON file ('-' for stdin, the default)")
            ->type_name("FILE");
        bind(cmd, opt, context, run_import);
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "mark", "Set the status of events (all or none: an unknown id marks nothing)");
        add_archive_option(*cmd, *opt);
        cmd->add_option("ids", opt->ids, "Event ids")->required()->type_name("ID");
        cmd->add_option("--status", opt->status, "New status: failed, dead or delivered")
            ->required()
            ->type_name("STATUS")
            ->check(CLI::IsMember({"failed", "dead", "delivered"}));
        cmd->add_option("--reason", opt->reason, "Why (stored as last_error)")->type_name("TEXT");
        bind(cmd, opt, context, run_mark);
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "runs", "List replay runs: state, ledger (selected = delivered + dead + pending), "
                    "who started them; `runs show RUN_ID` for one run's plan and attempts");
        cmd->add_option("--archive", opt->archive,
                        "Archive whose runs to list (default: every run this user started, "
                        "from the run index)")
            ->type_name("FILE")
            ->each([opt](const std::string&) { opt->archive_given = true; });
        auto show_opt = std::make_shared<EventsOptions>();
        auto* show = cmd->add_subcommand("show", "Show one run: its plan, ledger, attempts by "
                                                 "outcome and reason, and how to resume it");
        show->add_option("--archive", show_opt->archive,
                         "Archive of the run (default: found through the run index)")
            ->type_name("FILE")
            ->each([show_opt](const std::string&) { show_opt->archive_given = true; });
        show->add_option("id", show_opt->ids, "Run id")
            ->required()
            ->expected(1)
            ->type_name("RUN_ID");
        bind(show, show_opt, context, run_runs_show);
        // `runs show` runs its own callback only; plain `runs` lists.
        cmd->callback([opt, show, &context] {
            if (show->parsed()) {
                return;
            }
            context.exit_code = exit_status(context, run_runs(*opt, context));
        });
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "reparse", "Parse each stored raw MIME again with this hookctl: --compare reports "
                       "divergence from the stored events field by field, --write stores the "
                       "new parses beside them");
        add_archive_option(*cmd, *opt);
        add_archive_key_option(*cmd, opt->archive_key);
        add_filter_options(*cmd, opt->filter, true);
        cmd->add_flag("--compare", opt->compare,
                      "Report divergence per field (subject, from, to, cc, date, text, html, "
                      "attachments) and the events that differ; exit 1 above --max-divergence");
        cmd->add_option("--max-divergence", opt->max_divergence,
                        "Share of compared events allowed to differ, such as 0.01 or 1% "
                        "(default 0: any divergence exits 1)")
            ->type_name("P");
        cmd->add_flag("--write", opt->write,
                      "Store each new parse that differs as the event's next version (the "
                      "stored event is never replaced)");
        bind(cmd, opt, context, run_reparse);
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "rekey", "Encrypt an archive's bodies under --archive-key, or move them from the "
                     "--old-key keys to it, in batches; run again to resume");
        add_archive_option(*cmd, *opt);
        add_archive_key_option(*cmd, opt->archive_key);
        cmd->add_option("--old-key", opt->old_keys,
                        "A key FILE the bodies are under now (repeat for several)")
            ->type_name("FILE")
            ->allow_extra_args(false);
        cmd->add_option("--batch", opt->batch, "Rows re-encrypted per transaction (default 256)")
            ->type_name("N")
            ->check(CLI::PositiveNumber);
        bind(cmd, opt, context, run_rekey);
    }
    {
        auto opt = std::make_shared<EventsOptions>();
        auto* cmd = events->add_subcommand(
            "migrate", "Bring an archive to this hookctl's schema version (every writer does "
                       "this on open; needed once before read-only use of an old archive)");
        add_archive_option(*cmd, *opt);
        bind(cmd, opt, context, run_migrate);
    }
}

} // namespace hookctl::cli
