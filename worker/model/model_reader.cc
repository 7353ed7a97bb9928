#include "worker/model/model_reader.h"

#include <cstring>
#include <exception>
#include <filesystem>
#include <utility>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "worker/model/torch_error.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace vptq::model {
namespace {

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape.begin(), shape.end(), ", "), "]");
}

}  // namespace

absl::StatusOr<torch::Tensor> ViewToTensor(const TensorView& view, torch::ScalarType dtype) {
  torch::ScalarType stored;
  switch (view.dtype) {
    case DType::kF32: stored = torch::kFloat; break;
    case DType::kF16: stored = torch::kHalf; break;
    case DType::kBF16: stored = torch::kBFloat16; break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", view.name, "' has dtype ", std::string(DTypeName(view.dtype)),
          "; only F32, F16 and BF16 can be loaded as weights"));
  }
  if (!c10::isFloatingType(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", view.name, "': target dtype ", std::string(c10::toString(dtype)),
        " is not a floating type"));
  }
  try {
    torch::Tensor t = torch::empty(view.shape, torch::TensorOptions().dtype(stored));
    if (static_cast<size_t>(t.nbytes()) != view.data.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", view.name, "': ", view.data.size(), " bytes for shape ",
          ShapeString(view.shape)));
    }
    // Copy first: the mapping may be unaligned for the element type.
    if (!view.data.empty()) std::memcpy(t.data_ptr(), view.data.data(), view.data.size());
    return stored == dtype ? t : t.to(dtype);
  } catch (const std::exception& e) {
    return TorchError(e, absl::StrCat("tensor '", view.name, "'"));
  }
}

absl::StatusOr<std::unique_ptr<ModelReader>> ModelReader::Open(const std::string& model_dir) {
  VPTQ_ASSIGN_OR_RETURN(ModelLayout layout, ReadModelLayout(model_dir));
  return std::unique_ptr<ModelReader>(new ModelReader(std::move(layout)));
}

absl::StatusOr<std::shared_ptr<const SafetensorsFile>> ModelReader::Shard(
    const std::string& file) const {
  absl::MutexLock lock(&mu_);
  auto it = shards_.find(file);
  if (it != shards_.end()) return it->second;
  const std::string path = (std::filesystem::path(layout_.dir) / file).string();
  auto opened = SafetensorsFile::Open(path);
  if (!opened.ok()) return Annotate(opened.status(), "reading ", path);
  std::shared_ptr<const SafetensorsFile> shard(std::move(*opened));
  shards_.emplace(file, shard);
  return shard;
}

absl::StatusOr<torch::Tensor> ModelReader::Load(const std::string& name,
                                                torch::ScalarType dtype) const {
  const WeightInfo* info = layout_.weights.Find(name);
  if (info == nullptr) {
    return absl::NotFoundError(absl::StrCat("tensor '", name, "' is not stored in ", layout_.dir,
                                            " (", absl::StrJoin(layout_.weights.files, ", "), ")"));
  }
  VPTQ_ASSIGN_OR_RETURN(std::shared_ptr<const SafetensorsFile> shard, Shard(info->file));
  const TensorView* view = shard->Find(name);
  if (view == nullptr || view->dtype != info->dtype || view->shape != info->shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", name, "' in ", shard->path(),
        " changed since the model folder was opened; reopen it"));
  }
  auto t = ViewToTensor(*view, dtype);
  if (!t.ok()) return Annotate(t.status(), shard->path());
  return t;
}

absl::StatusOr<torch::Tensor> ModelReader::Load(const std::string& name,
                                                const std::vector<int64_t>& shape,
                                                torch::ScalarType dtype) const {
  const WeightInfo* info = layout_.weights.Find(name);
  if (info != nullptr && info->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", name, "' in ", layout_.dir, "/", info->file, " has shape ",
        ShapeString(info->shape), ", expected ", ShapeString(shape)));
  }
  return Load(name, dtype);
}

void ModelReader::CloseFiles() {
  absl::MutexLock lock(&mu_);
  shards_.clear();
}

}  // namespace vptq::model
