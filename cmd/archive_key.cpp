#include "archive_key.hpp"

#include <hookctl/keys/archive_key.hpp>

namespace hookctl::cli {

void add_archive_key_option(CLI::App& cmd, std::string& path) {
    cmd.add_option("--archive-key", path,
                   "Archive key FILE (mode 0600): a key from `hookctl secret new --kind archive`, "
                   "or a keyring holding archive keys; bodies are stored encrypted and read with "
                   "it")
        ->type_name("FILE");
}

Result<std::shared_ptr<const archive::BodyCipher>>
load_archive_cipher(const std::string& path, const std::vector<std::string>& old_paths) {
    if (path.empty() && old_paths.empty()) {
        return std::shared_ptr<const archive::BodyCipher>();
    }
    std::vector<keys::ArchiveKey> all;
    auto add = [&](const std::string& flag, const std::string& file) -> Result<void> {
        auto loaded = keys::load_archive_keys(file);
        if (!loaded) {
            return fail(loaded.error().code, flag + ": " + loaded.error().message);
        }
        for (auto& key : *loaded) {
            all.push_back(std::move(key));
        }
        return {};
    };
    if (path.empty()) {
        return fail(ExitCode::usage, "--old-key needs --archive-key: the key to move to");
    }
    if (auto ok = add("--archive-key", path); !ok) {
        return std::unexpected(ok.error());
    }
    for (const auto& old : old_paths) {
        if (auto ok = add("--old-key", old); !ok) {
            return std::unexpected(ok.error());
        }
    }
    return archive::BodyCipher::make(std::move(all));
}

} // namespace hookctl::cli
