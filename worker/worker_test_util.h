// Test helpers for worker/: the pipeline's synthetic model as a JobSpec,
// the coordinator planner's tasks for it as TaskAssignments, and a
// sequential in-memory executor that runs a planned job through RunTask
// (what the coordinator + workers do, without either).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/hf_config.h"
#include "common/status.h"
#include "coordinator/planner.h"
#include "worker/pipeline/pipeline_test_util.h"
#include "worker/pipeline/quantized_blob.h"
#include "worker/task_runner.h"

namespace vptq::worker::testing {

inline v1::TaskAssignment AssignmentFor(const v1::TaskRecord& r, const v1::JobSpec& spec) {
  v1::TaskAssignment a;
  a.set_task_id(r.task_id());
  a.set_job_id(r.job_id());
  a.set_name(r.name());
  a.set_kind(r.kind());
  a.set_attempt(1);
  a.set_lease_id("lease-" + r.task_id());
  *a.mutable_spec() = spec;
  *a.mutable_payload() = r.payload();
  for (const auto& o : r.required_outputs()) a.add_required_outputs(o);
  return a;
}

// A consumer's inputs from its producers' outputs (TaskDependency rules).
inline std::map<std::string, std::string> InputsFrom(
    const v1::TaskRecord& r, const std::map<std::string, TaskResult>& done) {
  std::map<std::string, std::string> inputs;
  for (const v1::TaskDependency& d : r.deps()) {
    const TaskResult& p = done.at(d.task_id());
    if (d.output().empty()) {
      for (const auto& [name, bytes] : p.outputs) inputs[d.input_name() + name] = bytes;
    } else {
      inputs[d.input_name()] = p.outputs.at(d.output());
    }
  }
  return inputs;
}

// Two "quantized" artifacts hold the same packed tensors (bit for bit) and
// the same layout and proxy loss. The blobs' stats also carry timings, so
// the bytes themselves differ from run to run.
inline ::testing::AssertionResult SameQuantizedTensors(const std::string& a,
                                                       const std::string& b) {
  auto pa = pipeline::ParseQuantizedBlob(a, "a");
  auto pb = pipeline::ParseQuantizedBlob(b, "b");
  if (!pa.ok() || !pb.ok()) return ::testing::AssertionFailure() << "unparsable blob";
  if (pa->linear != pb->linear || pa->layout_config != pb->layout_config) {
    return ::testing::AssertionFailure() << "linear or layout differs";
  }
  if (pa->stats.proxy_loss != pb->stats.proxy_loss) {
    return ::testing::AssertionFailure()
           << "proxy loss " << pa->stats.proxy_loss << " vs " << pb->stats.proxy_loss;
  }
  auto ta = pa->PackedTensors();
  auto tb = pb->PackedTensors();
  if (!ta.ok() || !tb.ok() || ta->size() != tb->size()) {
    return ::testing::AssertionFailure() << "tensor sets differ";
  }
  for (const auto& [name, t] : *ta) {
    auto it = tb->find(name);
    if (it == tb->end() || t.scalar_type() != it->second.scalar_type() ||
        !torch::equal(t, it->second)) {
      return ::testing::AssertionFailure() << "tensor " << name << " differs";
    }
  }
  return ::testing::AssertionSuccess();
}

class WorkerPipelineTest : public pipeline::testing::SyntheticPipelineTest {
 protected:
  // The same job as SyntheticPipelineTest::Job(): 12 sequences of 32 tokens
  // in 2 shards, v = 4, K = 16, 10 k-means iterations, seed 7, eval on 6
  // sequences.
  v1::JobSpec Spec() const {
    const pipeline::LocalJob job = Job();
    v1::JobSpec s;
    s.set_name("synthetic-vptq");
    s.mutable_model()->set_path(model_dir());
    v1::CalibrationSpec* c = s.mutable_calibration();
    for (const auto& p : job.calibration.paths) c->add_text_paths(p);
    c->set_num_sequences(static_cast<int32_t>(job.calibration.num_sequences));
    c->set_sequence_length(static_cast<int32_t>(job.calibration.sequence_length));
    c->set_seed(job.calibration.seed);
    c->set_num_shards(static_cast<int32_t>(job.num_shards));
    v1::QuantOptions* q = s.mutable_quant();
    q->set_vector_len(static_cast<int32_t>(job.quant.vector_len));
    q->set_num_centroids(static_cast<int32_t>(job.quant.num_centroids));
    q->set_kmeans_iters(job.quant.kmeans_iters);
    q->set_seed(job.quant.seed);
    v1::EvalSpec* e = s.mutable_eval();
    for (const auto& p : job.eval->text.paths) e->add_text_paths(p);
    e->set_sequence_length(static_cast<int32_t>(job.eval->text.sequence_length));
    e->set_max_sequences(static_cast<int32_t>(job.eval->text.num_sequences));
    return s;
  }

  // The planner's tasks for Spec(), in plan order.
  std::vector<v1::TaskRecord> Plan(const v1::JobSpec& spec) const {
    auto layout = ReadModelLayout(model_dir());
    EXPECT_TRUE(layout.ok()) << layout.status();
    coordinator::PlanOptions o;
    o.num_shards = spec.calibration().num_shards();
    o.num_sequences = spec.calibration().num_sequences();
    o.sequence_length = spec.calibration().sequence_length();
    o.eval = spec.has_eval();
    auto tasks = coordinator::PlanJob("job-test", coordinator::PlanModelFromLayout(*layout), o);
    EXPECT_TRUE(tasks.ok()) << tasks.status();
    return tasks.ok() ? *tasks : std::vector<v1::TaskRecord>{};
  }

  static v1::TaskAssignment Assignment(const v1::TaskRecord& r, const v1::JobSpec& spec) {
    return AssignmentFor(r, spec);
  }
  static std::map<std::string, std::string> InputsOf(
      const v1::TaskRecord& r, const std::map<std::string, TaskResult>& done) {
    return InputsFrom(r, done);
  }

  // Runs every planned task in plan order through RunTask.
  absl::StatusOr<std::map<std::string, TaskResult>> RunPlanned(const v1::JobSpec& spec,
                                                               const TaskRunOptions& options) {
    std::map<std::string, TaskResult> done;
    for (const v1::TaskRecord& r : Plan(spec)) {
      absl::StatusOr<TaskResult> out = RunTask(Assignment(r, spec), InputsOf(r, done), options);
      if (!out.ok()) return out.status();
      done[r.task_id()] = *std::move(out);
    }
    return done;
  }

  static const v1::TaskRecord* FindKind(const std::vector<v1::TaskRecord>& tasks,
                                        v1::TaskKind kind) {
    for (const auto& t : tasks) {
      if (t.kind() == kind) return &t;
    }
    return nullptr;
  }
};

}  // namespace vptq::worker::testing
