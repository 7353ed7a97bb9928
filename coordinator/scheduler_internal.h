// Internals of Scheduler shared by its source files: the in-memory job and
// task nodes, the Batch that turns one state change into one
// JobStore::Apply, and small helpers. Not part of the interface.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coordinator/clock.h"
#include "coordinator/scheduler.h"

namespace vptq::coordinator {

namespace scheduler_internal {

inline constexpr int kNumKinds = 6;  // TaskKind values 0..5

inline bool IsTerminal(v1::JobPhase p) {
  return p == v1::JOB_PHASE_SUCCEEDED || p == v1::JOB_PHASE_FAILED ||
         p == v1::JOB_PHASE_CANCELLED;
}

inline bool TaskFinished(v1::TaskState s) {
  return s == v1::TASK_STATE_SUCCEEDED || s == v1::TASK_STATE_FAILED ||
         s == v1::TASK_STATE_CANCELLED;
}

inline int KindIndex(v1::TaskKind k) {
  int i = static_cast<int>(k);
  return i >= 0 && i < kNumKinds ? i : 0;
}

inline absl::string_view KindName(v1::TaskKind k) {
  switch (k) {
    case v1::TASK_KIND_HESSIAN: return "hessian";
    case v1::TASK_KIND_REDUCE: return "reduce";
    case v1::TASK_KIND_QUANTIZE: return "quantize";
    case v1::TASK_KIND_ASSEMBLE: return "assemble";
    case v1::TASK_KIND_EVAL: return "eval";
    default: return "unspecified";
  }
}

inline absl::string_view PhaseName(v1::JobPhase p) {
  switch (p) {
    case v1::JOB_PHASE_PENDING: return "pending";
    case v1::JOB_PHASE_RUNNING: return "running";
    case v1::JOB_PHASE_SUCCEEDED: return "succeeded";
    case v1::JOB_PHASE_FAILED: return "failed";
    case v1::JOB_PHASE_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

inline void SetStatusProto(v1::StatusProto* out, const absl::Status& s) {
  out->set_code(static_cast<int32_t>(s.code()));
  out->set_message(std::string(s.message()));
}

inline void SetCondition(v1::Job* job, absl::string_view type, bool status, absl::string_view reason,
                         absl::string_view message, absl::Time now) {
  for (auto& c : *job->mutable_conditions()) {
    if (c.type() == type) {
      if (c.status() == status) return;
      c.set_status(status);
      c.set_reason(std::string(reason));
      c.set_message(std::string(message));
      c.set_last_transition_unix_ms(ToUnixMs(now));
      return;
    }
  }
  v1::Condition* c = job->add_conditions();
  c->set_type(std::string(type));
  c->set_status(status);
  c->set_reason(std::string(reason));
  c->set_message(std::string(message));
  c->set_last_transition_unix_ms(ToUnixMs(now));
}

}  // namespace scheduler_internal

struct Scheduler::TaskNode {
  v1::TaskRecord rec;
  JobNode* job = nullptr;
  int pending = 0;                   // producers not yet SUCCEEDED
  std::vector<TaskNode*> producers;  // one per rec.deps() entry
  std::vector<TaskNode*> consumers;  // distinct
  // Consumers not yet SUCCEEDED that read this task's outputs: every output
  // (a dependency without an output name), or one named output. An output
  // is garbage when both counts reach zero.
  int whole_uses = 0;
  absl::flat_hash_map<std::string, int> output_uses;
  bool queued = false;
  bool delayed = false;
  bool leased = false;
  double fraction_done = 0;
};

struct Scheduler::JobNode {
  v1::JobRecord rec;
  std::vector<std::unique_ptr<TaskNode>> tasks;  // plan order; empty once finished
  bool loaded = false;
  int64_t last_seq = 0;
  int done = 0;
  int running = 0;
  int linears_done = 0;
  int linears_total = 0;
  int retries = 0;
  double cost_done = 0;
  double cost_total = 0;
  std::array<int, scheduler_internal::kNumKinds> remaining{};
  std::array<int, scheduler_internal::kNumKinds> total{};
  double proxy_sum = 0;
  double proxy_max = 0;
  int proxy_n = 0;

  v1::JobPhase phase() const { return rec.job().phase(); }
  bool terminal() const { return scheduler_internal::IsTerminal(phase()); }
};

// One state change: the records it touches, its events, its artifacts, and
// what to do once it is durable.
class Scheduler::Batch {
 public:
  void Task(TaskNode* t) {
    if (task_set_.insert(t).second) tasks_.push_back(t);
  }
  void Job(JobNode* j) {
    if (job_set_.insert(j).second) jobs_.push_back(j);
  }
  void After(std::function<void()> fn) { after_.push_back(std::move(fn)); }

  Mutation m;
  bool signal_work = false;
  std::vector<JobNode*> finished;  // unload after commit
  std::set<std::string> deleting;  // artifact ids already in m.delete_artifacts

 private:
  friend class Scheduler;
  std::vector<TaskNode*> tasks_;
  std::set<TaskNode*> task_set_;
  std::vector<JobNode*> jobs_;
  std::set<JobNode*> job_set_;
  std::vector<std::function<void()>> after_;
};

}  // namespace vptq::coordinator
