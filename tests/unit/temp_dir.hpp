#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>

#include <doctest/doctest.h>

namespace hookctl::testing {

// A fresh directory under the system's temp folder, removed with everything in it at the end of
// the test.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const char* prefix = "hookctl-test") {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const char* name) const { return (path / name).string(); }
    // Writes `bytes` to the file `name` in it (replacing what was there); returns its path.
    std::string write(const char* name, std::string_view bytes) const {
        auto where = file(name);
        std::ofstream out(where, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        REQUIRE(out.good());
        return where;
    }
};

} // namespace hookctl::testing
