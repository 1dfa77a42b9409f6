#pragma once

// --archive-key FILE (hookctl-events(1), ENCRYPTION): the flag every command that reads or
// writes archive bodies shares.

#include <memory>
#include <string>
#include <vector>

#include <hookctl/archive/body_cipher.hpp>
#include <hookctl/util/error.hpp>

#include "app.hpp"

namespace hookctl::cli {

// Adds --archive-key FILE to `cmd`, bound to `path`.
void add_archive_key_option(CLI::App& cmd, std::string& path);

// The archive keys of --archive-key `path` (its keys encrypt and decrypt), then of each
// `old_paths` (decrypt only): null when `path` and `old_paths` are empty. Fails (exit 2) as
// keys::load_archive_keys does, naming the flag.
Result<std::shared_ptr<const archive::BodyCipher>>
load_archive_cipher(const std::string& path, const std::vector<std::string>& old_paths = {});

} // namespace hookctl::cli
