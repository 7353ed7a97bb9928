// JobSpec -> pipeline structs: defaults, field-for-field mapping, errors,
// and that a spec the coordinator normalized maps to what the raw one does.
#include "worker/spec_mapping.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status_matchers.h"
#include "coordinator/spec_validation.h"

namespace vptq::worker {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

v1::JobSpec MinimalSpec() {
  v1::JobSpec s;
  s.mutable_model()->set_path("/models/m");
  s.mutable_calibration()->add_text_paths("/data/a.txt");
  return s;
}

TEST(SpecMappingTest, CalibrationDefaultsAreTheProtoComments) {
  VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::TextSetOptions c,
                            CalibrationFromSpec(MinimalSpec().calibration()));
  EXPECT_EQ(c.paths, std::vector<std::string>{"/data/a.txt"});
  EXPECT_EQ(c.num_sequences, 128);
  EXPECT_EQ(c.sequence_length, 512);
  EXPECT_EQ(c.seed, 0u);
  EXPECT_FALSE(c.allow_fewer);

  v1::CalibrationSpec spec = MinimalSpec().calibration();
  EXPECT_EQ(NumShardsFromSpec(spec), 8);  // ceil(128 / 16)
  spec.set_num_sequences(3);
  EXPECT_EQ(NumShardsFromSpec(spec), 1);
  spec.set_num_sequences(5000);
  EXPECT_EQ(NumShardsFromSpec(spec), 64);
  spec.set_num_shards(5);
  EXPECT_EQ(NumShardsFromSpec(spec), 5);
}

TEST(SpecMappingTest, CalibrationFieldsAreTakenAsGiven) {
  v1::CalibrationSpec spec;
  spec.add_text_paths("/x");
  spec.add_text_paths("/y");
  spec.set_num_sequences(12);
  spec.set_sequence_length(33);
  spec.set_seed(99);
  VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::TextSetOptions c, CalibrationFromSpec(spec));
  EXPECT_EQ(c.paths, (std::vector<std::string>{"/x", "/y"}));
  EXPECT_EQ(c.num_sequences, 12);
  EXPECT_EQ(c.sequence_length, 33);
  EXPECT_EQ(c.seed, 99u);
}

TEST(SpecMappingTest, QuantOptionsMapFieldForField) {
  v1::QuantOptions q;
  q.set_bits(3);
  q.set_vector_len(8);
  q.set_num_centroids(256);
  q.set_num_res_centroids(16);
  q.set_group_num(2);
  q.set_outlier_fraction(0.01);
  q.set_outlier_vector_len(4);
  q.set_outlier_num_centroids(64);
  q.set_enable_perm(false);
  q.set_enable_norm(true);
  q.set_seed(5);
  q.set_kmeans_iters(11);
  q.set_refine_iters(2);
  q.set_damp(0.05);
  q.set_block_size(64);
  q.set_output_dtype("bf16");
  q.set_kmeans_max_vectors(-1);
  VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::QuantSettings s, QuantSettingsFromSpec(q));
  EXPECT_EQ(s.bits, 3);
  EXPECT_EQ(s.vector_len, 8);
  EXPECT_EQ(s.num_centroids, 256);
  EXPECT_EQ(s.num_res_centroids, 16);
  EXPECT_EQ(s.group_num, 2);
  EXPECT_DOUBLE_EQ(s.outlier_fraction, 0.01);
  EXPECT_EQ(s.outlier_vector_len, 4);
  EXPECT_EQ(s.outlier_num_centroids, 64);
  EXPECT_EQ(s.enable_perm, std::optional<bool>(false));
  EXPECT_EQ(s.enable_norm, std::optional<bool>(true));
  EXPECT_EQ(s.seed, 5u);
  EXPECT_EQ(s.kmeans_iters, 11);
  EXPECT_EQ(s.refine_iters, 2);
  EXPECT_DOUBLE_EQ(s.damp, 0.05);
  EXPECT_EQ(s.block_size, 64);
  EXPECT_EQ(s.output_dtype, "bf16");
  EXPECT_EQ(s.kmeans_max_vectors, -1);

  VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::QuantSettings d, QuantSettingsFromSpec(v1::QuantOptions()));
  EXPECT_FALSE(d.enable_perm.has_value());
  EXPECT_FALSE(d.enable_norm.has_value());
  EXPECT_DOUBLE_EQ(pipeline::EffectiveDamp(d), 0.01);
}

TEST(SpecMappingTest, EvalDefaultsFollowTheCalibration) {
  v1::EvalSpec e;
  e.add_text_paths("/eval");
  v1::CalibrationSpec c = MinimalSpec().calibration();
  c.set_sequence_length(64);
  VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::EvalOptions o, EvalOptionsFromSpec(e, c));
  EXPECT_EQ(o.text.paths, std::vector<std::string>{"/eval"});
  EXPECT_EQ(o.text.sequence_length, 64);
  EXPECT_EQ(o.text.num_sequences, 32);
  EXPECT_TRUE(o.text.allow_fewer);
  // Calibration left at its default: the default length.
  VPTQ_ASSERT_OK_AND_ASSIGN(o, EvalOptionsFromSpec(e, MinimalSpec().calibration()));
  EXPECT_EQ(o.text.sequence_length, 512);
  e.set_sequence_length(16);
  e.set_max_sequences(3);
  VPTQ_ASSERT_OK_AND_ASSIGN(o, EvalOptionsFromSpec(e, c));
  EXPECT_EQ(o.text.sequence_length, 16);
  EXPECT_EQ(o.text.num_sequences, 3);
}

