// Bit packing of index rows (DESIGN.md §3): code c of a row occupies stream
// bits [c*T, c*T + T), LSB first; stream bit P is bit P%32 of word P/32.
// Words are uint32 bit patterns stored in int32 tensors.
#include <cstdint>
#include <cstring>

#include <ATen/Parallel.h>

#include "worker/quant/quantized_linear.h"

namespace vptq::quant {
namespace {

int64_t WordsFor(int64_t cols, int bits) { return (cols * bits + 31) / 32; }

// Rows per parallel task: enough work to amortise task start-up.
constexpr int64_t kRowGrain = 64;

void PackRow(const int64_t* codes, int64_t cols, int bits, uint32_t* words) {
  for (int64_t c = 0; c < cols; ++c) {
    const uint64_t m = static_cast<uint64_t>(codes[c]);
    const int64_t pos = c * bits;
    const int64_t w = pos / 32;
    const int shift = static_cast<int>(pos % 32);
    // shift <= 31 and bits <= 32, so the code fits in 63 bits of a uint64.
    const uint64_t placed = m << shift;
    words[w] |= static_cast<uint32_t>(placed);
    if (shift + bits > 32) words[w + 1] |= static_cast<uint32_t>(placed >> 32);
  }
}

void UnpackRow(const uint32_t* words, int64_t num_words, int64_t cols,
               int bits, int64_t* codes) {
  const uint64_t mask = (uint64_t{1} << bits) - 1;  // bits <= 32
  for (int64_t c = 0; c < cols; ++c) {
    const int64_t pos = c * bits;
    const int64_t w = pos / 32;
    const int shift = static_cast<int>(pos % 32);
    uint64_t window = words[w];
    if (w + 1 < num_words) window |= static_cast<uint64_t>(words[w + 1]) << 32;
    codes[c] = static_cast<int64_t>((window >> shift) & mask);
  }
}

}  // namespace

torch::Tensor PackIndexRows(const torch::Tensor& codes, int bits) {
  if (!codes.defined() || codes.dim() != 2 || bits < 1 || bits > 32 ||
      c10::isFloatingType(codes.scalar_type()) ||
      c10::isComplexType(codes.scalar_type()) ||
      codes.scalar_type() == torch::kBool) {
    return {};
  }
  const torch::Tensor c = codes.to(torch::kCPU, torch::kLong).contiguous();
  if (c.numel() > 0) {
    const int64_t hi = c.max().item<int64_t>();
    const int64_t lo = c.min().item<int64_t>();
    if (lo < 0 || static_cast<uint64_t>(hi) >= (uint64_t{1} << bits)) return {};
  }
  const int64_t rows = c.size(0);
  const int64_t cols = c.size(1);
  const int64_t num_words = WordsFor(cols, bits);
  torch::Tensor out = torch::zeros({rows, num_words}, torch::kInt);
  const int64_t* src = c.data_ptr<int64_t>();
  // int32 and uint32 share size and alignment; the words are bit patterns.
  auto* dst = reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>());
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      PackRow(src + r * cols, cols, bits, dst + r * num_words);
    }
  });
  return out;
}

torch::Tensor UnpackIndexRows(const torch::Tensor& words, int64_t cols,
                              int bits) {
  if (!words.defined() || words.dim() != 2 || bits < 1 || bits > 32 ||
      cols < 0 || words.scalar_type() != torch::kInt ||
      words.size(1) != WordsFor(cols, bits)) {
    return {};
  }
  const torch::Tensor w = words.to(torch::kCPU).contiguous();
  const int64_t rows = w.size(0);
  const int64_t num_words = w.size(1);
  torch::Tensor out = torch::empty({rows, cols}, torch::kLong);
  const auto* src = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  int64_t* dst = out.data_ptr<int64_t>();
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      UnpackRow(src + r * num_words, num_words, cols, bits, dst + r * cols);
    }
  });
  return out;
}

}  // namespace vptq::quant
