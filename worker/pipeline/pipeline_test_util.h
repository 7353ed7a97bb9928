// Test helpers for worker/pipeline: a small random model with pre-tokenized
// calibration data, and explicit quantizer settings that fit its shapes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "worker/model/model_test_util.h"
#include "worker/pipeline/calibration.h"
#include "worker/pipeline/local_runner.h"
#include "worker/pipeline/quant_settings.h"

namespace vptq::pipeline::testing {

using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

// Deterministic ids in [0, vocab), as a stream of `n` tokens.
inline std::vector<int32_t> StreamIds(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& id : ids) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(vocab));
  }
  return ids;
}

// Explicit settings valid for every linear of the default synthetic model
// (32/48 features): v = 4, K = 16, fp32 codebooks (the model's dtype).
inline QuantSettings SmallSettings() {
  QuantSettings s;
  s.vector_len = 4;
  s.num_centroids = 16;
  s.kmeans_iters = 10;
  s.seed = 7;
  return s;
}

// A synthetic model in <scratch>/model and a calibration stream in
// <scratch>/calib.tokens; every test gets fresh files.
class SyntheticPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    model::testing::SyntheticModelOptions o;
    o.layers = 2;
    VPTQ_ASSERT_OK_AND_ASSIGN(synthetic_, model::testing::WriteSyntheticModel(model_dir(), o));
    ASSERT_THAT(WriteTokenFile(calib_path(), StreamIds(4000, o.vocab, 3)), IsOk());
    ASSERT_THAT(WriteTokenFile(eval_path(), StreamIds(1500, o.vocab, 4)), IsOk());
  }

  std::string model_dir() const { return scratch_.Sub("model"); }
  std::string calib_path() const { return scratch_.Sub("calib.tokens"); }
  std::string eval_path() const { return scratch_.Sub("eval.tokens"); }

  TextSetOptions Calibration() const {
    TextSetOptions c;
    c.paths = {calib_path()};
    c.num_sequences = 12;
    c.sequence_length = 32;
    c.seed = 1;
    return c;
  }

  LocalJob Job() const {
    LocalJob job;
    job.model_dir = model_dir();
    job.calibration = Calibration();
    job.num_shards = 2;
    job.quant = SmallSettings();
    EvalOptions e;
    e.text.paths = {eval_path()};
    e.text.num_sequences = 6;
    e.text.sequence_length = 32;
    job.eval = e;
    return job;
  }

  model::testing::ScratchDir scratch_{"pipeline"};
  model::testing::SyntheticModel synthetic_;
};

}  // namespace vptq::pipeline::testing
