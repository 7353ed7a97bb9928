// safetensors reading (mmap, zero-copy) and atomic writing. Torch-free: the
// torch adapters live with the code that needs tensors.
//
// Format: u64 little-endian header length N, N bytes of JSON
// {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets"}},
// then the data section; offsets are relative to its start.
//
// Contract: Open() validates the whole header before returning. A header that
// lies is INVALID_ARGUMENT with a message naming the file and, where one is
// involved, the tensor; never a crash or undefined behaviour. Lies checked:
// file shorter than 8 bytes; header length > 100 MB (kMaxHeaderBytes) or past
// the end of the file; bad JSON or JSON that is not an object; duplicate keys
// (tensor names or fields); missing/mistyped fields; unknown dtype; negative
// or non-integer dims; element or byte counts that overflow 64 bits; byte
// sizes that do not match dtype x shape; offsets out of range, overlapping,
// leaving gaps, or not covering the data section exactly; __metadata__ that
// is not string -> string. Unknown fields inside a tensor entry are ignored,
// as the reference implementation does.
//
// A SafetensorsFile is immutable after Open() and safe to share between
// threads; spans it returns live as long as the object. Open() maps the file
// (MAP_PRIVATE, read-only) and touches only the header pages; tensor bytes are
// paged in when read. Truncating the file while it is mapped makes reads of
// the lost pages raise SIGBUS (as with any mmap reader).
//
// Writing is byte-deterministic: tensors are laid out in name order, the
// header is {"__metadata__" first (if any), then tensors in name order, each
// {"dtype","shape","data_offsets"}} in compact JSON, padded with spaces to a
// multiple of 8 bytes -- the reference implementation's layout, so a file it
// wrote in name order is reproduced byte for byte. Writes are atomic
// (common/file_util.h): temp file, fsync, rename, fsync directory.
//
//   VPTQ_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
//   const TensorView* w = file->Find("model.layers.0.mlp.up_proj.weight");
//
//   // Planner: names, dtypes and shapes without mapping the data.
//   VPTQ_ASSIGN_OR_RETURN(SafetensorsHeader h, SafetensorsFile::ReadHeader(path));
//
//   SafetensorsWriter out;
//   VPTQ_RETURN_IF_ERROR(out.Add("x", DType::kF32, {2, 3}, bytes));  // copies
//   VPTQ_RETURN_IF_ERROR(out.WriteAtomic(path));
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vptq {

enum class DType { kF32, kF16, kBF16, kI64, kI32, kI16, kU8 };

// "F32", "F16", "BF16", "I64", "I32", "I16", "U8".
std::string_view DTypeName(DType d);
// INVALID_ARGUMENT listing the supported names for anything else.
absl::StatusOr<DType> ParseDType(std::string_view name);
size_t DTypeSize(DType d);

// The reference implementation's limit; a real 70B index header is ~100 KB.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  absl::Span<const uint8_t> data;  // points into the mapping
  int64_t numel() const;
};

// One header entry, without its bytes.
struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t data_begin = 0;  // [data_begin, data_end) within the data section
  uint64_t data_end = 0;
  int64_t numel() const;
  uint64_t nbytes() const { return data_end - data_begin; }
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by data offset
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section (8 + N)
  uint64_t file_size = 0;
};

class SafetensorsFile {
 public:
  // NOT_FOUND / PERMISSION_DENIED for an unreadable path, INVALID_ARGUMENT
  // for a file that is not valid safetensors.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);
  // Parses a buffer the caller keeps alive (used by the fuzzer and tests).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsFile>>
  FromBuffer(absl::Span<const uint8_t> bytes, std::string name = "<buffer>");
  // Reads and validates only the 8-byte prefix and the JSON header (two
  // preads), checking the offsets against the file size; never maps or reads
  // tensor data. Same errors as Open().
  [[nodiscard]] static absl::StatusOr<SafetensorsHeader> ReadHeader(
      const std::string& path);

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
  absl::Status Init(absl::Span<const uint8_t> bytes);

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<TensorView> tensors_;
  absl::flat_hash_map<std::string, size_t> index_;  // name -> tensors_ slot
  std::map<std::string, std::string> metadata_;
};

class SafetensorsWriter {
 public:
  // Copies the bytes. INVALID_ARGUMENT if the name repeats or is
  // "__metadata__", a dim is negative, or the byte count does not match
  // dtype x shape.
  [[nodiscard]] absl::Status Add(std::string name, DType dtype,
                                 std::vector<int64_t> shape,
                                 absl::Span<const uint8_t> bytes);
  void SetMetadata(std::string key, std::string value);
  // Tensors are laid out in name order, so output is byte-deterministic.
  // Streams the tensors into the temp file (no second copy in memory).
  [[nodiscard]] absl::Status WriteAtomic(const std::string& path) const;
  // The whole file in memory.
  std::string Serialize() const;
  // The JSON header including its 8-byte length prefix and padding.
  std::string SerializeHeader() const;
  // Bytes of tensor data held (the data section's size).
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
