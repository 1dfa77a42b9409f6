#include <csignal>
#include <fcntl.h>
#include <unistd.h>

#include <hookctl/receive/reload.hpp>

namespace hookctl::receive {

Reloader::Reloader(Notice notice)
    : m_notice(std::move(notice)) {}

void Reloader::add(std::string what, Step step) {
    std::lock_guard lock(m_mutex);
    m_parts.push_back({std::move(what), std::move(step)});
}

void Reloader::remove(std::string_view what) {
    std::lock_guard lock(m_mutex);
    std::erase_if(m_parts, [what](const Part& part) { return part.what == what; });
}

void Reloader::reload(std::string_view cause) {
    std::lock_guard lock(m_mutex);
    for (const auto& part : m_parts) {
        auto loaded = part.step();
        if (!m_notice) {
            continue;
        }
        std::string head = std::string(cause) + ": " + part.what;
        if (loaded) {
            m_notice(head + " reloaded" + (loaded->empty() ? "" : " (" + *loaded + ")"), false);
        } else {
            m_notice(head + " not reloaded, keeping the current ones: " + loaded.error().message,
                     true);
        }
    }
}

Reloader::Step reload_secrets(KeyStore& keys, std::function<std::int64_t()> now) {
    return [&keys, now = std::move(now)]() -> Result<std::string> {
        auto reloaded = keys.reload(now());
        HOOKCTL_RETURN_IF_ERROR(reloaded);
        auto n = (*reloaded)->secrets;
        return std::to_string(n) + (n == 1 ? " secret" : " secrets");
    };
}

HangupAction hangup_action(bool ignored_at_start, bool has_terminal) {
    if (ignored_at_start) {
        return HangupAction::ignore;
    }
    return has_terminal ? HangupAction::stop : HangupAction::reload;
}

HangupAction hangup_action_of_this_process() {
    struct sigaction current {};
    bool ignored = sigaction(SIGHUP, nullptr, &current) == 0 && current.sa_handler == SIG_IGN;
    // Only a process with a controlling terminal can open /dev/tty; O_NOCTTY so that opening it
    // never makes one.
    int fd = ::open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
    bool terminal = fd >= 0;
    if (fd >= 0) {
        ::close(fd);
    }
    return hangup_action(ignored, terminal);
}

std::string_view to_string(HangupAction action) {
    switch (action) {
    case HangupAction::ignore:
        return "ignore";
    case HangupAction::stop:
        return "stop";
    case HangupAction::reload:
        return "reload";
    }
    return "reload";
}

} // namespace hookctl::receive
