// Config files, job spec files and their validation.
#include "coordinator/config.h"

#include <cstdlib>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "coordinator/spec_validation.h"
#include "coordinator/test_util.h"
#include "coordinator/text_proto.h"

namespace vptq::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

std::string SourceDir() {
  const char* d = std::getenv("VPTQ_SOURCE_DIR");
  return d != nullptr ? d : ".";
}

TEST(TextProtoTest, ErrorsNameFileLineAndColumn) {
  v1::JobSpec spec;
  EXPECT_THAT(ParseTextProto("name: \"a\"\ncalibration { num_sequences: many }", "job.txt", &spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("job.txt:2:")));
  EXPECT_THAT(ParseTextProto("no_such_field: 1", "job.txt", &spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no_such_field")));
  EXPECT_THAT(ReadTextProtoFile("/no/such/file", &spec), StatusIs(absl::StatusCode::kNotFound));
}

TEST(SpecTest, ExampleSpecParsesAndNormalizes) {
  v1::JobSpec spec;
  ASSERT_THAT(ReadTextProtoFile(SourceDir() + "/coordinator/testdata/job_spec.textproto", &spec),
              IsOk());
  std::vector<std::string> warnings;
  ASSERT_THAT(NormalizeJobSpec(&spec, &warnings), IsOk());
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(spec.name(), "stories15m-2bit");
  EXPECT_EQ(spec.calibration().num_shards(), 4);
  EXPECT_EQ(spec.eval().sequence_length(), 256);  // defaults to calibration's
  EXPECT_DOUBLE_EQ(spec.quant().damp(), 0.01);
  EXPECT_EQ(spec.quant().block_size(), 128);
  EXPECT_FALSE(spec.quant().enable_norm());
  EXPECT_EQ(spec.labels().at("team"), "research");
}

TEST(SpecTest, DefaultsAndRanges) {
  v1::JobSpec spec;
  spec.mutable_model()->set_path("/m/llama-7b/");
  spec.mutable_calibration()->add_text_paths("/d/t.txt");
  spec.mutable_quant()->set_bits(3);
  std::vector<std::string> warnings;
  ASSERT_THAT(NormalizeJobSpec(&spec, &warnings), IsOk());
  EXPECT_EQ(spec.name(), "llama-7b-vptq");
  EXPECT_EQ(spec.calibration().num_sequences(), kDefaultNumSequences);
  EXPECT_EQ(spec.calibration().num_shards(), 8);  // ceil(128 / 16)
  EXPECT_EQ(spec.calibration().sequence_length(), kDefaultSequenceLength);

  auto bad = [&](auto mutate, const char* field) {
    v1::JobSpec s = spec;
    mutate(&s);
    std::vector<std::string> w;
    EXPECT_THAT(NormalizeJobSpec(&s, &w),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(field)));
  };
  bad([](v1::JobSpec* s) { s->set_name("bad name!"); }, "name");
  bad([](v1::JobSpec* s) { s->mutable_calibration()->clear_text_paths(); }, "calibration.text_paths");
  bad([](v1::JobSpec* s) { s->mutable_calibration()->set_sequence_length(1); },
      "calibration.sequence_length");
  bad([](v1::JobSpec* s) { s->set_priority(5000); }, "priority");
  bad([](v1::JobSpec* s) { s->mutable_quant()->set_output_dtype("int8"); }, "quant.output_dtype");
  bad([](v1::JobSpec* s) { s->mutable_quant()->set_bits(5); }, "quant.bits");
  bad([](v1::JobSpec* s) { s->mutable_quant()->set_damp(-1); }, "quant.damp");
  bad([](v1::JobSpec* s) {
        s->mutable_quant()->set_bits(0);
        s->mutable_quant()->set_vector_len(8);
        s->mutable_quant()->set_num_centroids(1000);
      },
      "quant.num_centroids");
  bad([](v1::JobSpec* s) { s->mutable_quant()->set_outlier_num_centroids(256); },
      "quant.outlier_vector_len");
  bad([](v1::JobSpec* s) { s->mutable_eval()->set_max_sequences(3); }, "eval.text_paths");
  bad([](v1::JobSpec* s) { s->set_device_kind(static_cast<v1::DeviceKind>(42)); }, "device_kind");
}

TEST(SpecTest, ExplicitFieldsOverrideABitsBudget) {
  v1::JobSpec spec;
  spec.mutable_model()->set_path("/m/x");
  spec.mutable_calibration()->add_text_paths("/d/t.txt");
  spec.mutable_quant()->set_bits(2);
  spec.mutable_quant()->set_vector_len(4);
  spec.mutable_quant()->set_output_dtype("fp32");
  std::vector<std::string> warnings;
  ASSERT_THAT(NormalizeJobSpec(&spec, &warnings), IsOk());
  EXPECT_TRUE(warnings.empty());
  spec.mutable_quant()->set_vector_len(5);
  ASSERT_THAT(NormalizeJobSpec(&spec, &warnings), IsOk());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("vector_len 5"));
}

