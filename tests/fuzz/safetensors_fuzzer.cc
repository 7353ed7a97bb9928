// libFuzzer target for the safetensors reader. Any input must either parse or
// be INVALID_ARGUMENT; a parsed file's views must lie inside the input and
// agree with dtype x shape; and writing the parsed tensors back out must give
// a file that parses to the same tensors and is a fixed point of the writer.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/safetensors.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "safetensors_fuzzer: %s: %s\n", what, detail.c_str());
  std::abort();
}

absl::StatusOr<std::unique_ptr<vptq::SafetensorsFile>> Parse(
    const std::string& raw, std::string name) {
  return vptq::SafetensorsFile::FromBuffer(
      {reinterpret_cast<const uint8_t*>(raw.data()), raw.size()},
      std::move(name));
}

std::string Rewrite(const vptq::SafetensorsFile& file) {
  vptq::SafetensorsWriter w;
  for (const vptq::TensorView& t : file.tensors()) {
    absl::Status s = w.Add(t.name, t.dtype, t.shape, t.data);
    if (!s.ok()) Fail("writer rejected a parsed tensor", s.ToString());
  }
  for (const auto& [k, v] : file.metadata()) w.SetMetadata(k, v);
  return w.Serialize();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = vptq::SafetensorsFile::FromBuffer({data, size}, "fuzz");
  if (!parsed.ok()) {
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("unexpected status code", parsed.status().ToString());
    }
    return 0;
  }
  const vptq::SafetensorsFile& file = **parsed;

  uint64_t checksum = 0;
  for (const vptq::TensorView& t : file.tensors()) {
    const uint8_t* begin = t.data.data();
    if (begin < data || begin + t.data.size() > data + size) {
      Fail("view outside the input", t.name);
    }
    if (static_cast<uint64_t>(t.numel()) * vptq::DTypeSize(t.dtype) !=
        t.data.size()) {
      Fail("view size does not match dtype x shape", t.name);
    }
    if (file.Find(t.name) != &t) Fail("Find disagrees with tensors()", t.name);
    // Read every byte so ASan sees any view that strays outside the input.
    for (uint8_t b : t.data) checksum += b;
  }

  const std::string once = Rewrite(file);
  auto again = Parse(once, "rewritten");
  if (!again.ok()) Fail("rewritten file does not parse", again.status().ToString());
  if ((*again)->tensors().size() != file.tensors().size() ||
      (*again)->metadata() != file.metadata()) {
    Fail("rewritten file lost tensors or metadata", "");
  }
  for (const vptq::TensorView& t : file.tensors()) {
    const vptq::TensorView* u = (*again)->Find(t.name);
    if (u == nullptr || u->dtype != t.dtype || u->shape != t.shape ||
        u->data.size() != t.data.size() ||
        (t.data.size() > 0 &&
         std::memcmp(u->data.data(), t.data.data(), t.data.size()) != 0)) {
      Fail("rewritten tensor differs", t.name);
    }
  }
  if (Rewrite(**again) != once) Fail("writer output is not a fixed point", "");
  // Keeps the reads above from being optimised away.
  if (checksum == 0xffffffffffffffffULL) std::fputc(' ', stderr);
  return 0;
}
