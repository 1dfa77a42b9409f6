#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/receive/reload.hpp>

using namespace hookctl;
using namespace hookctl::receive;

TEST_CASE("receive::Reloader runs every step in order and reports each, keeping a failed part") {
    std::vector<std::pair<std::string, bool>> notices;
    Reloader reloader([&](std::string_view m, bool warning) { notices.emplace_back(m, warning); });
    std::vector<std::string> ran;
    reloader.add("secrets", [&]() -> Result<std::string> {
        ran.push_back("secrets");
        return std::string("2 secrets");
    });
    reloader.add("certificate", [&]() -> Result<std::string> {
        ran.push_back("certificate");
        return fail(ExitCode::usage, "cert.pem: no PEM certificate");
    });
    reloader.reload("SIGUSR1");
    CHECK(ran == std::vector<std::string>{"secrets", "certificate"});
    REQUIRE(notices.size() == 2);
    CHECK(notices[0] ==
          std::pair<std::string, bool>{"SIGUSR1: secrets reloaded (2 secrets)", false});
    CHECK(notices[1] ==
          std::pair<std::string, bool>{"SIGUSR1: certificate not reloaded, keeping the current "
                                       "ones: cert.pem: no PEM certificate",
                                       true});
}

TEST_CASE("receive::reload_secrets swaps the key set, or keeps it when loading fails") {
    std::vector<keys::SecretText> first{{keys::SecretBytes("first-secret"), "test"}};
    auto initial = make_key_set(first, sig::Scheme::mailparse);
    REQUIRE(initial.has_value());
    bool broken = false;
    KeyLoader loader = [&](std::int64_t) -> Result<KeySet> {
        if (broken) {
            return fail(ExitCode::usage, "secret file s: Permission denied");
        }
        std::vector<keys::SecretText> two{{keys::SecretBytes("a-secret"), "test"},
                                          {keys::SecretBytes("b-secret"), "test"}};
        return make_key_set(two, sig::Scheme::mailparse);
    };
    KeyStore keys(loader, std::move(*initial));
    std::vector<std::string> notices;
    Reloader reloader([&](std::string_view m, bool) { notices.emplace_back(m); });
    reloader.add("secrets", reload_secrets(keys, [] { return std::int64_t{1000}; }));
    reloader.reload("secret files changed");
    CHECK(keys.current(1000)->secrets == 2);
    broken = true;
    reloader.reload("SIGHUP");
    CHECK(keys.current(1000)->secrets == 2);
    REQUIRE(notices.size() == 2);
    CHECK(notices[0] == "secret files changed: secrets reloaded (2 secrets)");
    CHECK(notices[1] == "SIGHUP: secrets not reloaded, keeping the current ones: secret file s: "
                        "Permission denied");
}

TEST_CASE("receive::hangup_action: nohup's ignore stays, a terminal's hangup stops, else reload") {
    CHECK(hangup_action(true, true) == HangupAction::ignore);
    CHECK(hangup_action(true, false) == HangupAction::ignore);
    CHECK(hangup_action(false, true) == HangupAction::stop);
    CHECK(hangup_action(false, false) == HangupAction::reload);
}
