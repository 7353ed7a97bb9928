// Argument checks shared by pack, unpack and dequantize. Each returns
// INVALID_ARGUMENT naming the tensor (`name`) and saying what was expected.
// Internal to worker/quant; torch exceptions never escape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"

namespace vptq::quant::internal {

// Shape as "(2, 384)" for messages.
std::string ShapeString(torch::IntArrayRef shape);

absl::Status CheckDefined(const std::string& name, const torch::Tensor& t);
// `t` must be defined, have exactly `shape` and a floating dtype.
absl::Status CheckFloatShape(const std::string& name, const torch::Tensor& t,
                             const std::vector<int64_t>& shape);
// `t` must be defined, have exactly `shape` and an integer dtype.
absl::Status CheckIntShape(const std::string& name, const torch::Tensor& t,
                           const std::vector<int64_t>& shape);
// Every element finite (no NaN/Inf).
absl::Status CheckFinite(const std::string& name, const torch::Tensor& t);
// Every element in [0, limit).
absl::Status CheckRange(const std::string& name, const torch::Tensor& t,
                        int64_t limit);
// `perm` (integer, (n,)) holds every value of [0, n) once.
absl::Status CheckPermutation(const std::string& name, const torch::Tensor& perm);
// Every element equals `value`.
absl::Status CheckAllEqual(const std::string& name, const torch::Tensor& t,
                           double value, const std::string& what_to_change);

}  // namespace vptq::quant::internal
