#include <fstream>
#include <string>
#include <sys/stat.h>

#include <doctest/doctest.h>

#include <hookctl/keys/archive_key.hpp>

#include "../temp_dir.hpp"

using namespace hookctl;
using namespace hookctl::keys;

namespace {

std::string write_file(const testing::TempDir& dir, const char* name, const std::string& text,
                       mode_t mode) {
    auto path = dir.file(name);
    std::ofstream(path, std::ios::binary) << text;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    return path;
}

} // namespace

TEST_CASE("keys::decode_archive_key reads hkak_, hex and raw forms of one key alike") {
    auto text = generate_archive_key_text();
    REQUIRE(is_archive_key_text(text.view()));
    auto from_text = decode_archive_key(std::string(text.view()) + "\n", "test");
    REQUIRE(from_text);
    CHECK(from_text->bytes.size() == k_archive_key_bytes);
    CHECK(from_text->id.size() == 8);
    auto raw = decode_archive_key(from_text->bytes.view(), "test");
    REQUIRE(raw);
    CHECK(raw->id == from_text->id);
    auto hex = decode_archive_key(std::string(64, 'A'), "test");
    REQUIRE(hex);
    auto other = decode_archive_key(std::string(64, 'b'), "test");
    REQUIRE(other);
    CHECK(hex->id != other->id);
}

TEST_CASE("keys::decode_archive_key refuses malformed keys without echoing them") {
    auto short_key = decode_archive_key("hkak_c2VjcmV0LXNob3J0", "file k");
    REQUIRE_FALSE(short_key);
    CHECK(short_key.error().code == ExitCode::usage);
    CHECK(short_key.error().message.find("c2VjcmV0") == std::string::npos);
    CHECK(short_key.error().message.find("file k") != std::string::npos);
    CHECK_FALSE(decode_archive_key("whsec_abc", "file k"));
    CHECK_FALSE(decode_archive_key("", "file k"));
}

TEST_CASE("keys::load_archive_keys follows the 0600 rule of secret files") {
    testing::TempDir dir;
    auto text = std::string(generate_archive_key_text().view()) + "\n";
    auto open = write_file(dir, "open.key", text, 0644);
    auto refused = load_archive_keys(open);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ExitCode::usage);
    CHECK(refused.error().message.find("chmod 600") != std::string::npos);
    auto safe = write_file(dir, "safe.key", text, 0600);
    auto loaded = load_archive_keys(safe);
    REQUIRE(loaded);
    CHECK(loaded->size() == 1);
    auto missing = load_archive_keys(dir.file("absent.key"));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("secret new --kind archive") != std::string::npos);
}
