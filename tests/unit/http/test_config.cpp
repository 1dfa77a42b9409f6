#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <doctest/doctest.h>

#include <hookctl/http/config.hpp>

using namespace hookctl;

namespace {

std::string write_temp(const std::string& name, const std::string& text) {
    auto dir = std::filesystem::temp_directory_path() /
               ("hookctl-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto path = (dir / name).string();
    std::ofstream(path) << text;
    return path;
}

} // namespace

TEST_CASE("http::load_config reads targets with every key") {
    auto path = write_temp("ok.toml", R"(
[other]
ignored = 1

[targets.staging]
url = "https://staging.example.com/hooks"
scheme = "standard"
secret_env = ["NEW_SECRET", "OLD_SECRET"]
rate = "50/s"
concurrency = 4

[targets.prod]
url = "http://127.0.0.1:9/hooks"
secret_file = "prod.secret"
keyring = "/etc/hookctl/prod.keyring"
production = true
)");
    auto config = http::load_config(path);
    REQUIRE(config);
    REQUIRE(config->targets.size() == 2);
    auto staging = config->find_target("staging");
    REQUIRE(staging);
    CHECK((*staging)->url == "https://staging.example.com/hooks");
    CHECK((*staging)->scheme == sig::Scheme::standard);
    REQUIRE((*staging)->secrets.size() == 2);
    CHECK((*staging)->secrets[1].where == "OLD_SECRET");
    REQUIRE((*staging)->rate);
    CHECK(*(*staging)->rate->per_second == doctest::Approx(50));
    CHECK((*staging)->concurrency == 4);
    CHECK_FALSE((*staging)->production);
    auto prod = config->find_target("prod");
    REQUIRE(prod);
    CHECK((*prod)->production);
    REQUIRE((*prod)->secrets.size() == 2);
    for (const auto& source : (*prod)->secrets) {
        if (source.kind == keys::SecretSource::Kind::file) {
            // A relative secret_file resolves beside the config file.
            CHECK(source.where ==
                  (std::filesystem::path(path).parent_path() / "prod.secret").string());
        } else {
            CHECK(source.kind == keys::SecretSource::Kind::keyring);
            CHECK(source.where == "/etc/hookctl/prod.keyring");
        }
    }

    auto unknown = config->find_target("nope");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().code == ExitCode::usage);
    CHECK(unknown.error().message.find("prod, staging") != std::string::npos);
}

TEST_CASE("http::load_config rejects malformed files and targets with the place") {
    auto bad_toml = http::load_config(write_temp("bad.toml", "[targets.x\nurl = 1\n"));
    REQUIRE_FALSE(bad_toml);
    CHECK(bad_toml.error().message.find("line 1") != std::string::npos);

    struct Case {
        const char* toml;
        const char* needle;
    };
    for (const auto& c : {
             Case{"[targets.a]\nscheme = \"mailparse\"\n", "has no url"},
             Case{"[targets.a]\nurl = \"ftp://x\"\n", "http:// or https://"},
             Case{"[targets.a]\nurl = \"http://x\"\nscheme = \"rot13\"\n", "scheme"},
             Case{"[targets.a]\nurl = \"http://x\"\nrate = \"fast\"\n", "rate"},
             Case{"[targets.a]\nurl = \"http://x\"\nconcurrency = 0\n", "concurrency"},
             Case{"[targets.a]\nurl = \"http://x\"\nproduction = \"yes\"\n", "true or false"},
             Case{"[targets.a]\nurl = \"http://x\"\nsecret = \"hunter2\"\n", "not stored"},
             Case{"[targets.a]\nurl = \"http://x\"\nsecrt_env = \"X\"\n", "unknown key"},
         }) {
        CAPTURE(c.toml);
        auto config = http::load_config(write_temp("case.toml", c.toml));
        REQUIRE_FALSE(config);
        CHECK(config.error().code == ExitCode::usage);
        CHECK(config.error().message.find(c.needle) != std::string::npos);
        CHECK(config.error().message.find("hunter2") == std::string::npos);
    }
    auto missing = http::load_config("/nonexistent/hookctl/config.toml");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message ==
          "cannot read config file /nonexistent/hookctl/config.toml: no such file");
    auto advised = http::load_config("/nonexistent/hookctl/config.toml", "pass another");
    REQUIRE_FALSE(advised);
    CHECK(advised.error().message.ends_with(": no such file; pass another"));
}

TEST_CASE("http::check_production_guard needs `yes` or the typed name") {
    http::Target target;
    target.name = "prod";
    target.url = "https://example.com";
    target.production = true;
    auto refused = http::check_production_guard(target, false, {});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ExitCode::usage);
    CHECK(refused.error().message == "target 'prod' is marked production = true: it needs "
                                     "confirming (no terminal to ask on, so nothing was sent)");
    // How to confirm, in the caller's words.
    auto advised = http::check_production_guard(target, false, {}, "pass --yes to confirm");
    REQUIRE_FALSE(advised);
    CHECK(advised.error().message == "target 'prod' is marked production = true: pass --yes to "
                                     "confirm (no terminal to ask on, so nothing was sent)");
    CHECK(http::check_production_guard(target, true, {}));
    CHECK(http::check_production_guard(
        target, false, [](const std::string&) { return std::optional<std::string>("prod"); }));
    CHECK_FALSE(http::check_production_guard(
        target, false, [](const std::string&) { return std::optional<std::string>("staging"); }));
    CHECK_FALSE(http::check_production_guard(
        target, false, [](const std::string&) { return std::optional<std::string>(); }));
    target.production = false;
    CHECK(http::check_production_guard(target, false, {}));
}
