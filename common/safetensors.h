// safetensors reading (mmap, zero-copy) and atomic writing. Torch-free: the
// torch adapters live with the code that needs tensors.
//
// Contract: Open() validates the whole header before returning. A header that
// lies (bad JSON, absurd header length, unknown dtype, offsets out of range,
// overlapping or not covering the data section, byte sizes that do not match
// dtype x shape) is INVALID_ARGUMENT with a message naming the file and the
// tensor; never a crash. A SafetensorsFile is immutable after Open() and safe
// to share between threads; spans it returns live as long as the object.
//
//   VPTQ_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
//   const TensorView* w = file->Find("model.layers.0.mlp.up_proj.weight");
//
//   SafetensorsWriter out;
//   out.Add("x", DType::kF32, {2, 3}, bytes);        // copies bytes
//   VPTQ_RETURN_IF_ERROR(out.WriteAtomic(path));     // temp, fsync, rename
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vptq {

enum class DType { kF32, kF16, kBF16, kI64, kI32, kI16, kU8 };

// "F32", "F16", "BF16", "I64", "I32", "I16", "U8".
std::string_view DTypeName(DType d);
absl::StatusOr<DType> ParseDType(std::string_view name);
size_t DTypeSize(DType d);

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  absl::Span<const uint8_t> data;  // points into the mapping
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);
  // Parses a buffer the caller keeps alive (used by the fuzzer and tests).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBuffer(
      absl::Span<const uint8_t> bytes, std::string name = "<buffer>");

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensors sorted by data offset.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* Find(std::string_view name) const;  // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsWriter {
 public:
  // Copies the bytes. INVALID_ARGUMENT if the name repeats or the byte count
  // does not match dtype x shape.
  absl::Status Add(std::string name, DType dtype, std::vector<int64_t> shape,
                   absl::Span<const uint8_t> bytes);
  void SetMetadata(std::string key, std::string value);
  // Tensors are laid out in name order, so output is byte-deterministic.
  absl::Status WriteAtomic(const std::string& path) const;
  std::string Serialize() const;
  size_t total_bytes() const;

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace vptq
