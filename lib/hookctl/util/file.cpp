#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hookctl/util/file.hpp>

namespace hookctl::util {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

Result<std::size_t> MemorySource::read(std::span<char> buffer) {
    std::size_t n = std::min(buffer.size(), m_bytes.size());
    std::memcpy(buffer.data(), m_bytes.data(), n);
    m_bytes.remove_prefix(n);
    return n;
}

Result<FileSource> FileSource::open(const std::string& path) {
    if (path == "-") {
        return FileSource(UniqueFd(STDIN_FILENO), "stdin", false);
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(ExitCode::usage,
                    "cannot open " + path + ": " + std::strerror(errno) + " (check the path)");
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        ::close(fd);
        return fail(ExitCode::usage, "cannot read " + path + ": it is a directory, give a file");
    }
    return FileSource(UniqueFd(fd), path, true);
}

FileSource::~FileSource() {
    if (!m_owned) {
        m_fd.release();
    }
}

Result<std::size_t> FileSource::read(std::span<char> buffer) {
    for (;;) {
        ssize_t n = ::read(m_fd.get(), buffer.data(), buffer.size());
        if (n >= 0) {
            return static_cast<std::size_t>(n);
        }
        if (errno != EINTR) {
            return fail(ExitCode::usage, "cannot read " + m_name + ": " + std::strerror(errno));
        }
    }
}

Result<std::string> read_all(ByteSource& source) {
    std::string out;
    char buffer[65536];
    for (;;) {
        auto n = source.read(buffer);
        HOOKCTL_RETURN_IF_ERROR(n);
        if (*n == 0) {
            return out;
        }
        out.append(buffer, *n);
    }
}

Result<std::string> read_file(const std::string& path) {
    auto source = FileSource::open(path);
    HOOKCTL_RETURN_IF_ERROR(source);
    return read_all(*source);
}

Result<void> write_file_atomic(const std::string& path, std::string_view bytes, unsigned mode) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) {
        return fail(ExitCode::environment,
                    "cannot create " + tmp + ": " + std::strerror(errno) + " (check the folder)");
    }
    ::fchmod(fd.get(), mode);
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            return fail(ExitCode::environment, "cannot write " + tmp + ": " + std::strerror(err));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return fail(ExitCode::environment, "cannot replace " + path + ": " + std::strerror(err));
    }
    return {};
}

} // namespace hookctl::util
