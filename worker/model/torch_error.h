// Turns an exception thrown by libtorch into a Status at a module boundary:
// allocation failures (CPU or CUDA) are RESOURCE_EXHAUSTED, so the task is
// retried where there is more memory; anything else is INVALID_ARGUMENT
// (shapes or dtypes the caller got wrong).
//   try { ... } catch (const std::exception& e) { return TorchError(e, "layer 3"); }
#pragma once

#include <exception>
#include <string_view>

#include "absl/status/status.h"

namespace vptq::model {

absl::Status TorchError(const std::exception& e, std::string_view context);

}  // namespace vptq::model
