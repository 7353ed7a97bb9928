#include "worker/pipeline/local_runner.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/hf_config.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/pipeline/checkpoint_dir.h"
#include "worker/pipeline/hessian_blob.h"
#include "worker/pipeline/hessian_task.h"
#include "worker/pipeline/quantize_task.h"
#include "worker/pipeline/reduce_task.h"
#include "worker/quant/hessian.h"

namespace vptq::pipeline {
namespace {

namespace fs = std::filesystem;

constexpr char kComplete[] = "_complete";

nlohmann::ordered_json JobFingerprint(const LocalJob& job) {
  const QuantSettings& q = job.quant;
  nlohmann::ordered_json j;
  j["model_dir"] = fs::absolute(job.model_dir).lexically_normal().string();
  j["calibration"] = {{"paths", job.calibration.paths},
                      {"num_sequences", job.calibration.num_sequences},
                      {"sequence_length", job.calibration.sequence_length},
                      {"seed", job.calibration.seed}};
  j["num_shards"] = job.num_shards;
  j["quant"] = {{"bits", q.bits},
                {"vector_len", q.vector_len},
                {"num_centroids", q.num_centroids},
                {"num_res_centroids", q.num_res_centroids},
                {"group_num", q.group_num},
                {"outlier_fraction", q.outlier_fraction},
                {"outlier_vector_len", q.outlier_vector_len},
                {"outlier_num_centroids", q.outlier_num_centroids},
                {"enable_perm", q.enable_perm ? nlohmann::ordered_json(*q.enable_perm) : nlohmann::ordered_json()},
                {"enable_norm", q.enable_norm ? nlohmann::ordered_json(*q.enable_norm) : nlohmann::ordered_json()},
                {"seed", q.seed},
                {"kmeans_iters", q.kmeans_iters},
                {"refine_iters", q.refine_iters},
                {"damp", q.damp},
                {"block_size", q.block_size},
                {"output_dtype", q.output_dtype},
                {"kmeans_max_vectors", q.kmeans_max_vectors}};
  return j;
}

// Task outputs kept on disk: <dir>/<task>/<escaped blob name> + _complete.
class StateStore {
 public:
  static absl::StatusOr<StateStore> Open(const std::string& dir, const LocalJob& job) {
    StateStore s;
    s.dir_ = dir;
    if (dir.empty()) return s;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return ErrnoStatus(ec.value(), "create directory", dir);
    const std::string job_path = (fs::path(dir) / "job.json").string();
    const std::string want = JobFingerprint(job).dump(2) + "\n";
    if (fs::exists(job_path, ec)) {
      VPTQ_ASSIGN_OR_RETURN(std::string have, ReadFile(job_path));
      if (have != want) {
        return absl::FailedPreconditionError(absl::StrCat(
            "state directory ", dir, " holds the outputs of another job (its job.json "
            "differs); use a fresh state directory"));
      }
    } else if (!fs::is_empty(dir, ec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "state directory ", dir, " is not empty and has no job.json; use a fresh one"));
    } else {
      VPTQ_RETURN_IF_ERROR(WriteFileAtomic(job_path, want));
    }
    return s;
  }

  bool enabled() const { return !dir_.empty(); }

  std::optional<BlobMap> Load(const std::string& task) const {
    if (!enabled()) return std::nullopt;
    const fs::path d = fs::path(dir_) / Escape(task);
    std::error_code ec;
    if (!fs::exists(d / kComplete, ec)) return std::nullopt;
    BlobMap out;
    for (const fs::directory_entry& e : fs::directory_iterator(d, ec)) {
      const std::string name = e.path().filename().string();
      if (name == kComplete || name.find(".tmp.") != std::string::npos) continue;
      absl::StatusOr<std::string> bytes = ReadFile(e.path().string());
      if (!bytes.ok()) return std::nullopt;
      out[Unescape(name)] = *std::move(bytes);
    }
    if (ec) return std::nullopt;
    return out;
  }

  absl::Status Save(const std::string& task, const BlobMap& blobs) const {
    if (!enabled()) return absl::OkStatus();
    const fs::path d = fs::path(dir_) / Escape(task);
    std::error_code ec;
    fs::remove_all(d, ec);
    fs::create_directories(d, ec);
    if (ec) return ErrnoStatus(ec.value(), "create directory", d.string());
    for (const auto& [name, bytes] : blobs) {
      VPTQ_RETURN_IF_ERROR(WriteFileAtomic((d / Escape(name)).string(), bytes));
    }
    return WriteFileAtomic((d / kComplete).string(), "");
  }