// The coordinator stores a normalized spec (defaults written in); a worker
// must resolve it exactly as `vptqctl quantize` resolves the raw one.
TEST(SpecMappingTest, NormalizedSpecMapsLikeTheRawOne) {
  v1::JobSpec raw = MinimalSpec();
  raw.mutable_quant()->set_bits(2);
  raw.mutable_eval()->add_text_paths("/eval");
  v1::JobSpec normalized = raw;
  std::vector<std::string> warnings;
  ASSERT_THAT(coordinator::NormalizeJobSpec(&normalized, &warnings), IsOk());

  VPTQ_ASSERT_OK_AND_ASSIGN(auto c1, CalibrationFromSpec(raw.calibration()));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto c2, CalibrationFromSpec(normalized.calibration()));
  EXPECT_EQ(c1.num_sequences, c2.num_sequences);
  EXPECT_EQ(c1.sequence_length, c2.sequence_length);
  EXPECT_EQ(NumShardsFromSpec(raw.calibration()), NumShardsFromSpec(normalized.calibration()));

  VPTQ_ASSERT_OK_AND_ASSIGN(auto e1, EvalOptionsFromSpec(raw.eval(), raw.calibration()));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto e2,
                            EvalOptionsFromSpec(normalized.eval(), normalized.calibration()));
  EXPECT_EQ(e1.text.sequence_length, e2.text.sequence_length);
  EXPECT_EQ(e1.text.num_sequences, e2.text.num_sequences);

  VPTQ_ASSERT_OK_AND_ASSIGN(auto q1, QuantSettingsFromSpec(raw.quant()));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto q2, QuantSettingsFromSpec(normalized.quant()));
  EXPECT_DOUBLE_EQ(pipeline::EffectiveDamp(q1), pipeline::EffectiveDamp(q2));
  for (auto [m, n] : {std::pair<int64_t, int64_t>{768, 288}, {288, 288}, {288, 768}}) {
    VPTQ_ASSERT_OK_AND_ASSIGN(auto o1, pipeline::ResolveVptqOptions(q1, "model.layers.0.mlp.up_proj",
                                                                    m, n, torch::kHalf));
    VPTQ_ASSERT_OK_AND_ASSIGN(auto o2, pipeline::ResolveVptqOptions(q2, "model.layers.0.mlp.up_proj",
                                                                    m, n, torch::kHalf));
    EXPECT_EQ(o1.vector_len, o2.vector_len);
    EXPECT_EQ(o1.num_centroids, o2.num_centroids);
    EXPECT_EQ(o1.num_res_centroids, o2.num_res_centroids);
    EXPECT_EQ(o1.enable_perm, o2.enable_perm);
    EXPECT_EQ(o1.enable_norm, o2.enable_norm);
    EXPECT_EQ(o1.block_size, o2.block_size);
    EXPECT_EQ(o1.kmeans_iters, o2.kmeans_iters);
    EXPECT_EQ(o1.kmeans_max_vectors, o2.kmeans_max_vectors);
    EXPECT_EQ(o1.seed, o2.seed);
  }
}

TEST(SpecMappingTest, BadFieldsAreInvalidArgumentNamingTheField) {
  EXPECT_THAT(CalibrationFromSpec(v1::CalibrationSpec()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("calibration.text_paths")));
  v1::CalibrationSpec c = MinimalSpec().calibration();
  c.set_num_sequences(-1);
  EXPECT_THAT(CalibrationFromSpec(c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_sequences")));
  c = MinimalSpec().calibration();
  c.set_sequence_length(1);
  EXPECT_THAT(CalibrationFromSpec(c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sequence_length")));

  v1::QuantOptions q;
  q.set_output_dtype("int8");
  EXPECT_THAT(QuantSettingsFromSpec(q),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("quant.output_dtype")));
  q = v1::QuantOptions();
  q.set_vector_len(-4);
  EXPECT_THAT(QuantSettingsFromSpec(q),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("quant.vector_len")));
  q = v1::QuantOptions();
  q.set_damp(-0.1);
  EXPECT_THAT(QuantSettingsFromSpec(q),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("quant.damp")));

  EXPECT_THAT(EvalOptionsFromSpec(v1::EvalSpec(), c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eval.text_paths")));
  v1::EvalSpec e;
  e.add_text_paths("/eval");
  e.set_max_sequences(-2);
  EXPECT_THAT(EvalOptionsFromSpec(e, c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eval.max_sequences")));
}

}  // namespace
}  // namespace vptq::worker
