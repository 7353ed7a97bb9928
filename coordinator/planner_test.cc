#include "coordinator/planner.h"

#include <filesystem>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "coordinator/test_util.h"

namespace vptq::coordinator {
namespace {

using ::testing::ElementsAre;
using ::vptq::testing::StatusIs;

PlanOptions Opts(int shards, int64_t sequences, int64_t length = 512, bool eval = false,
                 v1::DeviceKind device = v1::DEVICE_KIND_UNSPECIFIED) {
  PlanOptions o;
  o.num_shards = shards;
  o.num_sequences = sequences;
  o.sequence_length = length;
  o.eval = eval;
  o.heavy_device = device;
  return o;
}

std::map<v1::TaskKind, int> CountKinds(const std::vector<v1::TaskRecord>& tasks) {
  std::map<v1::TaskKind, int> n;
  for (const auto& t : tasks) n[t.kind()]++;
  return n;
}

TEST(PlannerTest, SmallModelGraph) {
  PlanModel model = LlamaShapedModel(LlamaShape::Stories15M());
  PlanOptions opt = Opts(4, 10, 64, true);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tasks, PlanJob("job-x", model, opt));
  auto n = CountKinds(tasks);
  EXPECT_EQ(n[v1::TASK_KIND_HESSIAN], 4);
  EXPECT_EQ(n[v1::TASK_KIND_REDUCE], 6 * 4);  // q/k/v, o, gate/up, down per layer
  EXPECT_EQ(n[v1::TASK_KIND_QUANTIZE], 6 * 7);
  EXPECT_EQ(n[v1::TASK_KIND_ASSEMBLE], 1);
  EXPECT_EQ(n[v1::TASK_KIND_EVAL], 1);
  ASSERT_EQ(tasks.size(), 4u + 24 + 42 + 2);

  std::map<std::string, const v1::TaskRecord*> by_id;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const auto& t = tasks[i];
    EXPECT_EQ(t.index(), static_cast<int>(i));
    EXPECT_EQ(t.task_id(), TaskId("job-x", static_cast<int>(i)));
    EXPECT_EQ(JobIdOfTask(t.task_id()), "job-x");
    for (const auto& d : t.deps()) {
      ASSERT_TRUE(by_id.count(d.task_id())) << t.name() << " depends on a later task";
    }
    by_id[t.task_id()] = &t;
  }

  // Shards split the sequences evenly and cover them exactly.
  int64_t covered = 0;
  for (int s = 0; s < 4; ++s) {
    const auto& h = tasks[s].payload().hessian();
    EXPECT_EQ(h.first_sequence(), covered);
    covered += h.num_sequences();
    EXPECT_EQ(h.groups_size(), 24);
    EXPECT_EQ(tasks[s].required_outputs_size(), 24);
    EXPECT_TRUE(tasks[s].deps().empty());
  }
  EXPECT_EQ(covered, 10);