 private:
  static std::string Escape(const std::string& s) {
    return absl::StrReplaceAll(s, {{"%", "%25"}, {"/", "%2F"}});
  }
  static std::string Unescape(const std::string& s) {
    return absl::StrReplaceAll(s, {{"%2F", "/"}, {"%25", "%"}});
  }
  std::string dir_;
};

void Report(const LocalJob& job, const std::string& stage, int64_t done, int64_t total,
            const std::string& item) {
  if (job.progress) job.progress(LocalProgress{stage, done, total, item});
}

double Since(absl::Time t) { return absl::ToDoubleSeconds(absl::Now() - t); }

}  // namespace

absl::StatusOr<BlobMap> RunHessianStages(const LocalJob& job, LocalJobResult* result) {
  VPTQ_ASSIGN_OR_RETURN(StateStore state, StateStore::Open(job.state_dir, job));
  VPTQ_ASSIGN_OR_RETURN(ModelLayout layout, ReadModelLayout(job.model_dir));
  if (job.num_shards < 1) return absl::InvalidArgumentError("num_shards must be >= 1");
  const std::vector<std::string> groups = HessianGroups(layout.config.num_hidden_layers);

  // Reduce outputs already there make the shards unnecessary.
  BlobMap hessians;
  for (const std::string& g : groups) {
    std::optional<BlobMap> stored = state.Load("reduce/" + g);
    if (stored && stored->count(std::string(kReduceOutput)) &&
        DecodeFinalizedHessian(stored->at(std::string(kReduceOutput)), g).ok()) {
      hessians[g] = stored->at(std::string(kReduceOutput));
    }
  }
  if (hessians.size() == groups.size()) {
    result->tasks_reused += static_cast<int64_t>(groups.size());
    return hessians;
  }

  absl::Time t = absl::Now();
  std::vector<BlobMap> shards(static_cast<size_t>(job.num_shards));
  for (int64_t s = 0; s < job.num_shards; ++s) {
    const std::string task = absl::StrCat("hessian-", ReduceInputName(s));
    std::optional<BlobMap> stored = state.Load(task);
    bool ok = stored.has_value();
    for (const std::string& g : groups) {
      if (!ok) break;
      auto it = stored->find(HessianOutputName(g));
      ok = it != stored->end() && quant::HessianAccumulator::Deserialize(it->second).ok();
    }
    if (ok) {
      shards[static_cast<size_t>(s)] = *std::move(stored);
      ++result->tasks_reused;
    } else {
      HessianTaskInput in{job.model_dir, job.calibration, s, job.num_shards, job.compute};
      absl::StatusOr<BlobMap> out = RunHessianTask(in);
      if (!out.ok()) return Annotate(out.status(), "HESSIAN shard ", s);
      VPTQ_RETURN_IF_ERROR(state.Save(task, *out));
      shards[static_cast<size_t>(s)] = *std::move(out);
      ++result->tasks_run;
    }
    Report(job, "hessian", s + 1, job.num_shards, task);
  }
  result->seconds.hessian += Since(t);

  t = absl::Now();
  int64_t done = 0;
  for (const std::string& g : groups) {
    ++done;
    if (hessians.count(g)) continue;
    ReduceTaskInput in;
    in.group = g;
    in.damp = EffectiveDamp(job.quant);
    for (int64_t s = 0; s < job.num_shards; ++s) {
      in.shards[ReduceInputName(s)] = shards[static_cast<size_t>(s)].at(HessianOutputName(g));
    }
    absl::StatusOr<std::string> h = RunReduceTask(in);
    if (!h.ok()) return Annotate(h.status(), "REDUCE ", g);
    VPTQ_RETURN_IF_ERROR(state.Save("reduce/" + g, {{std::string(kReduceOutput), *h}}));
    hessians[g] = *std::move(h);
    ++result->tasks_run;
    Report(job, "reduce", done, static_cast<int64_t>(groups.size()), g);
  }
  result->seconds.reduce += Since(t);
  return hessians;
}

