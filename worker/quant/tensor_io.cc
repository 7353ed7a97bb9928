#include "worker/quant/tensor_io.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace vptq::quant {

torch::ScalarType ToTorchDType(DType dtype) {
  switch (dtype) {
    case DType::kF32: return torch::kFloat;
    case DType::kF16: return torch::kHalf;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kI64: return torch::kLong;
    case DType::kI32: return torch::kInt;
    case DType::kI16: return torch::kShort;
    case DType::kU8: return torch::kByte;
  }
  return torch::kByte;  // unreachable: the switch covers every DType
}

absl::StatusOr<DType> FromTorchDType(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat: return DType::kF32;
    case torch::kHalf: return DType::kF16;
    case torch::kBFloat16: return DType::kBF16;
    case torch::kLong: return DType::kI64;
    case torch::kInt: return DType::kI32;
    case torch::kShort: return DType::kI16;
    case torch::kByte: return DType::kU8;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "dtype ", c10::toString(dtype),
          " has no safetensors counterpart here; convert to float32, float16, "
          "bfloat16, int64, int32, int16 or uint8"));
  }
}

absl::StatusOr<torch::Tensor> ToTensor(
    const TensorView& view, std::optional<torch::ScalarType> float_dtype) {
  if (float_dtype && !c10::isFloatingType(*float_dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", view.name, "': requested float dtype ",
        c10::toString(*float_dtype), " is not a floating type"));
  }
  const torch::ScalarType dtype = ToTorchDType(view.dtype);
  const size_t bytes = static_cast<size_t>(view.numel()) * DTypeSize(view.dtype);
  if (view.data.size() != bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", view.name, "' has ", view.data.size(), " bytes; its dtype ",
        std::string(DTypeName(view.dtype)), " and shape need ", bytes));
  }
  try {
    torch::Tensor t = torch::empty(view.shape, dtype);
    if (bytes > 0) std::memcpy(t.data_ptr(), view.data.data(), bytes);
    if (float_dtype && c10::isFloatingType(dtype) && dtype != *float_dtype) {
      t = t.to(*float_dtype);
    }
    return t;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", view.name, "': ", e.what()));
  }
}

absl::Status AddTensor(SafetensorsWriter& writer, std::string name,
                       const torch::Tensor& tensor) {
  if (!tensor.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' is undefined"));
  }
  absl::StatusOr<DType> dtype = FromTorchDType(tensor.scalar_type());
  if (!dtype.ok()) return Annotate(dtype.status(), "tensor '", name, "'");
  torch::Tensor cpu;
  try {
    cpu = tensor.to(torch::kCPU).contiguous();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "': ", e.what()));
  }
  std::vector<int64_t> shape(cpu.sizes().begin(), cpu.sizes().end());
  const auto* data = static_cast<const uint8_t*>(cpu.data_ptr());
  return writer.Add(std::move(name), *dtype, std::move(shape),
                    absl::MakeConstSpan(data, cpu.nbytes()));
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadTensors(
    const SafetensorsFile& file, std::string_view prefix,
    std::optional<torch::ScalarType> float_dtype) {
  std::map<std::string, torch::Tensor> out;
  for (const TensorView& view : file.tensors()) {
    if (!view.name.starts_with(prefix)) continue;
    VPTQ_ASSIGN_OR_RETURN(torch::Tensor t, ToTensor(view, float_dtype));
    out.emplace(view.name.substr(prefix.size()), std::move(t));
  }
  return out;
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadSafetensors(
    const std::string& path, std::optional<torch::ScalarType> float_dtype) {
  VPTQ_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                        SafetensorsFile::Open(path));
  absl::StatusOr<std::map<std::string, torch::Tensor>> tensors =
      ReadTensors(*file, "", float_dtype);
  if (!tensors.ok()) return Annotate(tensors.status(), path);
  return tensors;
}

}  // namespace vptq::quant
