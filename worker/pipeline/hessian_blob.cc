#include "worker/pipeline/hessian_blob.h"

#include <array>
#include <cmath>
#include <cstring>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace vptq::pipeline {
namespace {

constexpr char kMagic[8] = {'V', 'P', 'T', 'Q', 'H', 'F', 'I', 'N'};
constexpr uint32_t kVersion = 1;
constexpr size_t kFixedHeader = 8 + 4 + 4 + 8 + 8 + 8 + 8;

template <typename T>
void Put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

template <typename T>
T Get(std::string_view bytes, size_t& pos) {
  T v;
  std::memcpy(&v, bytes.data() + pos, sizeof(T));
  pos += sizeof(T);
  return v;
}

}  // namespace

std::string EncodeFinalizedHessian(const quant::FinalizedHessian& fh, double damp) {
  const torch::Tensor h = fh.h.to(torch::kCPU, torch::kDouble).contiguous();
  const int64_t n = h.size(0);
  std::string out;
  out.reserve(kFixedHeader + fh.dead_columns.size() * 8 +
              static_cast<size_t>(n * (n + 1) / 2) * 8 + 32);
  out.append(kMagic, sizeof(kMagic));
  Put<uint32_t>(out, kVersion);
  Put<uint32_t>(out, 0);
  Put<int64_t>(out, n);
  Put<int64_t>(out, fh.tokens);
  Put<double>(out, damp);
  Put<int64_t>(out, static_cast<int64_t>(fh.dead_columns.size()));
  for (int64_t c : fh.dead_columns) Put<int64_t>(out, c);
  const double* p = h.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    out.append(reinterpret_cast<const char*>(p + i * n + i), static_cast<size_t>(n - i) * 8);
  }
  Sha256 sha;
  sha.Update(out);
  const std::array<uint8_t, 32> digest = sha.Digest();
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return out;
}

absl::StatusOr<DecodedHessian> DecodeFinalizedHessian(std::string_view bytes,
                                                      std::string_view source_view) {
  const std::string source(source_view);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("Hessian artifact ", source, " is corrupt or not a finalized Hessian: ", why));
  };
  if (bytes.size() < kFixedHeader + 32) return bad("too short");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) return bad("bad magic");
  size_t pos = sizeof(kMagic);
  const uint32_t version = Get<uint32_t>(bytes, pos);
  if (version != kVersion) return bad(absl::StrCat("unknown version ", version));
  pos += 4;
  const int64_t n = Get<int64_t>(bytes, pos);
  const int64_t tokens = Get<int64_t>(bytes, pos);
  const double damp = Get<double>(bytes, pos);
  const int64_t dead = Get<int64_t>(bytes, pos);
  if (n < 1 || n > (int64_t{1} << 20)) return bad(absl::StrCat("dimension ", n));
  if (dead < 0 || dead > n) return bad(absl::StrCat("dead column count ", dead));
  const size_t tri = static_cast<size_t>(n) * static_cast<size_t>(n + 1) / 2;
  const size_t expected = kFixedHeader + static_cast<size_t>(dead) * 8 + tri * 8 + 32;
  if (bytes.size() != expected) {
    return bad(absl::StrCat(bytes.size(), " bytes where N = ", n, " needs ", expected));
  }
  Sha256 sha;
  sha.Update(bytes.substr(0, bytes.size() - 32));
  const std::array<uint8_t, 32> digest = sha.Digest();
  if (std::memcmp(digest.data(), bytes.data() + bytes.size() - 32, 32) != 0) {
    return bad("checksum mismatch");
  }
  if (!(damp >= 0) || !std::isfinite(damp)) return bad(absl::StrCat("damp ", damp));
  DecodedHessian out;
  out.damp = damp;
  out.hessian.tokens = tokens;
  int64_t prev = -1;
  for (int64_t i = 0; i < dead; ++i) {
    const int64_t c = Get<int64_t>(bytes, pos);
    if (c <= prev || c >= n) return bad(absl::StrCat("dead column ", c));
    out.hessian.dead_columns.push_back(c);
    prev = c;
  }
  torch::Tensor h = torch::empty({n, n}, torch::kDouble);
  double* p = h.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(p + i * n + i, bytes.data() + pos, static_cast<size_t>(n - i) * 8);
    pos += static_cast<size_t>(n - i) * 8;
    for (int64_t j = i; j < n; ++j) {
      const double v = p[i * n + j];
      if (!std::isfinite(v)) return bad(absl::StrCat("non-finite entry at (", i, ", ", j, ")"));
      p[j * n + i] = v;
    }
    if (!(p[i * n + i] > 0)) return bad(absl::StrCat("non-positive diagonal at ", i));
  }
  out.hessian.h = h;
  return out;
}

}  // namespace vptq::pipeline
