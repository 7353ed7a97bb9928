// Unpack: the stock packed tensors -> QuantizedLinear (inverse of Pack).
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "worker/quant/quantized_linear.h"
#include "worker/quant/tensor_checks.h"

namespace vptq::quant {
namespace {

namespace names = packed_names;
using internal::CheckFinite;
using internal::CheckPermutation;
using internal::CheckRange;
using internal::ShapeString;

using PackedMap = std::map<std::string, torch::Tensor>;

absl::Status Invalid(const std::string& name, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("packed tensor '", name, "' ", what));
}

// Which packed tensors this layout has: required and optional ones.
struct Expected {
  std::set<std::string> required;
  std::set<std::string> optional;
};

Expected ExpectedTensors(const QuantLayout& l) {
  Expected e;
  e.required = {names::kCentroids, names::kIndices};
  if (l.num_res_centroids > 0) e.required.insert(names::kResCentroids);
  if (l.outlier_size > 0) {
    e.required.insert(names::kOutlierCentroids);
    e.required.insert(names::kOutlierIndices);
  }
  (l.enable_perm ? e.required : e.optional).insert(names::kPerm);
  (l.enable_norm ? e.required : e.optional).insert(names::kWeightScale);
  (l.enable_norm ? e.required : e.optional).insert(names::kWeightBias);
  if (l.has_bias) e.required.insert(names::kBias);
  return e;
}

absl::Status CheckKeys(const PackedMap& packed, const QuantLayout& l) {
  const Expected e = ExpectedTensors(l);
  for (const auto& [name, tensor] : packed) {
    if (!e.required.contains(name) && !e.optional.contains(name)) {
      std::set<std::string> all = e.required;
      all.insert(e.optional.begin(), e.optional.end());
      return Invalid(name, absl::StrCat(
          "is not part of this layout (K_r=", l.num_res_centroids,
          ", outlier_size=", l.outlier_size, ", bias=", l.has_bias,
          "); expected only: ", absl::StrJoin(all, ", ")));
    }
    if (!tensor.defined()) return Invalid(name, "is an undefined tensor");
  }
  for (const std::string& name : e.required) {
    if (!packed.contains(name)) {
      return Invalid(name, "is missing; the layout needs it");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckShapeDtype(const std::string& name, const torch::Tensor& t,
                             const std::vector<int64_t>& shape,
                             bool want_float, torch::ScalarType int_dtype) {
  if (want_float) {
    const torch::ScalarType s = t.scalar_type();
    if (s != torch::kHalf && s != torch::kBFloat16 && s != torch::kFloat) {
      return Invalid(name, absl::StrCat("has dtype ", c10::toString(s),
                                        "; expected float16, bfloat16 or "
                                        "float32"));
    }
  } else if (t.scalar_type() != int_dtype) {
    return Invalid(name, absl::StrCat("has dtype ",
                                      c10::toString(t.scalar_type()),
                                      "; expected ", c10::toString(int_dtype)));
  }
  if (t.sizes() != torch::IntArrayRef(shape)) {
    return Invalid(name, absl::StrCat("has shape ", ShapeString(t.sizes()),
                                      "; the layout needs ",
                                      ShapeString(shape)));
  }
  return absl::OkStatus();
}

// A float tensor of `shape`, returned as CPU float32 reshaped to `as`.
absl::StatusOr<torch::Tensor> FloatTensor(const PackedMap& packed,
                                          const std::string& name,
                                          const std::vector<int64_t>& shape,
                                          const std::vector<int64_t>& as) {
  const torch::Tensor& t = packed.at(name);
  VPTQ_RETURN_IF_ERROR(CheckShapeDtype(name, t, shape, true, torch::kFloat));
  torch::Tensor f = t.to(torch::kCPU, torch::kFloat).reshape(as).contiguous();
  VPTQ_RETURN_IF_ERROR(CheckFinite(name, f));
  return f;
}

// An int16 tensor holding uint16 bits, returned as CPU int64 values.
absl::StatusOr<torch::Tensor> Uint16Tensor(const PackedMap& packed,
                                           const std::string& name,
                                           const std::vector<int64_t>& shape) {
  const torch::Tensor& t = packed.at(name);
  VPTQ_RETURN_IF_ERROR(CheckShapeDtype(name, t, shape, false, torch::kShort));
  return t.to(torch::kCPU, torch::kLong).bitwise_and(0xFFFF).contiguous();
}

absl::StatusOr<QuantizedLinear> UnpackChecked(const PackedMap& packed,
                                              const QuantLayout& l) {
  QuantizedLinear q;
  q.layout = l;
  const int64_t g = l.group_num;
  const int64_t v = l.vector_len;
  const int64_t rows = l.vector_rows();
  const int64_t n = l.in_features;

  VPTQ_ASSIGN_OR_RETURN(q.centroids,
                        FloatTensor(packed, names::kCentroids,
                                    {g, l.num_centroids * v},
                                    {g, l.num_centroids, v}));
  if (l.num_res_centroids > 0) {
    VPTQ_ASSIGN_OR_RETURN(q.res_centroids,
                          FloatTensor(packed, names::kResCentroids,
                                      {g, l.num_res_centroids * v},
                                      {g, l.num_res_centroids, v}));
  }

  const torch::Tensor& words = packed.at(names::kIndices);
  VPTQ_RETURN_IF_ERROR(CheckShapeDtype(names::kIndices, words,
                                       {g, rows, l.packed_words_per_row()},
                                       false, torch::kInt));
  const int bits = l.index_bits() + l.res_index_bits();
  torch::Tensor codes = UnpackIndexRows(
      words.to(torch::kCPU).reshape({g * rows, l.packed_words_per_row()}),
      l.group_size, bits);
  if (!codes.defined()) {
    return absl::InternalError("index unpacking rejected checked words");
  }
  codes = codes.reshape({g, rows, l.group_size});
  // Both fields come from their own bit widths, so both are in range.
  q.indices = codes.bitwise_and(l.num_centroids - 1);
  if (l.num_res_centroids > 0) {
    q.res_indices = codes.bitwise_right_shift(l.index_bits());
  }

  if (l.outlier_size > 0) {
    const int64_t v0 = l.outlier_vector_len;
    const int64_t k0 = l.outlier_num_centroids;
    VPTQ_ASSIGN_OR_RETURN(q.outlier_centroids,
                          FloatTensor(packed, names::kOutlierCentroids,
                                      {1, k0 * v0}, {k0, v0}));
    const int64_t rows0 = l.outlier_vector_rows();
    VPTQ_ASSIGN_OR_RETURN(
        torch::Tensor oi,
        Uint16Tensor(packed, names::kOutlierIndices, {1, rows0, l.outlier_size}));
    VPTQ_RETURN_IF_ERROR(CheckRange(names::kOutlierIndices, oi, k0));
    q.outlier_indices = oi.reshape({rows0, l.outlier_size});
  }

  if (packed.contains(names::kPerm)) {
    VPTQ_ASSIGN_OR_RETURN(torch::Tensor perm,
                          Uint16Tensor(packed, names::kPerm, {n}));
    if (l.enable_perm) {
      VPTQ_RETURN_IF_ERROR(CheckPermutation(names::kPerm, perm));
      q.perm = perm;
    }
  }
  if (!l.enable_perm) q.perm = torch::arange(n, torch::kLong);

  if (l.enable_norm) {
    VPTQ_ASSIGN_OR_RETURN(q.scale,
                          FloatTensor(packed, names::kWeightScale, {n}, {n}));
    VPTQ_ASSIGN_OR_RETURN(q.bias_norm,
                          FloatTensor(packed, names::kWeightBias, {n}, {n}));
  } else {
    // As the stock loader: norm off ignores the stored scale and bias.
    for (const char* name : {names::kWeightScale, names::kWeightBias}) {
      if (packed.contains(name)) {
        VPTQ_RETURN_IF_ERROR(CheckShapeDtype(name, packed.at(name), {n}, true,
                                             torch::kFloat));
      }
    }
    q.scale = torch::ones({n}, torch::kFloat);
    q.bias_norm = torch::zeros({n}, torch::kFloat);
  }
  if (l.has_bias) {
    VPTQ_ASSIGN_OR_RETURN(q.bias, FloatTensor(packed, names::kBias,
                                              {l.out_features},
                                              {l.out_features}));
  }
  return q;
}

}  // namespace

absl::StatusOr<QuantizedLinear> Unpack(const PackedMap& packed,
                                       const QuantLayout& layout) {
  VPTQ_RETURN_IF_ERROR(layout.Validate());
  VPTQ_RETURN_IF_ERROR(CheckKeys(packed, layout));
  try {
    VPTQ_ASSIGN_OR_RETURN(QuantizedLinear q, UnpackChecked(packed, layout));
    // Belt and braces: the result satisfies the same contract as Pack's input.
    VPTQ_RETURN_IF_ERROR(Annotate(ValidateQuantizedLinear(q), "unpacked linear"));
    return q;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("unpack: ", e.what()));
  }
}

}  // namespace vptq::quant
