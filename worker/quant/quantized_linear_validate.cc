// ValidateQuantizedLinear: a QuantizedLinear agrees with its layout.
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/quant/quantized_linear.h"
#include "worker/quant/tensor_checks.h"

namespace vptq::quant {
namespace {

using internal::CheckAllEqual;
using internal::CheckFinite;
using internal::CheckFloatShape;
using internal::CheckIntShape;
using internal::CheckPermutation;
using internal::CheckRange;

absl::Status MustBeUndefined(const char* name, const torch::Tensor& t,
                             const char* because) {
  if (t.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' is set but ", because,
                     "; leave it undefined or change the layout"));
  }
  return absl::OkStatus();
}

absl::Status FloatTensor(const char* name, const torch::Tensor& t,
                         const std::vector<int64_t>& shape) {
  VPTQ_RETURN_IF_ERROR(CheckFloatShape(name, t, shape));
  return CheckFinite(name, t);
}

absl::Status IndexTensor(const char* name, const torch::Tensor& t,
                         const std::vector<int64_t>& shape, int64_t limit) {
  VPTQ_RETURN_IF_ERROR(CheckIntShape(name, t, shape));
  return CheckRange(name, t, limit);
}

absl::Status ValidateTensors(const QuantizedLinear& q) {
  const QuantLayout& l = q.layout;
  const int64_t g = l.group_num;
  const int64_t rows = l.vector_rows();
  VPTQ_RETURN_IF_ERROR(
      FloatTensor("centroids", q.centroids, {g, l.num_centroids, l.vector_len}));
  VPTQ_RETURN_IF_ERROR(IndexTensor("indices", q.indices,
                                   {g, rows, l.group_size}, l.num_centroids));
  if (l.num_res_centroids > 0) {
    VPTQ_RETURN_IF_ERROR(FloatTensor("res_centroids", q.res_centroids,
                                     {g, l.num_res_centroids, l.vector_len}));
    VPTQ_RETURN_IF_ERROR(IndexTensor("res_indices", q.res_indices,
                                     {g, rows, l.group_size},
                                     l.num_res_centroids));
  } else {
    VPTQ_RETURN_IF_ERROR(MustBeUndefined("res_centroids", q.res_centroids,
                                         "num_res_centroids is 0"));
    VPTQ_RETURN_IF_ERROR(MustBeUndefined("res_indices", q.res_indices,
                                         "num_res_centroids is 0"));
  }
  if (l.outlier_size > 0) {
    VPTQ_RETURN_IF_ERROR(
        FloatTensor("outlier_centroids", q.outlier_centroids,
                    {l.outlier_num_centroids, l.outlier_vector_len}));
    VPTQ_RETURN_IF_ERROR(IndexTensor("outlier_indices", q.outlier_indices,
                                     {l.outlier_vector_rows(), l.outlier_size},
                                     l.outlier_num_centroids));
  } else {
    VPTQ_RETURN_IF_ERROR(MustBeUndefined(
        "outlier_centroids", q.outlier_centroids, "outlier_size is 0"));
    VPTQ_RETURN_IF_ERROR(MustBeUndefined("outlier_indices", q.outlier_indices,
                                         "outlier_size is 0"));
  }
  if (l.enable_perm || q.perm.defined()) {
    VPTQ_RETURN_IF_ERROR(CheckIntShape("perm", q.perm, {l.in_features}));
    VPTQ_RETURN_IF_ERROR(CheckPermutation("perm", q.perm));
    if (!l.enable_perm &&
        !q.perm.to(torch::kCPU, torch::kLong)
             .equal(torch::arange(l.in_features, torch::kLong))) {
      return absl::InvalidArgumentError(
          "tensor 'perm' is not the identity but enable_perm is false; turn "
          "perm on or leave perm undefined");
    }
  }
  if (l.enable_norm) {
    VPTQ_RETURN_IF_ERROR(FloatTensor("scale", q.scale, {l.in_features}));
    VPTQ_RETURN_IF_ERROR(FloatTensor("bias_norm", q.bias_norm, {l.in_features}));
  } else {
    // Norm off is stored as scale 1 and bias 0; anything else would be lost.
    if (q.scale.defined()) {
      VPTQ_RETURN_IF_ERROR(CheckFloatShape("scale", q.scale, {l.in_features}));
      VPTQ_RETURN_IF_ERROR(CheckAllEqual(
          "scale", q.scale, 1.0, "enable_norm is false: leave it undefined"));
    }
    if (q.bias_norm.defined()) {
      VPTQ_RETURN_IF_ERROR(
          CheckFloatShape("bias_norm", q.bias_norm, {l.in_features}));
      VPTQ_RETURN_IF_ERROR(CheckAllEqual(
          "bias_norm", q.bias_norm, 0.0,
          "enable_norm is false: leave it undefined"));
    }
  }
  if (l.has_bias) {
    VPTQ_RETURN_IF_ERROR(FloatTensor("bias", q.bias, {l.out_features}));
  } else {
    VPTQ_RETURN_IF_ERROR(MustBeUndefined("bias", q.bias, "has_bias is false"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateQuantizedLinear(const QuantizedLinear& q) {
  VPTQ_RETURN_IF_ERROR(q.layout.Validate());
  try {
    return ValidateTensors(q);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantized linear: tensor check failed: ", e.what()));
  }
}

}  // namespace vptq::quant
