// SHA-256 over OpenSSL's libcrypto (EVP). Incremental or one-shot.
//   Sha256 h; h.Update(chunk1); h.Update(chunk2); std::string hex = h.HexDigest();
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vptq {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void Update(std::string_view bytes);
  void Update(const void* data, size_t size);
  // Finishes the hash; the object may not be updated afterwards.
  std::array<uint8_t, 32> Digest();
  std::string HexDigest();  // lower-case, 64 chars

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view bytes);
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace vptq
