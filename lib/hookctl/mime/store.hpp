#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <hookctl/util/error.hpp>

namespace hookctl::mime {

// What is known about one stored (or only described) blob once all its bytes went by.
struct Blob {
    std::uint64_t size = 0;
    std::string sha256;                     // lowercase hex
    std::optional<std::string> storage_key; // "sha256/ab/cdef…" when written to a store
    std::optional<std::string> content;     // the bytes, when they were small enough to keep
};

// Receives a blob chunk by chunk: hashes it, counts it, and when a store directory is given
// writes it to a temporary file that finish() renames to its content address. A blob already
// in the store is not written again.
class BlobWriter {
public:
    // `store_dir`: empty for "describe only". `keep_max`: keep the bytes in memory while the
    // blob is at most this long (0: never).
    BlobWriter(std::string store_dir, std::uint64_t keep_max);
    BlobWriter(BlobWriter&&) noexcept;
    BlobWriter& operator=(BlobWriter&&) noexcept;
    BlobWriter(const BlobWriter&) = delete;
    BlobWriter& operator=(const BlobWriter&) = delete;
    ~BlobWriter();

    // Adds bytes; fails (exit 4) when the store cannot be written.
    Result<void> write(std::string_view bytes);
    // Ends the blob: fsync, rename into place; fails (exit 4) naming the store.
    Result<Blob> finish();

private:
    struct State;
    std::unique_ptr<State> m_state;
};

// "sha256/ab/cdef…" for the lowercase hex digest `sha256_hex`.
std::string storage_key_for(std::string_view sha256_hex);

} // namespace hookctl::mime
