#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <hookctl/mime/store.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/openssl_ptr.hpp>

namespace hookctl::mime {

namespace {

// SHA-256 fetched from the default provider once: EVP_sha256() in EVP_DigestInit_ex makes
// OpenSSL 3 look the algorithm up again for every blob (1.4% of a corpus parse). Never freed:
// OpenSSL's exit handler may run before a static destructor would.
const EVP_MD* sha256_md() {
    static const EVP_MD* md = [] {
        EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
        return fetched != nullptr ? static_cast<const EVP_MD*>(fetched) : EVP_sha256();
    }();
    return md;
}

Error store_error(const std::string& what, const std::string& path, int err) {
    return Error{ExitCode::environment, "cannot " + what + " " + path +
                                            " in the attachment store: " + std::strerror(err) +
                                            " (check that --attachments-dir is writable)"};
}

} // namespace

std::string storage_key_for(std::string_view sha256_hex) {
    return "sha256/" + std::string(sha256_hex.substr(0, 2)) + "/" +
           std::string(sha256_hex.substr(2));
}

struct BlobWriter::State {
    std::string store_dir;
    std::uint64_t keep_max = 0;
    util::EvpMdCtxPtr ctx;
    std::uint64_t size = 0;
    util::UniqueFd fd;
    std::string tmp_path;
    std::string kept;
    bool keeping = false;

    ~State() {
        if (!tmp_path.empty()) {
            ::unlink(tmp_path.c_str());
        }
    }
};

BlobWriter::BlobWriter(std::string store_dir, std::uint64_t keep_max)
    : m_state(std::make_unique<State>()) {
    m_state->store_dir = std::move(store_dir);
    m_state->keep_max = keep_max;
    m_state->keeping = keep_max > 0;
    m_state->ctx.reset(EVP_MD_CTX_new());
    EVP_DigestInit_ex(m_state->ctx.get(), sha256_md(), nullptr);
}

BlobWriter::BlobWriter(BlobWriter&&) noexcept = default;
BlobWriter& BlobWriter::operator=(BlobWriter&&) noexcept = default;
BlobWriter::~BlobWriter() = default;

Result<void> BlobWriter::write(std::string_view bytes) {
    State& s = *m_state;
    EVP_DigestUpdate(s.ctx.get(), bytes.data(), bytes.size());
    s.size += bytes.size();
    if (s.keeping) {
        if (s.size <= s.keep_max) {
            s.kept.append(bytes);
        } else {
            s.keeping = false;
            std::string().swap(s.kept);
        }
    }
    if (s.store_dir.empty()) {
        return {};
    }
    if (!s.fd) {
        std::string dir = s.store_dir + "/sha256";
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec) {
            return std::unexpected(store_error("create the folder", dir, ec.value()));
        }
        std::string tmpl = dir + "/.tmp.XXXXXX";
        int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
        if (fd < 0) {
            return std::unexpected(store_error("create a temporary file in", dir, errno));
        }
        s.fd = util::UniqueFd(fd);
        s.tmp_path = tmpl;
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(s.fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return std::unexpected(store_error("write", s.tmp_path, errno));
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<Blob> BlobWriter::finish() {
    State& s = *m_state;
    if (!s.store_dir.empty() && !s.fd) {
        // An empty blob: nothing was written yet, create the empty file.
        if (auto r = write({}); !r) {
            return std::unexpected(r.error());
        }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_DigestFinal_ex(s.ctx.get(), digest, &digest_len);
    Blob blob;
    blob.size = s.size;
    blob.sha256 = util::hex_encode(
        std::string_view(reinterpret_cast<const char*>(digest), digest_len)); // NOLINT
    if (s.keeping) {
        blob.content = std::move(s.kept);
    }
    if (s.store_dir.empty()) {
        return blob;
    }
    std::string key = storage_key_for(blob.sha256);
    std::string target = s.store_dir + "/" + key;
    std::string target_dir = s.store_dir + "/sha256/" + blob.sha256.substr(0, 2);
    if (::fsync(s.fd.get()) != 0) {
        return std::unexpected(store_error("sync", s.tmp_path, errno));
    }
    s.fd = util::UniqueFd();
    std::error_code ec;
    std::filesystem::create_directories(target_dir, ec);
    if (ec) {
        return std::unexpected(store_error("create the folder", target_dir, ec.value()));
    }
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0) {
        ::unlink(s.tmp_path.c_str()); // already stored: content-addressed, same bytes
    } else if (::rename(s.tmp_path.c_str(), target.c_str()) != 0) {
        return std::unexpected(store_error("rename into", target, errno));
    }
    s.tmp_path.clear();
    blob.storage_key = key;
    return blob;
}

} // namespace hookctl::mime
