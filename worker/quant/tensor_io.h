// Torch adapters for common/safetensors.h: file tensors to torch::Tensor and
// back. Torch-free code keeps using common/safetensors.h directly.
//
// Contract:
//  - Reads copy the bytes into a fresh, contiguous CPU tensor (the mapping
//    may be unaligned and may go away). Floating tensors (F32, F16, BF16) are
//    converted to `float_dtype` when it is given; integer tensors keep their
//    dtype (I64 -> kLong, I32 -> kInt, I16 -> kShort, U8 -> kByte).
//  - Writes take any device/layout; the tensor is made contiguous on CPU and
//    its bytes copied. Unsupported dtypes are INVALID_ARGUMENT naming the
//    tensor. Little-endian hosts only (as safetensors).
//  - Stateless; thread-safe as long as the writer is not shared.
//
//   VPTQ_ASSIGN_OR_RETURN(auto tensors,
//                         ReadSafetensors(path, torch::kFloat));
//   SafetensorsWriter out;
//   VPTQ_RETURN_IF_ERROR(AddTensor(out, "x.weight", tensors.at("x.weight")));
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/safetensors.h"

namespace vptq::quant {

torch::ScalarType ToTorchDType(DType dtype);
// INVALID_ARGUMENT for dtypes safetensors.h does not carry (bool, int8, ...).
absl::StatusOr<DType> FromTorchDType(torch::ScalarType dtype);

// Copy of `view`; floats converted to `float_dtype` (must be a floating type)
// when given.
absl::StatusOr<torch::Tensor> ToTensor(
    const TensorView& view,
    std::optional<torch::ScalarType> float_dtype = std::nullopt);

// Adds `tensor` under `name` (dtype kept: kFloat, kHalf, kBFloat16, kLong,
// kInt, kShort, kByte).
absl::Status AddTensor(SafetensorsWriter& writer, std::string name,
                       const torch::Tensor& tensor);

// Every tensor of `file` whose name starts with `prefix`, keyed by the rest
// of the name ("model.layers.0.mlp.up_proj." -> "indices", ...).
absl::StatusOr<std::map<std::string, torch::Tensor>> ReadTensors(
    const SafetensorsFile& file, std::string_view prefix = "",
    std::optional<torch::ScalarType> float_dtype = std::nullopt);

// Opens `path` and reads every tensor (see ReadTensors).
absl::StatusOr<std::map<std::string, torch::Tensor>> ReadSafetensors(
    const std::string& path,
    std::optional<torch::ScalarType> float_dtype = std::nullopt);

}  // namespace vptq::quant
