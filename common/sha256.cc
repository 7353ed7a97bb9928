#include "common/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/file_util.h"

namespace vptq {
namespace {

// EVP only fails on allocation failure or a broken libcrypto; like a failed
// `new`, that is not an error the caller can handle.
void CheckEvp(int ok, const char* what) {
  if (ok != 1) {
    std::fprintf(stderr, "fatal: OpenSSL %s failed\n", what);
    std::abort();
  }
}

std::string ToHex(const std::array<uint8_t, 32>& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  bool finished = false;
  std::array<uint8_t, 32> digest{};
  Impl() {
    ctx = EVP_MD_CTX_new();
    CheckEvp(ctx != nullptr, "EVP_MD_CTX_new");
    CheckEvp(EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr), "DigestInit");
  }
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(std::string_view bytes) {
  Update(bytes.data(), bytes.size());
}

void Sha256::Update(const void* data, size_t size) {
  if (impl_->finished || size == 0) return;
  CheckEvp(EVP_DigestUpdate(impl_->ctx, data, size), "DigestUpdate");
}

std::array<uint8_t, 32> Sha256::Digest() {
  if (!impl_->finished) {
    unsigned int len = 0;
    CheckEvp(EVP_DigestFinal_ex(impl_->ctx, impl_->digest.data(), &len),
             "DigestFinal");
    CheckEvp(len == impl_->digest.size(), "DigestFinal length");
    impl_->finished = true;
  }
  return impl_->digest;
}

std::string Sha256::HexDigest() { return ToHex(Digest()); }

std::string Sha256Hex(std::string_view bytes) {
  Sha256 h;
  h.Update(bytes);
  return h.HexDigest();
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "read", path);
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return h.HexDigest();
}

}  // namespace vptq
