// hookctl parse: raw MIME (.eml, folder, Maildir, mbox) to the email event JSON (DESIGN.md §6).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <hookctl/mime/parse.hpp>
#include <hookctl/mime/pool.hpp>
#include <hookctl/util/units.hpp>

#include "common.hpp"

namespace hookctl::cli {
namespace {

struct ParseCliOptions {
    std::string path = "-";
    std::string org;
    std::string received_at;
    std::string attachments_dir;
    std::string inline_attachments;
    bool pretty = false;
    int jobs = 0; // 0: one per CPU
};

std::string render(const nlohmann::json& doc, bool pretty) {
    return doc.dump(pretty ? 2 : -1, ' ', false, nlohmann::json::error_handler_t::replace) + '\n';
}

void print_event(const nlohmann::json& doc, bool pretty) {
    std::cout << render(doc, pretty);
}

// One message of a folder, Maildir or mbox, parsed and rendered: an event line, or an error
// line for a message that cannot be parsed (the run goes on), or a fatal error (stops it).
struct Outcome {
    std::string text;
    bool failed = false;
    std::optional<Error> fatal;
};

Outcome parse_one(std::string_view raw, const std::string& label, const mime::ParseOptions& options,
                  bool pretty) {
    Outcome out;
    auto event = mime::parse_message(raw, options);
    if (event) {
        (*event)["source"] = label;
        out.text = render(*event, pretty);
    } else if (event.error().code == ExitCode::environment) {
        out.fatal = event.error(); // the attachment store is broken: stop
    } else {
        nlohmann::json line = {
            {"source", label},
            {"error",
             {{"code", static_cast<int>(event.error().code)}, {"message", event.error().message}}}};
        out.text = render(line, pretty);
        out.failed = true;
    }
    return out;
}

// A single file that is not an mbox: parsed streaming, printed as one document.
bool is_single_message_file(const std::string& path) {
    if (path == "-") {
        return false;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return false;
    }
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return true; // parse_file reports the error
    }
    char head[5] = {};
    std::size_t n = std::fread(head, 1, sizeof head, file);
    std::fclose(file);
    return !(n == 5 && std::string_view(head, 5) == "From ");
}

Result<ExitCode> run_parse(const ParseCliOptions& opt, Context& context) {
    mime::ParseOptions options;
    options.org_id = opt.org;
    if (!opt.received_at.empty()) {
        options.received_at = opt.received_at;
    }
    if (!opt.attachments_dir.empty()) {
        options.attachments_dir = opt.attachments_dir;
    }
    if (!opt.inline_attachments.empty()) {
        auto size = util::parse_size(opt.inline_attachments);
        if (!size) {
            return fail(ExitCode::usage, "--inline-attachments: " + size.error().message);
        }
        options.inline_attachments_max = *size;
    }
    if (opt.path == "-" && is_tty(STDIN_FILENO)) {
        return fail(ExitCode::usage,
                    "no message: give a FILE, folder, Maildir or mbox, or pipe a message on stdin");
    }

    if (auto checked = mime::check_options(options); !checked) {
        return std::unexpected(checked.error());
    }
    if (is_single_message_file(opt.path)) {
        auto event = mime::parse_file(opt.path, options);
        HOOKCTL_RETURN_IF_ERROR(event);
        print_event(*event, opt.pretty);
        return ExitCode::ok;
    }

    bool progress = is_tty(STDERR_FILENO) && !context.global.quiet;
    std::size_t parsed = 0;
    std::size_t failed = 0;
    std::optional<Error> fatal;
    auto print = [&](Outcome&& out) {
        if (fatal) {
            return; // stopped: nothing after the failure is printed
        }
        if (out.fatal) {
            fatal = std::move(out.fatal);
            return;
        }
        std::cout << out.text;
        ++(out.failed ? failed : parsed);
        if (progress) {
            std::cout.flush();
            std::fprintf(stderr, "\rparsed %zu messages, %zu failed", parsed, failed);
        }
    };
    int jobs = opt.jobs > 0 ? opt.jobs : static_cast<int>(std::thread::hardware_concurrency());
    // In input order, at most 32 messages per thread (and about 64 MiB) read ahead of the one
    // printed next.
    std::optional<mime::OrderedPool<Outcome>> pool;
    if (jobs > 1) {
        pool.emplace(
            jobs,
            [&options, pretty = opt.pretty](const std::string& raw, const std::string& label) {
                return parse_one(raw, label, options, pretty);
            },
            static_cast<std::size_t>(jobs) * 32);
    }
    auto status = mime::for_each_message(
        opt.path, [&](std::string_view raw, const std::string& label) -> Result<void> {
            if (label == "stdin") {
                // One message on stdin: printed like a single file, errors are the run's.
                auto event = mime::parse_message(raw, options);
                HOOKCTL_RETURN_IF_ERROR(event);
                print_event(*event, opt.pretty);
                ++parsed;
                return {};
            }
            if (pool) {
                pool->submit(std::string(raw), label, print);
            } else {
                print(parse_one(raw, label, options, opt.pretty));
            }
            if (fatal) {
                return std::unexpected(*fatal);
            }
            return {};
        });
    if (pool) {
        pool->finish(print);
        pool.reset();
    }
    if (status && fatal) {
        status = std::unexpected(*fatal);
    }
    if (progress) {
        std::fprintf(stderr, "\n");
    }
    HOOKCTL_RETURN_IF_ERROR(status);
    if (failed > 0) {
        if (!context.global.quiet) {
            std::cerr << "hookctl: " << failed << " of " << parsed + failed
                      << " messages could not be parsed (see the error lines)\n";
        }
        return ExitCode::check_failed;
    }
    return ExitCode::ok;
}

} // namespace

void register_parse(CLI::App& app, Context& context) {
    auto opt = std::make_shared<ParseCliOptions>();
    auto* cmd = app.add_subcommand(
        "parse", "Parse raw MIME (.eml file, folder, Maildir or mbox) into email event JSON");
    cmd->add_option("path", opt->path,
                    "Message file ('-' for stdin, the default), folder, Maildir or mbox file; "
                    "several messages print one JSON object per line")
        ->type_name("PATH");
    cmd->add_option("--org", opt->org, "org_id to put in each event")->type_name("ID");
    cmd->add_option("--received-at", opt->received_at,
                    "received_at to put in each event (RFC 3339; default now)")
        ->type_name("TIME");
    cmd->add_option("--attachments-dir", opt->attachments_dir,
                    "Write attachments and the raw message there, content-addressed "
                    "(sha256/ab/cdef...), and put their storage_key in the JSON")
        ->type_name("DIR");
    cmd->add_option("--inline-attachments", opt->inline_attachments,
                    "Embed attachments of at most MAX bytes as base64 (content_base64)")
        ->type_name("MAX");
    cmd->add_flag("--pretty", opt->pretty, "Indent the JSON");
    cmd->add_option("--jobs", opt->jobs,
                    "Parse a folder, Maildir or mbox on N threads, printed in input order "
                    "(default: one per CPU)")
        ->type_name("N")
        ->check(whole_number(1, 256));
    set_run(*cmd, opt, context, run_parse);
}

} // namespace hookctl::cli
