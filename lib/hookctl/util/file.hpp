#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <hookctl/util/error.hpp>

namespace hookctl::util {

// An open file descriptor, closed when destroyed.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd)
        : m_fd(fd) {}
    UniqueFd(UniqueFd&& other) noexcept
        : m_fd(std::exchange(other.m_fd, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();

    int get() const { return m_fd; }
    // Gives up ownership without closing.
    int release() { return std::exchange(m_fd, -1); }
    explicit operator bool() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

// A stream of bytes read in chunks, so large bodies are hashed without being held in memory.
class ByteSource {
public:
    virtual ~ByteSource() = default;
    // Fills up to `buffer.size()` bytes; returns how many, 0 at the end of the stream.
    virtual Result<std::size_t> read(std::span<char> buffer) = 0;
    // All the bytes not read yet, when they are already in memory (then read() is not needed).
    virtual std::optional<std::string_view> contiguous() const { return std::nullopt; }
};

// Reads bytes already in memory.
class MemorySource final : public ByteSource {
public:
    explicit MemorySource(std::string_view bytes)
        : m_bytes(bytes) {}
    Result<std::size_t> read(std::span<char> buffer) override;
    std::optional<std::string_view> contiguous() const override { return m_bytes; }

private:
    std::string_view m_bytes;
};

// Reads a file, or stdin when the path is `-`. `name` is what error messages call it.
class FileSource final : public ByteSource {
public:
    // Opens `path` for reading; fails (exit 2) with the path and the OS reason.
    static Result<FileSource> open(const std::string& path);

    FileSource(FileSource&& other) noexcept = default;
    FileSource& operator=(FileSource&&) noexcept = default;
    ~FileSource() override;

    Result<std::size_t> read(std::span<char> buffer) override;
    const std::string& name() const { return m_name; }
    int fd() const { return m_fd.get(); }

private:
    FileSource(UniqueFd fd, std::string name, bool owned)
        : m_fd(std::move(fd))
        , m_name(std::move(name))
        , m_owned(owned) {}

    UniqueFd m_fd;
    std::string m_name;
    bool m_owned = true; // false for stdin, which stays open
};

// Reads everything `source` yields.
Result<std::string> read_all(ByteSource& source);

// Reads a whole file (`-` for stdin) into memory; fails (exit 2) naming the path and reason.
Result<std::string> read_file(const std::string& path);

// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, with `mode`.
Result<void> write_file_atomic(const std::string& path, std::string_view bytes, unsigned mode);

} // namespace hookctl::util
