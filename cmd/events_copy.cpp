// hookctl events copy: every event, run, run item and attempt of one archive into another
// (SQLite or PostgreSQL on either side), in batches, resumably (hookctl-events(1), COPY).
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/copy.hpp>

#include "archive_key.hpp"
#include "common.hpp"

namespace hookctl::cli {
namespace {

struct CopyOptions {
    std::string from;
    std::string to;
    std::string from_key; // --from-key FILE: opens the source's bodies
    std::string to_key;   // --to-key FILE: seals the destination's bodies
    std::size_t batch = 500;
};

std::atomic<int> g_copy_stop{0};

void on_copy_signal(int) {
    g_copy_stop.store(1);
}

// True when `from` and `to` name the same archive (the same file, or the same URI).
bool same_archive(const std::string& from, const std::string& to) {
    if (archive::is_server_uri(from) || archive::is_server_uri(to)) {
        return from == to;
    }
    std::error_code ec;
    return std::filesystem::equivalent(from, to, ec) && !ec;
}

Result<std::unique_ptr<archive::Store>> open_side(const std::string& where, const std::string& key,
                                                  archive::Mode mode, const char* key_flag) {
    auto cipher = load_archive_cipher(key);
    if (!cipher) {
        return fail(cipher.error().code, std::string(key_flag) + ": " + cipher.error().message);
    }
    return archive::open(where, {.mode = mode,
                                 .busy_timeout = std::chrono::milliseconds(5000),
                                 .synchronous_full = true,
                                 .cipher = *cipher});
}

nlohmann::ordered_json count_json(const archive::CopyCount& c) {
    return {{"read", c.read}, {"copied", c.copied}, {"present", c.present}};
}

Result<ExitCode> run_copy(const CopyOptions& opt, Context& context) {
    for (const auto* where : {&opt.from, &opt.to}) {
        if (auto ok = archive::check_location(*where); !ok) {
            return fail(ok.error().code, std::string(where == &opt.from ? "--from: " : "--to: ") +
                                             ok.error().message);
        }
    }
    if (same_archive(opt.from, opt.to)) {
        return fail(ExitCode::usage, "--from and --to name the same archive (" + opt.from +
                                         "): give the archive to copy into as --to");
    }
    auto from = open_side(opt.from, opt.from_key, archive::Mode::read_only, "--from-key");
    HOOKCTL_RETURN_IF_ERROR(from);
    if ((*from)->encryption().encrypted && opt.from_key.empty()) {
        return fail(ExitCode::usage, "--from " + opt.from +
                                         " is encrypted: give its archive key with --from-key "
                                         "FILE (the destination's goes in --to-key FILE)");
    }
    auto to = open_side(opt.to, opt.to_key, archive::Mode::create, "--to-key");
    HOOKCTL_RETURN_IF_ERROR(to);
    struct sigaction action = {};
    action.sa_handler = on_copy_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);

    const bool show = !context.global.quiet && !context.global.json;
    auto last = std::chrono::steady_clock::time_point{};
    archive::CopyOptions options;
    options.batch = opt.batch;
    options.progress = [&](const archive::CopyProgress& p) {
        auto now = std::chrono::steady_clock::now();
        if (show && (p.finished || now - last >= std::chrono::seconds(1))) {
            last = now;
            std::cerr << "copy " << opt.from << " -> " << opt.to << ": events " << p.events.read
                      << "/" << p.events_total << " (" << p.events.copied << " copied), runs "
                      << p.runs.copied << " copied, run items " << p.run_items.copied
                      << " copied, attempts " << p.attempts.copied << " copied"
                      << (p.finished ? ", done" : "") << '\n';
        }
        return g_copy_stop.load() == 0;
    };
    auto done = archive::copy(**from, **to, options);
    HOOKCTL_RETURN_IF_ERROR(done);
    if (context.global.json) {
        print_json(nlohmann::ordered_json{{"from", opt.from},
                                          {"to", opt.to},
                                          {"events", count_json(done->events)},
                                          {"runs", count_json(done->runs)},
                                          {"run_items", count_json(done->run_items)},
                                          {"attempts", count_json(done->attempts)}});
    }
    return ExitCode::ok;
}

} // namespace

void register_events_copy(CLI::App& events, Context& context) {
    auto opt = std::make_shared<CopyOptions>();
    auto* cmd = events.add_subcommand(
        "copy", "Copy every event (bodies and raw MIME), run, run item and attempt of one "
                "archive into another (SQLite or PostgreSQL), in batches; run again to resume: "
                "only what is missing is copied");
    cmd->add_option("--from", opt->from,
                    "Archive to copy from: an SQLite file or a postgres:// URI (no password in "
                    "it: PGPASSWORD, ~/.pgpass)")
        ->required()
        ->type_name("FILE|URI");
    cmd->add_option("--to", opt->to,
                    "Archive to copy into (created when missing): an SQLite file or a "
                    "postgres:// URI")
        ->required()
        ->type_name("FILE|URI");
    cmd->add_option("--from-key", opt->from_key,
                    "Archive key FILE that opens the source's bodies (an encrypted source)")
        ->type_name("FILE");
    cmd->add_option("--to-key", opt->to_key,
                    "Archive key FILE that seals the bodies stored in the destination (its "
                    "archive key; default: stored in clear)")
        ->type_name("FILE");
    cmd->add_option("--batch", opt->batch, "Rows per destination transaction (default 500)")
        ->type_name("N")
        ->check(whole_number(1, 100000));
    set_run(*cmd, opt, context, run_copy);
}

} // namespace hookctl::cli
