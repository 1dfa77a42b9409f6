#pragma once

// The SQLite backend of archive::Store: one archive file in WAL mode. Callers open it through
// archive::open, which picks the backend from the archive argument.

#include <memory>
#include <string>

#include <hookctl/archive/archive.hpp>

namespace hookctl::archive::sqlite {

// Opens the SQLite archive file `path` (see archive::open for what is checked and how it
// fails).
Result<std::unique_ptr<Store>> open(const std::string& path, const OpenOptions& options);

} // namespace hookctl::archive::sqlite
