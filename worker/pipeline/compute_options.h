// Where and how a task runs the model: device and batch chunking. Plain
// values; the worker fills them from its device pool (not from the job).
//
//   ComputeOptions c{.device = "cuda:0", .max_batch = 16};
//   VPTQ_ASSIGN_OR_RETURN(torch::Device d, ParseDevice(c.device));
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <torch/types.h>

#include "absl/status/statusor.h"

namespace vptq::pipeline {

struct ComputeOptions {
  std::string device = "cpu";  // torch device string: "cpu", "cuda", "cuda:1"
  // Sequences run through a layer at once (bounds activation memory).
  int64_t max_batch = 16;
};

// INVALID_ARGUMENT for a string torch does not parse; FAILED_PRECONDITION
// for a CUDA device when this build or machine has none.
absl::StatusOr<torch::Device> ParseDevice(std::string_view device);

}  // namespace vptq::pipeline
