// SHA-256 over OpenSSL's libcrypto (EVP). Incremental or one-shot.
//
//   Sha256 h; h.Update(chunk1); h.Update(chunk2); std::string hex = h.HexDigest();
//   std::string hex = Sha256Hex(bytes);
//   VPTQ_ASSIGN_OR_RETURN(std::string hex, Sha256File(path));
//
// Cost: ~0.5-2 GB/s per core (SHA-NI dependent). A Sha256 object belongs to
// one thread at a time; the free functions are thread-safe.
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
  // Finishes the hash. Calling Digest()/HexDigest() again returns the same
  // value; Update() after that is a contract violation and is ignored.
  std::array<uint8_t, 32> Digest();
  std::string HexDigest();  // lower-case, 64 chars

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view bytes);
// Streams the file in 1 MiB chunks. Errors name the path.
[[nodiscard]] absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace vptq
