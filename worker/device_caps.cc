#include "worker/device_caps.h"

#include <fstream>
#include <set>

#include <torch/cuda.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"

#ifndef VPTQ_VERSION
#define VPTQ_VERSION "dev"
#endif

namespace vptq::worker {
namespace {

absl::StatusOr<std::string> NormalizeDevice(absl::string_view entry) {
  entry = absl::StripAsciiWhitespace(entry);
  if (entry == "cpu") return std::string("cpu");
  if (entry == "cuda") return std::string("cuda:0");
  if (absl::ConsumePrefix(&entry, "cuda:")) {
    int index = -1;
    if (!entry.empty() && absl::SimpleAtoi(entry, &index) && index >= 0 && index < 1024 &&
        entry.find_first_not_of("0123456789") == absl::string_view::npos) {
      return absl::StrCat("cuda:", index);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("device '", entry, "' is not cpu, cuda or cuda:N"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseDeviceList(const std::string& devices) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (absl::string_view entry : absl::StrSplit(devices, ',')) {
    absl::StatusOr<std::string> d = NormalizeDevice(entry);
    if (!d.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--devices '", devices, "': ", d.status().message(),
                       " (use cpu, or a comma-separated list such as cuda:0,cuda:1)"));
    }
    if (!seen.insert(*d).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--devices '", devices, "' names ", *d, " twice"));
    }
    out.push_back(*std::move(d));
  }
  return out;
}

absl::StatusOr<v1::WorkerCapabilities> DeviceCapabilities(const std::string& device) {
  VPTQ_ASSIGN_OR_RETURN(const std::string d, NormalizeDevice(device));
  v1::WorkerCapabilities caps;
  caps.set_device_count(1);
  caps.set_host_memory_bytes(HostMemoryBytes());
  caps.set_version(WorkerVersion());
  if (d == "cpu") {
    caps.set_device_kind(v1::DEVICE_KIND_CPU);
    caps.set_device_memory_bytes(caps.host_memory_bytes());
    return caps;
  }
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", d, ": libtorch sees no CUDA device on this machine"));
  }
  int index = 0;
  (void)absl::SimpleAtoi(absl::string_view(d).substr(5), &index);
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", d, ": this machine has ", count, " CUDA device(s)"));
  }
  caps.set_device_kind(v1::DEVICE_KIND_CUDA);
  caps.set_device_memory_bytes(0);  // unknown to a CUDA-less build of this file: not gated
  return caps;
}

int64_t HostMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest(line);
    if (!absl::ConsumePrefix(&rest, "MemTotal:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, "kB");
    rest = absl::StripAsciiWhitespace(rest);
    int64_t kib = 0;
    if (absl::SimpleAtoi(rest, &kib) && kib > 0) return kib * 1024;
    return 0;
  }
  return 0;
}

const char* WorkerVersion() { return VPTQ_VERSION; }

}  // namespace vptq::worker
