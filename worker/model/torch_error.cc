#include "worker/model/torch_error.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace vptq::model {

absl::Status TorchError(const std::exception& e, std::string_view context) {
  const std::string what = e.what();
  // c10::Error keeps a backtrace after the first line; the first line says it.
  const std::string first = what.substr(0, what.find('\n'));
  const std::string message = absl::StrCat(std::string(context), ": ", first);
  if (what.find("out of memory") != std::string::npos ||
      what.find("can't allocate memory") != std::string::npos ||
      dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace vptq::model