  // REDUCE of layer 0's q/k/v input: every shard's partial, named per shard.
  const v1::TaskRecord* qkv = nullptr;
  for (const auto& t : tasks) {
    if (t.kind() == v1::TASK_KIND_REDUCE && t.payload().reduce().group() == "model.layers.0.qkv") {
      qkv = &t;
    }
  }
  ASSERT_NE(qkv, nullptr);
  EXPECT_THAT(qkv->payload().reduce().linears(),
              ElementsAre("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                          "model.layers.0.self_attn.v_proj"));
  ASSERT_EQ(qkv->deps_size(), 4);
  EXPECT_EQ(qkv->deps(2).task_id(), tasks[2].task_id());
  EXPECT_EQ(qkv->deps(2).output(), "hessian/model.layers.0.qkv");
  EXPECT_EQ(qkv->deps(2).input_name(), "shard-00002");

  // QUANTIZE: largest first, each depending only on its group's REDUCE.
  int64_t last_size = INT64_MAX;
  std::set<std::string> linears;
  for (const auto& t : tasks) {
    if (t.kind() != v1::TASK_KIND_QUANTIZE) continue;
    const auto& q = t.payload().quantize();
    const int64_t size = q.out_features() * q.in_features();
    EXPECT_LE(size, last_size) << q.linear();
    last_size = size;
    linears.insert(q.linear());
    ASSERT_EQ(t.deps_size(), 1);
    const v1::TaskRecord* r = by_id[t.deps(0).task_id()];
    EXPECT_EQ(r->kind(), v1::TASK_KIND_REDUCE);
    EXPECT_EQ(r->payload().reduce().group(), q.group());
    EXPECT_TRUE(t.linear());
  }
  EXPECT_EQ(linears.size(), 42u);
  // mlp (768x288) before attention (288x288).
  const auto& first_q = tasks[28].payload().quantize();
  EXPECT_EQ(first_q.out_features() * first_q.in_features(), 768 * 288);

  const v1::TaskRecord& assemble = tasks[tasks.size() - 2];
  EXPECT_EQ(assemble.kind(), v1::TASK_KIND_ASSEMBLE);
  EXPECT_EQ(assemble.deps_size(), 42);
  EXPECT_TRUE(assemble.keep_outputs());
  EXPECT_EQ(assemble.deps(0).input_name(), "model.layers.0.self_attn.q_proj");
  const v1::TaskRecord& eval = tasks.back();
  ASSERT_EQ(eval.deps_size(), 1);
  EXPECT_EQ(eval.deps(0).output(), "");
  EXPECT_EQ(eval.deps(0).input_name(), "checkpoint/");
}

TEST(PlannerTest, SeventyBShapedModel) {
  PlanModel model = LlamaShapedModel(LlamaShape::Llama70B());
  EXPECT_EQ(model.linears.size(), 80u * 7);
  EXPECT_GT(model.total_params, int64_t{68'000'000'000});
  EXPECT_LT(model.total_params, int64_t{72'000'000'000});
  PlanOptions opt = Opts(16, 256, 4096, false, v1::DEVICE_KIND_CUDA);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tasks, PlanJob("j70", model, opt));
  auto n = CountKinds(tasks);
  EXPECT_EQ(n[v1::TASK_KIND_HESSIAN], 16);
  EXPECT_EQ(n[v1::TASK_KIND_REDUCE], 320);
  EXPECT_EQ(n[v1::TASK_KIND_QUANTIZE], 560);
  EXPECT_EQ(n[v1::TASK_KIND_ASSEMBLE], 1);
  EXPECT_EQ(n[v1::TASK_KIND_EVAL], 0);
  // The first QUANTIZE is a 28672x8192 MLP linear; k/v (1024x8192) come last.
  const auto& first = tasks[16 + 320].payload().quantize();
  EXPECT_EQ(first.out_features() * first.in_features(), int64_t{28672} * 8192);
  const auto& last = tasks[16 + 320 + 559].payload().quantize();
  EXPECT_EQ(last.out_features(), 1024);
  // down_proj's input is 28672 wide; its REDUCE needs its N^2 fp64 twice.
  for (const auto& t : tasks) {
    if (t.kind() == v1::TASK_KIND_REDUCE && t.payload().reduce().group() == "model.layers.7.down") {
      EXPECT_EQ(t.payload().reduce().dim(), 28672);
      EXPECT_GE(t.requirements().min_host_memory_bytes(), int64_t{2} * 28672 * 28672 * 8);
    }
    if (t.kind() == v1::TASK_KIND_QUANTIZE || t.kind() == v1::TASK_KIND_HESSIAN) {
      EXPECT_EQ(t.requirements().device_kind(), v1::DEVICE_KIND_CUDA);
    }
    if (t.kind() == v1::TASK_KIND_REDUCE) {
      EXPECT_EQ(t.requirements().device_kind(), v1::DEVICE_KIND_UNSPECIFIED);
    }
    EXPECT_GT(t.cost(), 0);
  }
}

TEST(PlannerTest, FromHfModelDirectory) {
  std::string dir = MakeTempDir("plan_model");
  ASSERT_THAT(WriteTinyLlama(dir, /*layers=*/3), ::vptq::testing::IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(ModelLayout layout, ReadModelLayout(dir));
  PlanModel model = PlanModelFromLayout(layout);
  EXPECT_EQ(model.linears.size(), 21u);
  EXPECT_EQ(model.linears[0].group, "model.layers.0.qkv");
  EXPECT_EQ(model.linears[6].group, "model.layers.0.down");
  EXPECT_EQ(model.linears[6].in_features, 16);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto tasks, PlanJob("j", model, Opts(2, 4)));
  EXPECT_EQ(tasks.size(), 2u + 12 + 21 + 1);
  std::filesystem::remove_all(dir);
}

TEST(PlannerTest, RejectsBadInputs) {
  PlanModel empty;
  EXPECT_THAT(PlanJob("j", empty, Opts(1, 1)).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  PlanModel model = LlamaShapedModel(LlamaShape::Stories15M());
  EXPECT_THAT(PlanJob("j", model, Opts(5, 4)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PlanJob("j", model, Opts(0, 4)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  model.linears[1].in_features = 7;  // k_proj disagrees with q_proj on the shared input
  EXPECT_THAT(PlanJob("j", model, Opts(1, 1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("group")));
}

}  // namespace
}  // namespace vptq::coordinator
