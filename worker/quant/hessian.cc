// HessianAccumulator: double-double sums of XᵀX, merge, finalize, bytes.
#include "worker/quant/hessian.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/quant/engine_util.h"

namespace vptq::quant {
namespace {

static_assert(std::endian::native == std::endian::little,
              "Hessian bytes are written little-endian");

constexpr char kMagic[8] = {'V', 'P', 'T', 'Q', 'H', 'E', 'S', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8 + 8 + 8;  // magic..count
// Refuse headers that would ask for absurd allocations before reading on.
constexpr int64_t kMaxFeatures = int64_t{1} << 20;

// Error-free transformation: a + b == s + err exactly (Knuth's TwoSum).
std::pair<torch::Tensor, torch::Tensor> TwoSum(const torch::Tensor& a,
                                               const torch::Tensor& b) {
  torch::Tensor s = a + b;
  torch::Tensor bb = s - a;
  torch::Tensor err = (a - (s - bb)) + (b - bb);
  return {s, err};
}

// 64-bit FNV-1a over 8-byte words: any single corrupted word changes it
// (each step is a bijection of the running state).
uint64_t Checksum(const char* data, size_t bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
  }
  return h;
}

template <typename T>
void Put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <typename T>
T Get(std::string_view bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

// Appends the upper triangle (row-major, diagonal included) of a CPU
// contiguous (n, n) float64 tensor.
void PutUpper(std::string& out, const torch::Tensor& m) {
  const int64_t n = m.size(0);
  const double* p = m.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    out.append(reinterpret_cast<const char*>(p + i * n + i),
               sizeof(double) * static_cast<size_t>(n - i));
  }
}

// Reads an upper triangle into a symmetric (n, n) float64 tensor.
torch::Tensor GetUpper(const char* data, int64_t n) {
  torch::Tensor m = torch::zeros({n, n}, torch::kFloat64);
  double* p = m.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(p + i * n + i, data, sizeof(double) * static_cast<size_t>(n - i));
    data += sizeof(double) * static_cast<size_t>(n - i);
  }
  // Mirror: lower = upper transposed (diagonal counted once).
  return m + m.triu(1).t();
}

}  // namespace

HessianAccumulator::HessianAccumulator(int64_t n_features, torch::Device device)
    : n_(n_features),
      hi_(torch::zeros({n_features, n_features},
                       torch::TensorOptions().dtype(torch::kFloat64).device(device))),
      lo_(torch::zeros_like(hi_)) {}

void HessianAccumulator::AddProduct(const torch::Tensor& p_hi,
                                    const torch::Tensor& p_lo) {
  auto [s, err] = TwoSum(hi_, p_hi);
  torch::Tensor lo = lo_ + p_lo + err;
  // Renormalise so |lo| stays below half an ulp of hi (FastTwoSum).
  hi_ = s + lo;
  lo_ = lo - (hi_ - s);
}

absl::Status HessianAccumulator::Add(const torch::Tensor& x) {
  if (!x.defined() || x.dim() < 1 || x.size(-1) != n_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Hessian input: expected a tensor of shape (..., ", n_, ")",
        x.defined() ? absl::StrCat(" but got ", x.dim(), " dims, last ",
                                   x.dim() > 0 ? x.size(-1) : 0)
                    : std::string(" but got an undefined tensor"),
        "; pass the linear's input activations"));
  }
  if (!x.is_floating_point()) {
    return absl::InvalidArgumentError(
        "Hessian input: expected a floating dtype (fp16/bf16/fp32/fp64)");
  }
  return internal::GuardTorch("Hessian Add", [&]() -> absl::Status {
    torch::Tensor x2 = x.reshape({-1, n_}).to(hi_.device(), torch::kFloat64);
    if (!internal::AllFinite(x2)) {
      return absl::InvalidArgumentError(
          "Hessian input contains NaN or Inf; check the calibration forward "
          "pass");
    }
    if (x2.size(0) == 0) return absl::OkStatus();
    torch::Tensor p = x2.t().mm(x2);
    // Exact symmetry: the lower triangle is the mirrored upper one.
    p = p.triu() + p.triu(1).t();
    AddProduct(p, torch::zeros_like(p));
    tokens_ += x2.size(0);
    return absl::OkStatus();
  });
}

absl::Status HessianAccumulator::Merge(const HessianAccumulator& other) {
  if (other.n_ != n_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Hessian merge: accumulators have ", n_, " and ", other.n_,
        " features; merge only shards of the same linear input"));
  }
  return internal::GuardTorch("Hessian Merge", [&]() -> absl::Status {
    AddProduct(other.hi_.to(hi_.device()), other.lo_.to(hi_.device()));
    tokens_ += other.tokens_;
    return absl::OkStatus();
  });
}

torch::Tensor HessianAccumulator::Sum() const { return hi_ + lo_; }

absl::StatusOr<FinalizedHessian> HessianAccumulator::Finalize(
    const HessianFinalizeOptions& options) const {
  if (tokens_ == 0) {
    return absl::FailedPreconditionError(
        "Hessian finalize: no tokens were accumulated; add calibration "
        "inputs first");
  }
  VPTQ_ASSIGN_OR_RETURN(
      FinalizedHessian h,
      FinalizeHessian(Sum() / static_cast<double>(tokens_), options));
  h.tokens = tokens_;
  return h;
}

