#include <algorithm>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/util/file.hpp>

#include "../temp_dir.hpp"

namespace fs = std::filesystem;
using namespace hookctl;
using testing::TempDir;

namespace {

// The names in `dir`, to see that nothing (a temporary file) was left behind.
std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(dir)) {
        out.push_back(entry.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

TEST_CASE("util::read_file reads a whole file, an empty one too, in chunks past the buffer") {
    TempDir dir;
    dir.write("empty", "");
    auto empty = util::read_file(dir.file("empty"));
    REQUIRE(empty);
    CHECK(empty->empty());

    std::string big(200'000, '\0'); // larger than read_all's 64 KiB buffer, with NUL bytes
    for (std::size_t i = 0; i < big.size(); ++i) {
        big[i] = static_cast<char>(i * 7);
    }
    dir.write("big", big);
    auto read = util::read_file(dir.file("big"));
    REQUIRE(read);
    CHECK(*read == big);
}

TEST_CASE("util::FileSource refuses a missing file and a directory, naming it and the fix") {
    TempDir dir;
    auto missing = util::read_file(dir.file("nope.json"));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == ExitCode::usage);
    CHECK(missing.error().message ==
          "cannot open " + dir.file("nope.json") + ": No such file or directory (check the path)");

    auto folder = util::FileSource::open(dir.path.string());
    REQUIRE_FALSE(folder);
    CHECK(folder.error().code == ExitCode::usage);
    CHECK(folder.error().message ==
          "cannot read " + dir.path.string() + ": it is a directory, give a file");
}

TEST_CASE("util::FileSource reads in pieces as small as asked and names the file") {
    TempDir dir;
    dir.write("body", "hello, world");
    auto source = util::FileSource::open(dir.file("body"));
    REQUIRE(source);
    CHECK(source->name() == dir.file("body"));
    CHECK_FALSE(source->contiguous());
    std::string got;
    char piece[5];
    for (;;) {
        auto n = source->read(piece);
        REQUIRE(n);
        if (*n == 0) {
            break;
        }
        CHECK(*n <= sizeof piece);
        got.append(piece, *n);
    }
    CHECK(got == "hello, world");
}

TEST_CASE("util::FileSource of - is stdin, left open when the source goes") {
    {
        auto source = util::FileSource::open("-");
        REQUIRE(source);
        CHECK(source->name() == "stdin");
        CHECK(source->fd() == STDIN_FILENO);
    }
    CHECK(::fcntl(STDIN_FILENO, F_GETFD) != -1);
}

TEST_CASE("util::MemorySource hands out its bytes once, in memory and by read") {
    util::MemorySource source("abcdef");
    CHECK(source.contiguous() == "abcdef");
    char piece[4];
    auto n = source.read(piece);
    REQUIRE(n);
    CHECK(std::string(piece, *n) == "abcd");
    CHECK(source.contiguous() == "ef"); // what is left
    auto rest = util::read_all(source);
    REQUIRE(rest);
    CHECK(*rest == "ef");
    CHECK(*source.read(piece) == 0);
}

TEST_CASE("util::UniqueFd closes what it owns, once, and not what it released") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    {
        util::UniqueFd a(fds[0]);
        util::UniqueFd b(fds[1]);
        a = std::move(b); // closes the read end, takes the write end
        CHECK(::fcntl(fds[0], F_GETFD) == -1);
        CHECK(a.get() == fds[1]);
        CHECK_FALSE(b);
        CHECK(a.release() == fds[1]);
        CHECK_FALSE(a);
    }
    CHECK(::fcntl(fds[1], F_GETFD) != -1); // released: still open
    ::close(fds[1]);
}

TEST_CASE("util::write_file_atomic replaces a file whole, with the mode asked, nothing left over") {
    TempDir dir;
    auto path = dir.file("keyring.json");
    dir.write("keyring.json", "old contents");
    // A reader that opened the old file keeps seeing it whole: the new one is renamed over it,
    // never written in place.
    auto reader = util::FileSource::open(path);
    REQUIRE(reader);
    auto old_umask = ::umask(022);
    auto written = util::write_file_atomic(path, "new", 0666);
    ::umask(old_umask);
    REQUIRE(written);
    CHECK(*util::read_file(path) == "new");
    CHECK(*util::read_all(*reader) == "old contents");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0666); // the mode asked for, not what the umask left
    CHECK(names_in(dir.path) == std::vector<std::string>{"keyring.json"});

    REQUIRE(util::write_file_atomic(path, "", 0600)); // an empty file is a file too
    CHECK(util::read_file(path)->empty());
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("util::write_file_atomic fails naming the folder or file, and leaves no temporary") {
    TempDir dir;
    auto in_missing = (dir.path / "no-such-folder" / "out.json").string();
    auto no_folder = util::write_file_atomic(in_missing, "x", 0600);
    REQUIRE_FALSE(no_folder);
    CHECK(no_folder.error().code == ExitCode::environment);
    CHECK(no_folder.error().message.starts_with("cannot create " + in_missing + ".tmp."));
    CHECK(no_folder.error().message.ends_with("(check the folder)"));

    // The target is a folder with something in it: the rename fails after the write.
    fs::create_directories(dir.path / "taken");
    std::ofstream(dir.path / "taken" / "inside") << "keep";
    auto taken = util::write_file_atomic(dir.file("taken"), "x", 0600);
    REQUIRE_FALSE(taken);
    CHECK(taken.error().code == ExitCode::environment);
    CHECK(taken.error().message.starts_with("cannot replace " + dir.file("taken") + ": "));
    CHECK(names_in(dir.path) == std::vector<std::string>{"taken"});
    CHECK(*util::read_file((dir.path / "taken" / "inside").string()) == "keep");
}
