#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/receive/keyset.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::receive {

// The one way `listen` reloads what it read from files at start: on SIGUSR1, on SIGHUP when
// that means reload (see HangupAction), and when a watched file changes. Each part registers a
// step (the secrets; a TLS certificate and key, ...) and reload() runs every step, in the order
// added, and reports each through the notice: "CAUSE: WHAT reloaded (DETAIL)", or a warning
// "CAUSE: WHAT not reloaded, keeping the current ones: WHY". A step that fails leaves its part
// as it was. Thread-safe: reloads never overlap.
class Reloader {
public:
    using Notice = std::function<void(std::string_view message, bool warning)>;
    // Loads one part again and puts it in use; returns a short detail ("2 secrets") or why not.
    using Step = std::function<Result<std::string>()>;

    explicit Reloader(Notice notice = {});

    // `what` names the part in the notices ("secrets").
    void add(std::string what, Step step);
    // Removes the steps added as `what` (a part that goes away before the Reloader does).
    void remove(std::string_view what);
    void reload(std::string_view cause);

private:
    struct Part {
        std::string what;
        Step step;
    };
    Notice m_notice;
    std::mutex m_mutex;
    std::vector<Part> m_parts;
};

// The step that reloads `keys` (its loader reads the same flags, files and keyrings again),
// with `now` giving the Unix second the keyring windows are judged at.
Reloader::Step reload_secrets(KeyStore& keys, std::function<std::int64_t()> now);

// What SIGHUP does to `listen`.
enum class HangupAction {
    ignore, // SIGHUP was ignored when listen started (nohup): it stays ignored
    stop,   // listen runs on a terminal: a hangup stops it as SIGTERM does
    reload, // no terminal (a service, a container): SIGHUP reloads, as daemons do
};

// Decided once, at start: ignored when SIGHUP was ignored at start (`ignored_at_start`, as
// nohup leaves it), stop when listen has a controlling terminal (`has_terminal`: closing the
// terminal must not leave an orphan holding the port and the archive), reload otherwise.
HangupAction hangup_action(bool ignored_at_start, bool has_terminal);

// hangup_action() for this process: reads SIGHUP's disposition and whether /dev/tty opens.
HangupAction hangup_action_of_this_process();

std::string_view to_string(HangupAction action);

} // namespace hookctl::receive
