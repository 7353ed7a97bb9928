#include "worker/pipeline/compute_options.h"

#include <exception>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace vptq::pipeline {

absl::StatusOr<torch::Device> ParseDevice(std::string_view device_view) {
  const std::string device(device_view);
  try {
    torch::Device d{std::string(device)};
    if (d.is_cuda() && !torch::cuda::is_available()) {
      return absl::FailedPreconditionError(
          absl::StrCat("device '", device, "' requested but CUDA is not available here"));
    }
    if (!d.is_cpu() && !d.is_cuda()) {
      return absl::InvalidArgumentError(
          absl::StrCat("device '", device, "' is not supported; use cpu or cuda[:N]"));
    }
    return d;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("device '", device, "' is not a torch device string (cpu, cuda:0)"));
  }
}

}  // namespace vptq::pipeline
