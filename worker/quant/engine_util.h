// Small helpers shared by the quantization engine (hessian, second-order
// pass, VPTQ, scalar baselines). Internal to worker/quant.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace vptq::quant::internal {

// Runs `f` (returning absl::Status or absl::StatusOr<T>) and turns any torch
// or std exception into INTERNAL, so that no exception leaves the engine.
// Bad input is rejected by explicit checks before; an exception here is a bug
// or an allocation failure (RESOURCE_EXHAUSTED).
template <typename F>
auto GuardTorch(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": out of memory: ", e.what()));
  } catch (const std::exception& e) {
    std::string msg = e.what();
    // c10::Error messages carry a long backtrace after the first line.
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    if (msg.find("out of memory") != std::string::npos ||
        msg.find("DefaultCPUAllocator") != std::string::npos) {
      return absl::ResourceExhaustedError(absl::StrCat(what, ": ", msg));
    }
    return absl::InternalError(absl::StrCat(what, ": ", msg));
  }
}

// True when every element of a floating tensor is finite.
inline bool AllFinite(const torch::Tensor& t) {
  return t.numel() == 0 || torch::isfinite(t).all().item<bool>();
}

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline bool IsPowerOfTwo(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

inline int Log2Exact(int64_t x) {
  int b = 0;
  while ((int64_t{1} << b) < x) ++b;
  return b;
}

// Wall-clock stopwatch for per-stage timings.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace vptq::quant::internal
