#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include <hookctl/mime/gmime_ptr.hpp>
#include <hookctl/mime/parse.hpp>
#include <hookctl/util/file.hpp>

namespace hookctl::mime {

namespace {

namespace fs = std::filesystem;

// True when `bytes` starts like an mbox file: a "From " envelope line.
bool looks_like_mbox(std::string_view bytes) {
    return bytes.starts_with("From ");
}

// Splits an mbox held in memory with GMime's mbox parser (it finds the "From " lines and
// honours no Content-Length, like mutt and MimeKit's default); each message runs from its
// headers to the byte before the next "From " line.
Result<void> split_mbox(std::string_view bytes, const std::string& label,
                        const MessageVisitor& each) {
    ensure_gmime();
    Owned<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
    Owned<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MBOX);
    g_mime_parser_set_persist_stream(parser.get(), TRUE);
    OwnedParserOptions options(g_mime_parser_options_new());
    std::vector<std::pair<gint64, gint64>> ranges;
    while (!g_mime_parser_eos(parser.get())) {
        Owned<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), options.get()));
        if (!message) {
            break;
        }
        gint64 begin = g_mime_parser_get_headers_begin(parser.get());
        gint64 end = g_mime_parser_tell(parser.get());
        ranges.emplace_back(begin, end);
    }
    std::size_t index = 0;
    for (auto [begin, end] : ranges) {
        ++index;
        auto b = static_cast<std::size_t>(std::max<gint64>(begin, 0));
        auto e = static_cast<std::size_t>(std::clamp<gint64>(end, begin, bytes.size()));
        if (auto r = each(bytes.substr(b, e - b), label + "#" + std::to_string(index)); !r) {
            return r;
        }
    }
    return {};
}

Result<void> visit_file(const std::string& path, const MessageVisitor& each) {
    auto bytes = util::read_file(path);
    if (!bytes) {
        return std::unexpected(bytes.error());
    }
    if (looks_like_mbox(*bytes)) {
        return split_mbox(*bytes, path, each);
    }
    return each(*bytes, path);
}

// Regular files under `dir`, sorted by path, hidden files and folders skipped.
Result<std::vector<std::string>> files_under(const fs::path& dir) {
    std::vector<std::string> files;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    if (ec) {
        return fail(ExitCode::usage, "cannot read folder " + dir.string() + ": " + ec.message());
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) {
            return fail(ExitCode::usage,
                        "cannot read folder " + dir.string() + ": " + ec.message());
        }
        std::string name = it->path().filename().string();
        if (name.starts_with(".")) {
            if (it->is_directory(ec)) {
                it.disable_recursion_pending();
            }
            continue;
        }
        if (it->is_regular_file(ec)) {
            files.push_back(it->path().string());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

} // namespace

Result<void> for_each_message(const std::string& path, const MessageVisitor& each) {
    if (path == "-") {
        auto bytes = util::read_file(path);
        if (!bytes) {
            return std::unexpected(bytes.error());
        }
        if (looks_like_mbox(*bytes)) {
            return split_mbox(*bytes, "stdin", each);
        }
        return each(*bytes, "stdin");
    }
    std::error_code ec;
    fs::file_status status = fs::status(path, ec);
    if (ec) {
        return fail(ExitCode::usage, "cannot read " + path + ": " + ec.message() +
                                         " (give an .eml file, a folder, a Maildir or an mbox)");
    }
    if (!fs::is_directory(status)) {
        return visit_file(path, each);
    }
    fs::path dir(path);
    bool maildir = fs::is_directory(dir / "cur", ec) || fs::is_directory(dir / "new", ec);
    std::vector<std::string> files;
    if (maildir) {
        // Maildir: new/ then cur/ (tmp/ holds deliveries in progress and is skipped).
        for (const char* sub : {"new", "cur"}) {
            if (!fs::is_directory(dir / sub, ec)) {
                continue;
            }
            auto found = files_under(dir / sub);
            if (!found) {
                return std::unexpected(found.error());
            }
            files.insert(files.end(), found->begin(), found->end());
        }
    } else {
        auto found = files_under(dir);
        if (!found) {
            return std::unexpected(found.error());
        }
        files = std::move(*found);
    }
    for (const std::string& file : files) {
        if (auto r = visit_file(file, each); !r) {
            return r;
        }
    }
    return {};
}

} // namespace hookctl::mime
