// RunTask on the coordinator planner's real tasks for a tiny random model:
// every kind gives what the pipeline function gives directly, the whole
// planned job gives RunLocalJob's checkpoint byte for byte, and bad
// assignments fail with the code that says what to do.
#include "worker/task_runner.h"

#include <algorithm>
#include <new>
#include <stdexcept>

#include <c10/util/Exception.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "common/sha256.h"
#include "worker/pipeline/checkpoint_dir.h"
#include "worker/pipeline/hessian_task.h"
#include "worker/pipeline/quantize_task.h"
#include "worker/pipeline/reduce_task.h"
#include "worker/torch_threads.h"
#include "worker/worker_test_util.h"

namespace vptq::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Key;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class TaskRunnerTest : public testing::WorkerPipelineTest {};

std::vector<std::string> Keys(const std::map<std::string, double>& m) {
  std::vector<std::string> k;
  for (const auto& [name, v] : m) k.push_back(name);
  return k;
}

TEST_F(TaskRunnerTest, HessianShardIsThePipelinesShard) {
  const v1::JobSpec spec = Spec();
  const std::vector<v1::TaskRecord> plan = Plan(spec);
  const v1::TaskRecord* h = FindKind(plan, v1::TASK_KIND_HESSIAN);
  ASSERT_NE(h, nullptr);
  VPTQ_ASSERT_OK_AND_ASSIGN(TaskResult got, RunTask(Assignment(*h, spec), {}, {}));
  pipeline::HessianTaskInput in{model_dir(), Calibration(), h->payload().hessian().shard(),
                                h->payload().hessian().num_shards(), {}};
  VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::BlobMap want, pipeline::RunHessianTask(in));
  EXPECT_EQ(got.outputs, want);
  std::vector<std::string> required(h->required_outputs().begin(), h->required_outputs().end());
  std::vector<std::string> names;
  for (const auto& [name, bytes] : got.outputs) names.push_back(name);
  std::sort(required.begin(), required.end());
  EXPECT_EQ(names, required);

  // Only the groups asked for are output.
  v1::TaskAssignment one = Assignment(*h, spec);
  one.mutable_payload()->mutable_hessian()->clear_groups();
  one.mutable_payload()->mutable_hessian()->add_groups("model.layers.1.o");
  one.clear_required_outputs();
  VPTQ_ASSERT_OK_AND_ASSIGN(got, RunTask(one, {}, {}));
  EXPECT_THAT(got.outputs, ElementsAre(Key("hessian/model.layers.1.o")));
}

// The planned job through RunTask, task by task, against the pipeline's
// own functions and its sequential driver.
TEST_F(TaskRunnerTest, PlannedJobGivesTheLocalRunnersCheckpoint) {
  v1::JobSpec spec = Spec();
  spec.set_output_dir(scratch_.Sub("out"));
  const std::vector<v1::TaskRecord> plan = Plan(spec);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto done, RunPlanned(spec, {}));
  VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::LocalJobResult local, pipeline::RunLocalJob(Job()));

  int quantized = 0;
  for (const v1::TaskRecord& r : plan) {
    const TaskResult& got = done.at(r.task_id());
    for (const std::string& name : r.required_outputs()) {
      EXPECT_TRUE(got.outputs.count(name)) << r.name() << " lacks " << name;
    }
    switch (r.kind()) {
      case v1::TASK_KIND_REDUCE: {
        pipeline::ReduceTaskInput in;
        in.group = r.payload().reduce().group();
        for (const auto& [name, bytes] : InputsOf(r, done)) in.shards[name] = bytes;
        VPTQ_ASSERT_OK_AND_ASSIGN(std::string want, pipeline::RunReduceTask(in));
        EXPECT_EQ(got.outputs.at("hessian"), want) << r.name();
        EXPECT_EQ(got.outputs.at("hessian"), local.hessians.at(r.payload().reduce().group()));
        break;
      }
      case v1::TASK_KIND_QUANTIZE: {
        ++quantized;
        pipeline::QuantizeTaskInput in{model_dir(), r.payload().quantize().linear(),
                                       InputsOf(r, done).at("hessian"), Job().quant, "cpu"};
        VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::QuantizeTaskOutput want, pipeline::RunQuantizeTask(in));
        // Tensors, not bytes: the blob's stats carry timings.
        EXPECT_TRUE(testing::SameQuantizedTensors(got.outputs.at("quantized"), want.blob))
            << r.name();
        EXPECT_TRUE(testing::SameQuantizedTensors(
            got.outputs.at("quantized"), local.quantized.at(r.payload().quantize().linear())));
        EXPECT_THAT(Keys(got.metrics), ElementsAre("bits_per_weight", "proxy_loss", "seconds"));
        EXPECT_DOUBLE_EQ(got.metrics.at("proxy_loss"), want.stats.proxy_loss);
        break;
      }
      case v1::TASK_KIND_ASSEMBLE: {
        EXPECT_EQ(got.outputs, local.checkpoint.files);
        EXPECT_DOUBLE_EQ(got.metrics.at("bits_per_weight"),
                         local.checkpoint.Metrics().at("bits_per_weight"));
        // The linears alone: well under the whole file (16-bit embeddings).
        EXPECT_DOUBLE_EQ(got.metrics.at("bits_per_weight_linears"),
                         local.checkpoint.stats.bpw_linears);
        EXPECT_GT(got.metrics.at("bits_per_weight_linears"), 0);
        EXPECT_LT(got.metrics.at("bits_per_weight_linears"), got.metrics.at("bits_per_weight"));
        VPTQ_ASSERT_OK_AND_ASSIGN(pipeline::BlobMap written,
                                  pipeline::ReadCheckpointDir(spec.output_dir()));
        EXPECT_EQ(written, got.outputs);
        break;
      }
      case v1::TASK_KIND_EVAL: {
        ASSERT_TRUE(local.quality.has_value());
        const auto want = local.quality->Metrics();
        for (const char* key :
             {"perplexity", "perplexity_original", "kl_divergence", "top1_agreement"}) {
          ASSERT_TRUE(got.metrics.count(key)) << key;
          EXPECT_DOUBLE_EQ(got.metrics.at(key), want.at(key)) << key;
        }
        EXPECT_THAT(got.outputs, ElementsAre(Key("eval.json")));
        EXPECT_THAT(got.outputs.at("eval.json"), HasSubstr("kl_divergence"));
        break;
      }
      default:
        break;
    }
  }
  EXPECT_EQ(quantized, 14);
}