absl::StatusOr<BlobMap> RunQuantizeStage(const LocalJob& job, const BlobMap& hessians,
                                         LocalJobResult* result) {
  VPTQ_ASSIGN_OR_RETURN(StateStore state, StateStore::Open(job.state_dir, job));
  VPTQ_ASSIGN_OR_RETURN(ModelLayout layout, ReadModelLayout(job.model_dir));
  std::vector<const LinearSpec*> order;
  for (const LinearSpec& l : layout.linears) order.push_back(&l);
  std::stable_sort(order.begin(), order.end(), [](const LinearSpec* a, const LinearSpec* b) {
    return a->out_features * a->in_features > b->out_features * b->in_features;
  });
  const absl::Time t = absl::Now();
  BlobMap quantized;
  int64_t done = 0;
  for (const LinearSpec* l : order) {
    ++done;
    const std::string task = "quantize/" + l->name;
    std::optional<BlobMap> stored = state.Load(task);
    if (stored && stored->count(std::string(kQuantizeOutput))) {
      const std::string& bytes = stored->at(std::string(kQuantizeOutput));
      absl::StatusOr<ParsedQuantizedBlob> p = ParseQuantizedBlob(bytes, l->name);
      if (p.ok() && ValidateQuantizedBlob(*p).ok()) {
        result->linears[l->name] = p->stats;
        quantized[l->name] = bytes;
        ++result->tasks_reused;
        continue;
      }
    }
    const std::string group = LinearInputKey(*l);
    auto h = hessians.find(group);
    if (h == hessians.end()) {
      return absl::FailedPreconditionError(absl::StrCat("no Hessian for group ", group));
    }
    QuantizeTaskInput in{job.model_dir, l->name, h->second, job.quant, job.compute.device};
    absl::StatusOr<QuantizeTaskOutput> out = RunQuantizeTask(in);
    if (!out.ok()) return Annotate(out.status(), "QUANTIZE ", l->name);
    VPTQ_RETURN_IF_ERROR(state.Save(task, {{std::string(kQuantizeOutput), out->blob}}));
    result->linears[l->name] = out->stats;
    quantized[l->name] = std::move(out->blob);
    ++result->tasks_run;
    Report(job, "quantize", done, static_cast<int64_t>(order.size()), l->name);
  }
  result->seconds.quantize += Since(t);
  return quantized;
}

absl::StatusOr<LocalJobResult> RunLocalJob(const LocalJob& job) {
  const absl::Time start = absl::Now();
  LocalJobResult r;
  VPTQ_ASSIGN_OR_RETURN(r.hessians, RunHessianStages(job, &r));
  VPTQ_ASSIGN_OR_RETURN(r.quantized, RunQuantizeStage(job, r.hessians, &r));

  absl::Time t = absl::Now();
  AssembleTaskInput ai{job.model_dir, r.quantized, job.assemble};
  ai.options.output_dtype = job.quant.output_dtype;
  absl::StatusOr<AssembleTaskOutput> assembled = RunAssembleTask(ai);
  if (!assembled.ok()) return Annotate(assembled.status(), "ASSEMBLE");
  r.checkpoint = *std::move(assembled);
  r.seconds.assemble = Since(t);
  Report(job, "assemble", 1, 1, "checkpoint");

  if (!job.output_dir.empty()) {
    t = absl::Now();
    VPTQ_RETURN_IF_ERROR(WriteCheckpointDir(r.checkpoint.files, job.output_dir));
    r.seconds.write = Since(t);
    Report(job, "write", 1, 1, job.output_dir);
  }
  if (job.eval) {
    t = absl::Now();
    EvalTaskInput ei;
    ei.model_dir = job.model_dir;
    if (!job.output_dir.empty()) {
      ei.checkpoint_dir = job.output_dir;  // what was written, read back from disk
    } else {
      ei.checkpoint_files = r.checkpoint.files;
    }
    ei.options = *job.eval;
    absl::StatusOr<QualityReport> q = RunEvalTask(ei);
    if (!q.ok()) return Annotate(q.status(), "EVAL");
    r.quality = *std::move(q);
    r.seconds.eval = Since(t);
    Report(job, "eval", 1, 1, "quality");
  }
  r.seconds.total = Since(start);
  log::Info("local job done", {{"stage", "done"},
                               {"tasks_run", r.tasks_run},
                               {"tasks_reused", r.tasks_reused},
                               {"seconds", r.seconds.total}});
  return r;
}

}  // namespace vptq::pipeline
