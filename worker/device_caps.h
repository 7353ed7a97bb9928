// Which devices a worker runs tasks on, and what it tells the coordinator
// about each (vptq.v1.WorkerCapabilities, sent with every LeaseTask).
//
//   ParseDeviceList("cpu")            -> {"cpu"}
//   ParseDeviceList("cuda:0,cuda:1")  -> {"cuda:0", "cuda:1"}   ("cuda" = "cuda:0")
//   DeviceCapabilities("cpu")         -> CPU, 1 device, memory = MemTotal
//   DeviceCapabilities("cuda:1")      -> CUDA, 1 device, device memory 0
//                                        (unknown: not gated), host memory
//
// Errors: INVALID_ARGUMENT naming the entry for anything but cpu / cuda /
// cuda:N, an empty list or a repeated device; FAILED_PRECONDITION for a
// CUDA device when libtorch sees no CUDA (or fewer devices than the index).
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vptq/v1/common.pb.h"

namespace vptq::worker {

absl::StatusOr<std::vector<std::string>> ParseDeviceList(const std::string& devices);

absl::StatusOr<v1::WorkerCapabilities> DeviceCapabilities(const std::string& device);

// MemTotal of /proc/meminfo in bytes; 0 when unknown.
int64_t HostMemoryBytes();

// The worker build's version string (for WorkerCapabilities.version).
const char* WorkerVersion();

}  // namespace vptq::worker