absl::StatusOr<FinalizedHessian> FinalizeHessian(
    const torch::Tensor& h_in, const HessianFinalizeOptions& options) {
  if (!h_in.defined() || h_in.dim() != 2 || h_in.size(0) != h_in.size(1) ||
      !h_in.is_floating_point()) {
    return absl::InvalidArgumentError(
        "Hessian finalize: expected a square floating (N, N) matrix");
  }
  if (!(options.damp >= 0) || !std::isfinite(options.damp)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Hessian finalize: damp is ", options.damp,
        "; use a finite value >= 0 (0.01 is the default)"));
  }
  return internal::GuardTorch(
      "Hessian finalize", [&]() -> absl::StatusOr<FinalizedHessian> {
        torch::Tensor h = h_in.to(torch::kFloat64).clone();
        if (!internal::AllFinite(h)) {
          return absl::InvalidArgumentError(
              "Hessian finalize: the matrix contains NaN or Inf");
        }
        torch::Tensor diag = h.diagonal();
        if ((diag < 0).any().item<bool>()) {
          return absl::InvalidArgumentError(
              "Hessian finalize: a diagonal entry is negative, so the matrix "
              "is not a sum of xxᵀ; check how it was computed");
        }
        torch::Tensor dead_mask = diag == 0;
        const double mean = diag.mean().item<double>();
        if (!(mean > 0)) {
          return absl::FailedPreconditionError(
              "Hessian finalize: every input column is dead (all inputs "
              "zero); the calibration data never reached this linear");
        }
        h.div_(mean);
        h.diagonal().add_(options.damp);
        h.diagonal().masked_fill_(dead_mask, 1.0);
        FinalizedHessian out;
        torch::Tensor dead = dead_mask.nonzero().flatten().cpu();
        out.dead_columns.assign(dead.data_ptr<int64_t>(),
                                dead.data_ptr<int64_t>() + dead.numel());
        out.h = h;
        return out;
      });
}

torch::Tensor ZeroDeadColumns(const torch::Tensor& weight,
                              const std::vector<int64_t>& dead_columns) {
  torch::Tensor w = weight.clone();
  if (dead_columns.empty()) return w;
  torch::Tensor idx =
      torch::tensor(dead_columns, torch::kInt64).to(weight.device());
  w.index_fill_(1, idx, 0);
  return w;
}

std::string HessianAccumulator::Serialize() const {
  torch::Tensor hi = hi_.cpu().contiguous();
  torch::Tensor lo = lo_.cpu().contiguous();
  const uint64_t count = static_cast<uint64_t>(n_) * (n_ + 1) / 2;
  std::string out;
  out.reserve(kHeaderBytes + 16 * count + 8);
  out.append(kMagic, sizeof(kMagic));
  Put<uint32_t>(out, kVersion);
  Put<uint32_t>(out, 0);  // flags, reserved
  Put<int64_t>(out, n_);
  Put<int64_t>(out, tokens_);
  Put<uint64_t>(out, count);
  PutUpper(out, hi);
  PutUpper(out, lo);
  Put<uint64_t>(out, Checksum(out.data(), out.size()));
  return out;
}

absl::StatusOr<HessianAccumulator> HessianAccumulator::Deserialize(
    std::string_view bytes, torch::Device device) {
  auto bad = [](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("Hessian bytes: ", why,
                     "; the artifact is corrupt or not a Hessian, recompute "
                     "it"));
  };
  if (bytes.size() < kHeaderBytes + 8) return bad("too short for a header");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return bad("bad magic");
  }
  const auto version = Get<uint32_t>(bytes, 8);
  if (version != kVersion) {
    return bad(absl::StrCat("unknown version ", version, " (this build reads ",
                            kVersion, ")"));
  }
  if (Get<uint32_t>(bytes, 12) != 0) return bad("unknown flags");
  const auto n = Get<int64_t>(bytes, 16);
  const auto tokens = Get<int64_t>(bytes, 24);
  const auto count = Get<uint64_t>(bytes, 32);
  if (n < 1 || n > kMaxFeatures) {
    return bad(absl::StrCat("feature count ", n, " out of range"));
  }
  if (tokens < 0) return bad(absl::StrCat("negative token count ", tokens));
  if (count != static_cast<uint64_t>(n) * (n + 1) / 2) {
    return bad("element count does not match the feature count");
  }
  if (bytes.size() != kHeaderBytes + 16 * count + 8) {
    return bad(absl::StrCat("length ", bytes.size(), " but ",
                            kHeaderBytes + 16 * count + 8, " expected"));
  }
  const size_t body = bytes.size() - 8;
  if (Checksum(bytes.data(), body) != Get<uint64_t>(bytes, body)) {
    return bad("checksum mismatch");
  }
  return internal::GuardTorch(
      "Hessian Deserialize", [&]() -> absl::StatusOr<HessianAccumulator> {
        const char* p = bytes.data() + kHeaderBytes;
        torch::Tensor hi = GetUpper(p, n);
        torch::Tensor lo = GetUpper(p + 8 * count, n);
        if (!internal::AllFinite(hi) || !internal::AllFinite(lo)) {
          return bad("non-finite sums");
        }
        HessianAccumulator acc(n, device);
        acc.hi_ = hi.to(device);
        acc.lo_ = lo.to(device);
        acc.tokens_ = tokens;
        return acc;
      });
}

}  // namespace vptq::quant
