// `vptqctl quantize` end to end on a tiny random model: a second run is a
// no-op, an interrupted run resumes to byte-identical files, leases of a
// killed run are given back at once, and a foreign output is left alone.
#include <filesystem>
#include <map>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"
#include "cli/embedded_run.h"
#include "cli/exit_codes.h"
#include "cli/local_commands.h"
#include "cli/quantize_spec.h"
#include "common/file_util.h"
#include "worker/model/model_test_util.h"
#include "worker/pipeline/calibration.h"
#include "worker/pipeline/pipeline_test_util.h"

namespace vptq::cli::testing {
namespace {

using ::testing::HasSubstr;

class QuantizeCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model::testing::SyntheticModelOptions o;
    o.layers = 2;
    ASSERT_THAT(model::testing::WriteSyntheticModel(Path("model"), o), IsOk());
    ASSERT_THAT(pipeline::WriteTokenFile(Path("calib.tokens"),
                                         pipeline::testing::StreamIds(3000, o.vocab, 3)),
                IsOk());
    ASSERT_THAT(pipeline::WriteTokenFile(Path("eval.tokens"),
                                         pipeline::testing::StreamIds(800, o.vocab, 4)),
                IsOk());
  }

  std::string Path(const std::string& name) const { return scratch_.Sub(name); }

  std::vector<std::string> Args(const std::string& out) const {
    return {"vptqctl", "quantize", "--model", Path("model"), "--output", out,
            "--name", "tiny", "--bits", "0", "--vector-len", "4", "--num-centroids", "16",
            "--kmeans-iters", "5", "--seed", "3", "--output-dtype", "fp32",
            "--calibration", Path("calib.tokens"), "--num-sequences", "8",
            "--sequence-length", "32", "--num-shards", "2",
            "--eval-text", Path("eval.tokens"), "--eval-sequences", "4",
            "--threads", "2"};
  }

  struct Result {
    int code;
    std::string out, err;
  };
  Result Quantize(const std::string& out_dir, std::function<bool()> interrupted = nullptr,
                  SyncStream* err_stream = nullptr) {
    std::ostringstream out;
    SyncStream own_err;
    SyncStream& err = err_stream != nullptr ? *err_stream : own_err;
    const int code = RunVptqctl(Args(out_dir), CliIo{out, err}, LocalCommands(), interrupted);
    return {code, out.str(), err.str()};
  }

  static std::map<std::string, std::string> Files(const std::string& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir)) {
      files[e.path().filename().string()] = *ReadFile(e.path().string());
    }
    return files;
  }

  model::testing::ScratchDir scratch_{"cli-quantize"};
};

TEST_F(QuantizeCommandTest, SecondRunIsANoOpWithTheSameBytes) {
  const std::string out = Path("out");
  Result r = Quantize(out);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote " + out));
  EXPECT_THAT(r.out, HasSubstr("perplexity"));
  EXPECT_THAT(r.out, HasSubstr("KL divergence"));
  EXPECT_THAT(r.out, HasSubstr("top-1 agreement"));
  EXPECT_THAT(r.out, HasSubstr("bits per weight"));
  EXPECT_THAT(r.err, HasSubstr("Job succeeded"));  // progress as log lines (not a terminal)
  const auto first = Files(out);
  ASSERT_TRUE(first.count("config.json"));
  ASSERT_TRUE(first.count("model.safetensors"));
  ASSERT_TRUE(first.count("vptq_checkpoint.json"));
  const auto mtime = fs::last_write_time(out + "/model.safetensors");

  r = Quantize(out);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("resumed job"));
  EXPECT_THAT(r.out, HasSubstr("already holds this checkpoint"));
  EXPECT_EQ(Files(out), first);
  EXPECT_EQ(fs::last_write_time(out + "/model.safetensors"), mtime);
}

TEST_F(QuantizeCommandTest, InterruptedRunResumesToTheSameCheckpoint) {
  ASSERT_EQ(Quantize(Path("fresh")).code, kExitOk);
  // Stop once the first task is done; the rerun continues from there.
  SyncStream err;
  Result r = Quantize(
      Path("resumed"), [&] { return err.str().find("Task succeeded") != std::string::npos; }, &err);
  ASSERT_EQ(r.code, kExitInterrupted) << r.err;
  EXPECT_THAT(r.err, HasSubstr("Run the same command again to resume"));
  EXPECT_FALSE(fs::exists(Path("resumed")));
  r = Quantize(Path("resumed"));
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("resumed job"));
  EXPECT_EQ(Files(Path("resumed")), Files(Path("fresh")));
}

TEST_F(QuantizeCommandTest, LeasesOfAKilledRunAreGivenBack) {
  // What kill -9 leaves behind: the job in the state store with a live
  // lease held by an embedded worker that no longer exists.
  QuantizeFlags flags;
  flags.model = Path("model");
  flags.output = Path("out");
  flags.name = "tiny";
  flags.bits = 0;
  flags.vector_len = 4;
  flags.num_centroids = 16;
  flags.kmeans_iters = 5;
  flags.seed = 3;
  flags.output_dtype = "fp32";
  flags.calibration = {Path("calib.tokens")};
  flags.num_sequences = 8;
  flags.sequence_length = 32;
  flags.num_shards = 2;
  flags.eval_text = {Path("eval.tokens")};
  flags.eval_sequences = 4;
  auto plan = PlanQuantize(flags, "");
  ASSERT_THAT(plan, IsOk());
  {
    auto store = coordinator::RocksJobStore::Open(plan->state_dir);
    ASSERT_THAT(store, IsOk());
    coordinator::CoordinatorOptions o;
    for (const auto& root : plan->input_roots) o.config.add_input_roots(root);
    auto c = coordinator::Coordinator::Open(std::move(*store), o);
    ASSERT_THAT(c, IsOk());
    v1::SubmitJobRequest submit;
    *submit.mutable_spec() = plan->spec;
    submit.set_request_id(plan->request_id);
    ASSERT_THAT((*c)->SubmitJob(submit), IsOk());
    v1::LeaseTaskRequest lease;
    lease.set_worker_id(std::string(kEmbeddedWorkerPrefix) + "0");
    auto got = (*c)->LeaseTask(lease);
    ASSERT_THAT(got, IsOk());
    ASSERT_TRUE(got->has_task());
  }
  const absl::Time start = absl::Now();
  Result r = Quantize(Path("out"));
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 interrupted tasks rerun"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(25));  // not waiting out the 30 s lease
}

TEST_F(QuantizeCommandTest, OutputThatIsNotOursIsLeftAlone) {
  const std::string out = Path("mine");
  fs::create_directories(out);
  ASSERT_THAT(WriteFileAtomic(out + "/weights.bin", "precious"), IsOk());
  Result r = Quantize(out);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("does not hold a checkpoint written by vptq"));
  EXPECT_EQ(*ReadFile(out + "/weights.bin"), "precious");
  EXPECT_FALSE(fs::exists(out + ".vptq-state"));  // nothing started

  std::ostringstream o, e;
  EXPECT_EQ(RunVptqctl({"vptqctl", "quantize", "--model", Path("nope"), "--output", Path("x")},
                       CliIo{o, e}, LocalCommands()),
            kExitUsage);
  EXPECT_THAT(e.str(), HasSubstr("--model"));
}

}  // namespace
}  // namespace vptq::cli::testing
