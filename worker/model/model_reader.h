// Loads tensors of an HF model folder (single or sharded safetensors) by name
// into torch tensors, converting f32/f16/bf16 to the dtype asked for. Built
// for streaming: callers load one decoder layer at a time; nothing is read
// until asked for.
//
// Contract:
//  - Open() reads config.json and the safetensors headers only, and checks
//    every tensor the Llama forward needs against config.json (see
//    common/hf_config.h for the error codes).
//  - Load() copies one tensor out of the memory-mapped shard into a fresh,
//    contiguous CPU tensor (the mapping may go away). NOT_FOUND names the
//    tensor and folder when it is absent; INVALID_ARGUMENT names tensor and
//    file when its shape is not the one expected or the file changed since
//    Open().
//  - Shards are mapped on first use and stay mapped (address space only; the
//    page cache decides residency) until CloseFiles().
//  - Thread-safe: Load() may be called from several threads.
//  - No exceptions escape; torch errors become INVALID_ARGUMENT.
//
//   VPTQ_ASSIGN_OR_RETURN(auto reader, ModelReader::Open(dir));
//   VPTQ_ASSIGN_OR_RETURN(torch::Tensor w,
//       reader->Load("model.layers.0.mlp.up_proj.weight", torch::kFloat));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/hf_config.h"
#include "common/safetensors.h"

namespace vptq::model {

class ModelReader {
 public:
  static absl::StatusOr<std::unique_ptr<ModelReader>> Open(const std::string& model_dir);

  const ModelLayout& layout() const { return layout_; }
  const HfModelConfig& config() const { return layout_.config; }
  const std::string& dir() const { return layout_.dir; }

  // Tensor `name` as `dtype` (a floating type) on CPU.
  absl::StatusOr<torch::Tensor> Load(const std::string& name,
                                     torch::ScalarType dtype = torch::kFloat) const;
  // As Load(), and INVALID_ARGUMENT unless the stored shape is `shape`.
  absl::StatusOr<torch::Tensor> Load(const std::string& name, const std::vector<int64_t>& shape,
                                     torch::ScalarType dtype = torch::kFloat) const;

  // Unmaps every shard; later loads map them again.
  void CloseFiles();

 private:
  explicit ModelReader(ModelLayout layout) : layout_(std::move(layout)) {}
  absl::StatusOr<std::shared_ptr<const SafetensorsFile>> Shard(const std::string& file) const;

  ModelLayout layout_;
  mutable absl::Mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const SafetensorsFile>> shards_
      ABSL_GUARDED_BY(mu_);
};

// Copy of a safetensors view as `dtype` (f32/f16/bf16 in, any floating type
// out). INVALID_ARGUMENT naming the tensor for other dtypes.
absl::StatusOr<torch::Tensor> ViewToTensor(const TensorView& view, torch::ScalarType dtype);

}  // namespace vptq::model