TEST_F(TaskRunnerTest, BadAssignmentsFailWithTheirCode) {
  const v1::JobSpec spec = Spec();
  const std::vector<v1::TaskRecord> plan = Plan(spec);
  const v1::TaskRecord* h = FindKind(plan, v1::TASK_KIND_HESSIAN);
  const v1::TaskRecord* q = FindKind(plan, v1::TASK_KIND_QUANTIZE);
  const v1::TaskRecord* a = FindKind(plan, v1::TASK_KIND_ASSEMBLE);
  const v1::TaskRecord* e = FindKind(plan, v1::TASK_KIND_EVAL);
  ASSERT_TRUE(h && q && a && e);

  // QUANTIZE without its Hessian.
  EXPECT_THAT(RunTask(Assignment(*q, spec), {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'hessian'")));
  // ASSEMBLE without a linear.
  EXPECT_THAT(RunTask(Assignment(*a, spec), {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no input for linear")));
  // EVAL of a job without an eval block.
  v1::JobSpec no_eval = spec;
  no_eval.clear_eval();
  EXPECT_THAT(RunTask(Assignment(*e, no_eval), {{"checkpoint/config.json", "{}"}}, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // A HESSIAN shard planned for other sequences than the spec gives.
  v1::TaskAssignment shifted = Assignment(*h, spec);
  shifted.mutable_payload()->mutable_hessian()->set_first_sequence(1);
  EXPECT_THAT(RunTask(shifted, {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("planned for sequences")));
  // No payload; no model path.
  v1::TaskAssignment empty = Assignment(*h, spec);
  empty.clear_payload();
  EXPECT_THAT(RunTask(empty, {}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  v1::TaskAssignment no_model = Assignment(*h, spec);
  no_model.mutable_spec()->clear_model();
  EXPECT_THAT(RunTask(no_model, {}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  // A bad spec field.
  v1::TaskAssignment bad_dtype = Assignment(*q, spec);
  bad_dtype.mutable_spec()->mutable_quant()->set_output_dtype("int4");
  EXPECT_THAT(RunTask(bad_dtype, {{"hessian", "x"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("output_dtype")));
  // A corrupt Hessian is the pipeline's INVALID_ARGUMENT.
  EXPECT_THAT(RunTask(Assignment(*q, spec), {{"hessian", "not a hessian"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Cancelled before it starts.
  TaskRunOptions cancelled;
  cancelled.cancelled = [] { return true; };
  EXPECT_THAT(RunTask(Assignment(*h, spec), {}, cancelled),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(TaskRunnerTest, QuantizeChecksThePlannedShape) {
  const v1::JobSpec spec = Spec();
  VPTQ_ASSERT_OK_AND_ASSIGN(auto done, RunPlanned([&] {
    v1::JobSpec s = spec;
    s.clear_eval();
    return s;
  }(), {}));
  const std::vector<v1::TaskRecord> plan = Plan(spec);
  const v1::TaskRecord* q = FindKind(plan, v1::TASK_KIND_QUANTIZE);
  v1::TaskAssignment wrong = Assignment(*q, spec);
  wrong.mutable_payload()->mutable_quantize()->set_out_features(7);
  EXPECT_THAT(RunTask(wrong, InputsOf(*q, done), {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("planned as 7x")));
}

TEST(TaskExceptionTest, OutOfMemoryIsResourceExhausted) {
  const c10::OutOfMemoryError oom("alloc.cpp", 1, "ptr", "CUDA out of memory. Tried to allocate 2 GiB",
                                  "");
  EXPECT_THAT(StatusFromTaskException(oom, "QUANTIZE task t"),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("QUANTIZE task t")));
  EXPECT_THAT(StatusFromTaskException(std::bad_alloc(), "t"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  const c10::Error cpu("alloc.cpp", 1, "ptr",
                       "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1e12 bytes",
                       "");
  EXPECT_THAT(StatusFromTaskException(cpu, "t"), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(StatusFromTaskException(std::runtime_error("shape mismatch\nbacktrace..."), "t"),
              StatusIs(absl::StatusCode::kInternal, ::testing::Eq("t: shape mismatch")));
}

TEST(TorchThreadsTest, ScopeSetsAndRestores) {
  const int before = CurrentTorchThreads();
  const int want = before == 1 ? 2 : 1;
  {
    TorchThreadsScope scope(want);
    EXPECT_EQ(CurrentTorchThreads(), want);
  }
  EXPECT_EQ(CurrentTorchThreads(), before);
  {
    TorchThreadsScope untouched(0);
    EXPECT_EQ(CurrentTorchThreads(), before);
  }
}

}  // namespace
}  // namespace vptq::worker

namespace vptq::worker {
namespace {

// EXPERIMENT (temporary): which task outputs depend on the torch thread count.
class ThreadExperiment : public ::testing::Test {};
TEST_F(ThreadExperiment, DISABLED_Compare) {
  model::testing::ScratchDir scratch("threads");
  model::testing::SyntheticModelOptions mo;
  mo.hidden = 256;
  mo.intermediate = 512;
  mo.layers = 1;
  mo.heads = 4;
  mo.kv_heads = 4;
  mo.vocab = 512;
  mo.max_positions = 128;
  ASSERT_THAT(model::testing::WriteSyntheticModel(scratch.Sub("model"), mo), IsOk());
  ASSERT_THAT(pipeline::WriteTokenFile(scratch.Sub("calib.tokens"),
                                       pipeline::testing::StreamIds(20000, mo.vocab, 3)),
              IsOk());
  v1::JobSpec spec;
  spec.mutable_model()->set_path(scratch.Sub("model"));
  spec.mutable_calibration()->add_text_paths(scratch.Sub("calib.tokens"));
  spec.mutable_calibration()->set_num_sequences(16);
  spec.mutable_calibration()->set_sequence_length(128);
  spec.mutable_calibration()->set_num_shards(1);
  spec.mutable_quant()->set_vector_len(4);
  spec.mutable_quant()->set_num_centroids(256);
  spec.mutable_eval()->add_text_paths(scratch.Sub("calib.tokens"));
  spec.mutable_eval()->set_max_sequences(8);
  auto layout = ReadModelLayout(scratch.Sub("model"));
  ASSERT_TRUE(layout.ok());
  coordinator::PlanOptions po;
  po.num_shards = 1;
  po.num_sequences = 16;
  po.sequence_length = 128;
  po.eval = true;
  auto plan = coordinator::PlanJob("j", coordinator::PlanModelFromLayout(*layout), po);
  ASSERT_TRUE(plan.ok());
  std::map<int, std::map<std::string, TaskResult>> by_threads;
  for (int threads : {1, 2, 4}) {
    TaskRunOptions o;
    o.torch_threads = threads;
    auto& done = by_threads[threads];
    for (const auto& r : *plan) {
      auto out = RunTask(testing::AssignmentFor(r, spec),
                         testing::InputsFrom(r, done), o);
      ASSERT_TRUE(out.ok()) << out.status();
      done[r.task_id()] = *std::move(out);
    }
  }
  for (int threads : {1, 2, 4}) {
    for (const auto& r : *plan) {
      const auto& a = by_threads[threads].at(r.task_id());
      std::string digest;
      if (r.kind() == v1::TASK_KIND_QUANTIZE) {
        auto p = pipeline::ParseQuantizedBlob(a.outputs.at("quantized"), "x");
        auto t = p->PackedTensors();
        Sha256 h;
        for (const auto& [n, x] : *t) {
          auto c = x.contiguous();
          h.Update(c.data_ptr(), static_cast<size_t>(c.nbytes()));
        }
        digest = h.HexDigest().substr(0, 16) + absl::StrFormat(" loss=%.17g", p->stats.proxy_loss);
      } else if (r.kind() == v1::TASK_KIND_EVAL) {
        for (const char* k : {"perplexity", "kl_divergence", "top1_agreement"}) {
          digest += absl::StrFormat("%s=%.17g ", k, a.metrics.at(k));
        }
      } else {
        Sha256 h;
        for (const auto& [n, b] : a.outputs) h.Update(b);
        digest = h.HexDigest().substr(0, 16);
      }
      std::printf("T%d %-45s %s\n", threads, r.name().c_str(), digest.c_str());
    }
  }
}

}  // namespace
}  // namespace vptq::worker