TEST(SpecTest, PaperPresetsAreInsideTheKernelEnvelope) {
  v1::JobSpec spec;
  spec.mutable_model()->set_path("/m/x");
  spec.mutable_calibration()->add_text_paths("/d/t.txt");
  v1::QuantOptions* q = spec.mutable_quant();
  q->set_vector_len(12);
  q->set_num_centroids(4096);
  q->set_num_res_centroids(4096);
  q->set_group_num(4);
  q->set_outlier_fraction(0.01);
  q->set_outlier_vector_len(4);
  q->set_outlier_num_centroids(8192);
  std::vector<std::string> warnings;
  ASSERT_THAT(NormalizeJobSpec(&spec, &warnings), IsOk());
  EXPECT_TRUE(warnings.empty());
  q->set_num_res_centroids(256);  // G > 1 needs K == K_r in the stock kernels
  ASSERT_THAT(NormalizeJobSpec(&spec, &warnings), IsOk());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("group_num"));
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::canonical(MakeTempDir("config")).string();
    fs::create_directories(dir_ + "/models");
  }
  void TearDown() override { fs::remove_all(dir_); }
  absl::Status Load(const std::string& text, v1::CoordinatorConfig* out) {
    VPTQ_RETURN_IF_ERROR(WriteTestFile(dir_ + "/c.textproto", text));
    return LoadCoordinatorConfig(dir_ + "/c.textproto", out);
  }
  std::string dir_;
};

TEST_F(ConfigTest, ExampleParsesAndDefaultsApply) {
  v1::CoordinatorConfig example;
  ASSERT_THAT(ReadTextProtoFile(SourceDir() + "/coordinator/testdata/coordinator.textproto",
                                &example),
              IsOk());
  EXPECT_EQ(example.lease_seconds(), 60);
  v1::CoordinatorConfig c;
  ASSERT_THAT(Load(absl::StrCat("input_roots: \"", dir_, "/models\""), &c), IsOk());
  EXPECT_EQ(c.lease_seconds(), 30);
  EXPECT_EQ(c.max_attempts(), 5);
  EXPECT_EQ(c.drain_seconds(), 30);
  EXPECT_EQ(c.artifact_chunk_bytes(), 1 << 20);
  SchedulerOptions o = SchedulerOptionsFromConfig(c);
  EXPECT_EQ(o.lease, absl::Seconds(30));
  EXPECT_EQ(o.backoff_max, absl::Seconds(300));
}

TEST_F(ConfigTest, BadValuesAreRejected) {
  v1::CoordinatorConfig c;
  const std::string root = absl::StrCat("input_roots: \"", dir_, "/models\" ");
  EXPECT_THAT(Load("lease_seconds: 5", &c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("input_roots")));
  c.Clear();
  EXPECT_THAT(Load(root + "lease_seconds: -1", &c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lease_seconds")));
  c.Clear();
  EXPECT_THAT(Load("input_roots: \"/no/such/root\"", &c),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  c.Clear();
  EXPECT_THAT(Load(root + "tls { cert_path: \"/x.crt\" }", &c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tls")));
  c.Clear();
  EXPECT_THAT(Load(root + "tls { cert_path: \"/x.crt\" key_path: \"/x.key\" }", &c),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("tls.cert_path")));
  c.Clear();
  EXPECT_THAT(Load(root + "lease_secs: 5", &c), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ConfigTest, TokensComeFromTheEnvironment) {
  v1::CoordinatorConfig c;
  unsetenv(kClientTokenEnv);
  unsetenv(kWorkerTokenEnv);
  EXPECT_THAT(TokensFromEnv(c).status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  c.set_allow_unauthenticated(true);
  EXPECT_THAT(TokensFromEnv(c).status(), IsOk());
  c.set_allow_unauthenticated(false);
  setenv(kClientTokenEnv, "client-token-abcdefgh", 1);
  setenv(kWorkerTokenEnv, "worker-token-abcdefgh", 1);
  VPTQ_ASSERT_OK_AND_ASSIGN(AuthTokens t, TokensFromEnv(c));
  EXPECT_EQ(t.client, "client-token-abcdefgh");
  EXPECT_EQ(t.worker, "worker-token-abcdefgh");
  unsetenv(kClientTokenEnv);
  unsetenv(kWorkerTokenEnv);
}

}  // namespace
}  // namespace vptq::coordinator
