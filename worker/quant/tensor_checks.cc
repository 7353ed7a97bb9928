#include "worker/quant/tensor_checks.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vptq::quant::internal {
namespace {

bool IsIntegerDtype(torch::ScalarType t) {
  return c10::isIntegralType(t, /*includeBool=*/false);
}

}  // namespace

std::string ShapeString(torch::IntArrayRef shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

absl::Status CheckDefined(const std::string& name, const torch::Tensor& t) {
  if (!t.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' is missing"));
  }
  return absl::OkStatus();
}

absl::Status CheckFloatShape(const std::string& name, const torch::Tensor& t,
                             const std::vector<int64_t>& shape) {
  if (absl::Status s = CheckDefined(name, t); !s.ok()) return s;
  if (!c10::isFloatingType(t.scalar_type())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' has dtype ",
                     c10::toString(t.scalar_type()),
                     "; expected a floating type (float16, bfloat16, float32)"));
  }
  if (t.sizes() != torch::IntArrayRef(shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' has shape ", ShapeString(t.sizes()),
                     "; the layout needs ", ShapeString(shape)));
  }
  return absl::OkStatus();
}

absl::Status CheckIntShape(const std::string& name, const torch::Tensor& t,
                           const std::vector<int64_t>& shape) {
  if (absl::Status s = CheckDefined(name, t); !s.ok()) return s;
  if (!IsIntegerDtype(t.scalar_type())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' has dtype ",
                     c10::toString(t.scalar_type()),
                     "; expected an integer type"));
  }
  if (t.sizes() != torch::IntArrayRef(shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' has shape ", ShapeString(t.sizes()),
                     "; the layout needs ", ShapeString(shape)));
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(const std::string& name, const torch::Tensor& t) {
  if (t.numel() > 0 && !torch::isfinite(t).all().item<bool>()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' holds NaN or Inf values"));
  }
  return absl::OkStatus();
}

absl::Status CheckRange(const std::string& name, const torch::Tensor& t,
                        int64_t limit) {
  if (t.numel() == 0) return absl::OkStatus();
  const torch::Tensor l = t.to(torch::kLong);
  const int64_t lo = l.min().item<int64_t>();
  const int64_t hi = l.max().item<int64_t>();
  if (lo < 0 || hi >= limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", name, "' holds values in [", lo, ", ", hi,
        "]; they must lie in [0, ", limit, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckPermutation(const std::string& name,
                              const torch::Tensor& perm) {
  const int64_t n = perm.numel();
  const torch::Tensor p = perm.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* v = p.data_ptr<int64_t>();
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (int64_t i = 0; i < n; ++i) {
    if (v[i] < 0 || v[i] >= n || seen[static_cast<size_t>(v[i])]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", name, "' is not a permutation of [0, ", n,
          "): entry ", i, " is ", v[i],
          (v[i] >= 0 && v[i] < n ? " (repeated)" : " (out of range)")));
    }
    seen[static_cast<size_t>(v[i])] = true;
  }
  return absl::OkStatus();
}

absl::Status CheckAllEqual(const std::string& name, const torch::Tensor& t,
                           double value, const std::string& what_to_change) {
  if (t.numel() > 0 && !t.eq(value).all().item<bool>()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", name, "' must be all ", value, "; ", what_to_change));
  }
  return absl::OkStatus();
}

}  // namespace vptq::quant::internal
