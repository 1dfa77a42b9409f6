// hookctl events tail [-f]: events as they are stored and delivery attempts as they are made.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>
#include <unistd.h>

#include <hookctl/archive/follow.hpp>
#include <hookctl/util/clock.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/wait.hpp>

#include "common.hpp"

namespace hookctl::cli {
namespace {

struct TailOptions {
    std::string archive = "./hookctl.db";
    bool follow = false;
    int lines = 10;
    std::vector<std::string> statuses;
    std::vector<std::string> orgs;
    std::string since;
    std::string grep;
};

// Every status a line can show: the events' and the attempts' outcomes.
constexpr const char* k_statuses[] = {"received", "delivered", "failed", "dead", "retry"};

Result<archive::TailFilter> make_tail_filter(const TailOptions& opt) {
    archive::TailFilter filter;
    for (const auto& list : opt.statuses) {
        std::stringstream parts(list);
        std::string item;
        while (std::getline(parts, item, ',')) {
            std::string status(util::trim(item));
            if (std::find(std::begin(k_statuses), std::end(k_statuses), status) ==
                std::end(k_statuses)) {
                return fail(ExitCode::usage, "--status " + status +
                                                 ": use received, delivered, failed, dead "
                                                 "(events) or retry (attempts)");
            }
            filter.statuses.push_back(status);
        }
    }
    filter.org_ids = opt.orgs;
    if (!opt.since.empty()) {
        auto since = util::parse_when_ms(opt.since, util::SystemClock().unix_ms());
        if (!since) {
            return fail(ExitCode::usage, "--since: " + since.error().message);
        }
        filter.since_ms = *since;
    }
    filter.grep = opt.grep;
    return filter;
}

Result<ExitCode> run_tail(const TailOptions& opt, Context& context) {
    auto filter = make_tail_filter(opt);
    HOOKCTL_RETURN_IF_ERROR(filter);
    auto follower = archive::Follower::open(opt.archive, std::move(*filter));
    HOOKCTL_RETURN_IF_ERROR(follower);
    auto print = [&](const std::vector<archive::TailRecord>& records) {
        for (const auto& r : records) {
            if (context.global.json) {
                std::cout << archive::to_json(r).dump(-1, ' ', false,
                                                      nlohmann::json::error_handler_t::replace)
                          << '\n';
            } else {
                std::cout << archive::format_line(r) << '\n';
            }
        }
        std::cout.flush();
        return static_cast<bool>(std::cout);
    };
    auto backlog = follower->backlog(static_cast<std::size_t>(opt.lines));
    HOOKCTL_RETURN_IF_ERROR(backlog);
    print(*backlog);
    if (!opt.follow) {
        return ExitCode::ok;
    }
    util::SystemClock clock;
    util::SignalWaiter waiter(STDOUT_FILENO); // also ends when the reader of stdout exits
    archive::PollSchedule schedule;
    auto end = archive::follow(*follower, schedule, clock, waiter, print);
    HOOKCTL_RETURN_IF_ERROR(end);
    if (*end == archive::FollowEnd::archive_gone && !context.global.quiet) {
        std::cerr << "hookctl: archive " << opt.archive
                  << " was removed or replaced: stopped following\n";
    }
    return ExitCode::ok;
}

} // namespace

void register_events_tail(CLI::App& events, Context& context) {
    auto opt = std::make_shared<TailOptions>();
    auto* cmd = events.add_subcommand(
        "tail", "Print the last events and delivery attempts; with -f, follow new ones as they "
                "are stored (while listen or replay writes the archive)");
    cmd->add_option("--archive", opt->archive, "Archive file (default ./hookctl.db)")
        ->type_name("FILE");
    cmd->add_flag("-f,--follow", opt->follow,
                  "Keep printing new events and attempts until SIGINT or the archive goes away");
    cmd->add_option("-n,--lines", opt->lines, "Print the last N first (default 10; 0: none)")
        ->type_name("N")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--status", opt->statuses,
                    "Only lines with this status: received, delivered, failed, dead, retry "
                    "(repeat or comma-separate)")
        ->type_name("STATUS")
        ->allow_extra_args(false);
    cmd->add_option("--org", opt->orgs, "Only events of this org_id (repeat for several)")
        ->type_name("ID")
        ->allow_extra_args(false);
    cmd->add_option("--since", opt->since,
                    "Start at TIME instead of the last N (RFC 3339, YYYY-MM-DD, @unix, or a "
                    "duration ago such as 10m)")
        ->type_name("TIME");
    cmd->add_option("--grep", opt->grep, "Only events whose payload contains TEXT")
        ->type_name("TEXT");
    set_run(*cmd, opt, context, run_tail);
}

} // namespace hookctl::cli
