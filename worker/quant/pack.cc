// Pack: QuantizedLinear -> the stock packed tensors (DESIGN.md §3).
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/quant/quantized_linear.h"

namespace vptq::quant {
namespace {

namespace names = packed_names;

bool IsPackFloatType(torch::ScalarType t) {
  return t == torch::kHalf || t == torch::kBFloat16 || t == torch::kFloat;
}

// Float tensor in the checkpoint dtype; INVALID_ARGUMENT if a (finite) value
// does not fit the narrower type.
absl::StatusOr<torch::Tensor> ToStored(const char* name, const torch::Tensor& t,
                                       torch::ScalarType dtype) {
  torch::Tensor out = t.to(torch::kCPU).to(dtype).contiguous();
  if (out.numel() > 0 && !torch::isfinite(out).all().item<bool>()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", name, "' has values beyond the range of ",
        c10::toString(dtype), "; store the checkpoint as float32 or rescale"));
  }
  return out;
}

// Values in [0, 65536) as int16 holding the uint16 bit pattern.
torch::Tensor ToUint16Bits(const torch::Tensor& t) {
  const torch::Tensor l = t.to(torch::kCPU, torch::kLong);
  return torch::where(l >= 32768, l - 65536, l).to(torch::kShort).contiguous();
}

absl::StatusOr<std::map<std::string, torch::Tensor>> PackValidated(
    const QuantizedLinear& q, torch::ScalarType dtype) {
  const QuantLayout& l = q.layout;
  const int64_t g = l.group_num;
  const int64_t rows = l.vector_rows();
  std::map<std::string, torch::Tensor> out;

  VPTQ_ASSIGN_OR_RETURN(
      out[names::kCentroids],
      ToStored(names::kCentroids,
               q.centroids.reshape({g, l.num_centroids * l.vector_len}), dtype));

  torch::Tensor codes = q.indices.to(torch::kCPU, torch::kLong);
  if (l.num_res_centroids > 0) {
    VPTQ_ASSIGN_OR_RETURN(
        out[names::kResCentroids],
        ToStored(names::kResCentroids,
                 q.res_centroids.reshape({g, l.num_res_centroids * l.vector_len}),
                 dtype));
    codes = codes.bitwise_or(
        q.res_indices.to(torch::kCPU, torch::kLong).bitwise_left_shift(l.index_bits()));
  }
  const int bits = l.index_bits() + l.res_index_bits();
  torch::Tensor words =
      PackIndexRows(codes.reshape({g * rows, l.group_size}), bits);
  if (!words.defined()) {
    return absl::InternalError("index packing rejected validated codes");
  }
  out[names::kIndices] = words.reshape({g, rows, l.packed_words_per_row()});

  if (l.outlier_size > 0) {
    VPTQ_ASSIGN_OR_RETURN(
        out[names::kOutlierCentroids],
        ToStored(names::kOutlierCentroids,
                 q.outlier_centroids.reshape(
                     {1, l.outlier_num_centroids * l.outlier_vector_len}),
                 dtype));
    out[names::kOutlierIndices] = ToUint16Bits(q.outlier_indices).reshape(
        {1, l.outlier_vector_rows(), l.outlier_size});
  }

  // The stock loader reads perm only when it is on; the identity is written
  // otherwise so that files look alike, unless it cannot fit uint16.
  if (q.perm.defined()) {
    out[names::kPerm] = ToUint16Bits(q.perm);
  } else if (l.in_features <= 65535) {
    out[names::kPerm] = ToUint16Bits(torch::arange(l.in_features, torch::kLong));
  }

  const torch::Tensor ones = torch::ones({l.in_features}, torch::kFloat);
  const torch::Tensor zeros = torch::zeros({l.in_features}, torch::kFloat);
  VPTQ_ASSIGN_OR_RETURN(
      out[names::kWeightScale],
      ToStored(names::kWeightScale,
               l.enable_norm || q.scale.defined() ? q.scale : ones, dtype));
  VPTQ_ASSIGN_OR_RETURN(
      out[names::kWeightBias],
      ToStored(names::kWeightBias,
               l.enable_norm || q.bias_norm.defined() ? q.bias_norm : zeros,
               dtype));
  if (l.has_bias) {
    VPTQ_ASSIGN_OR_RETURN(out[names::kBias],
                          ToStored(names::kBias, q.bias, dtype));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::map<std::string, torch::Tensor>> PackChecked(
    const QuantizedLinear& q, torch::ScalarType dtype) {
  if (!IsPackFloatType(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pack: dtype ", c10::toString(dtype),
        " is not a checkpoint float type; use float16, bfloat16 or float32"));
  }
  VPTQ_RETURN_IF_ERROR(ValidateQuantizedLinear(q));
  try {
    return PackValidated(q, dtype);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("pack: ", e.what()));
  }
}

std::map<std::string, torch::Tensor> Pack(const QuantizedLinear& q,
                                          torch::ScalarType dtype) {
  absl::StatusOr<std::map<std::string, torch::Tensor>> packed =
      PackChecked(q, dtype);
  if (!packed.ok()) {
    vptq::log::Error("pack failed", {{"error", packed.status().ToString()}});
    return {};
  }
  return *std::move(packed);
}

}  // namespace vptq::quant
