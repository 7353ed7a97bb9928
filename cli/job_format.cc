#include "cli/job_format.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/output_format.h"

namespace vptq::cli {
namespace {

void Line(std::ostream& out, const std::string& key, const std::string& value) {
  if (value.empty()) return;
  out << absl::StrFormat("%-12s%s\n", key + ":", value);
}

std::string Age(int64_t create_unix_ms, absl::Time now) {
  if (create_unix_ms <= 0) return "-";
  return FormatDuration(absl::ToInt64Seconds(now - absl::FromUnixMillis(create_unix_ms)));
}

}  // namespace

std::string QuantSummary(const v1::QuantOptions& q) {
  std::vector<std::string> parts;
  if (q.bits() > 0) parts.push_back(absl::StrCat("bits ", q.bits()));
  if (q.vector_len() > 0) parts.push_back(absl::StrCat("v ", q.vector_len()));
  if (q.num_centroids() > 0) parts.push_back(absl::StrCat("K ", q.num_centroids()));
  if (q.num_res_centroids() > 0) parts.push_back(absl::StrCat("K_r ", q.num_res_centroids()));
  if (q.group_num() > 1) parts.push_back(absl::StrCat("groups ", q.group_num()));
  if (q.outlier_fraction() > 0) {
    parts.push_back(absl::StrFormat("outliers %g%%", q.outlier_fraction() * 100));
  }
  if (!q.output_dtype().empty()) parts.push_back(q.output_dtype());
  return parts.empty() ? "engine defaults" : absl::StrJoin(parts, ", ");
}

std::string QualitySummary(const v1::Quality& q) {
  std::vector<std::string> parts;
  if (q.bits_per_weight_linears() > 0) {
    parts.push_back(absl::StrFormat("%.3f bits/weight (linears)", q.bits_per_weight_linears()));
  }
  if (q.bits_per_weight() > 0) {
    parts.push_back(absl::StrFormat("%.3f bits/weight (file)", q.bits_per_weight()));
  }
  if (q.evaluated()) {
    parts.push_back(absl::StrFormat("perplexity %.3f (fp %.3f)", q.perplexity(),
                                    q.perplexity_original()));
    parts.push_back(absl::StrFormat("KL %.4f", q.kl_divergence()));
    parts.push_back(absl::StrFormat("top-1 %.1f%%", q.top1_agreement() * 100));
  }
  if (q.mean_proxy_loss() > 0) {
    parts.push_back(absl::StrFormat("proxy loss mean %.4g max %.4g", q.mean_proxy_loss(),
                                    q.max_proxy_loss()));
  }
  return absl::StrJoin(parts, "; ");
}

std::string ProgressSummary(const v1::Progress& p) {
  std::string s = absl::StrCat(p.tasks_done(), "/", p.tasks_total(), " tasks");
  if (!p.stage().empty()) absl::StrAppend(&s, ", stage ", p.stage());
  if (p.linears_total() > 0) absl::StrAppend(&s, ", linears ", p.linears_done(), "/", p.linears_total());
  if (p.tasks_running() > 0) absl::StrAppend(&s, ", ", p.tasks_running(), " running");
  if (p.stage() != "done" && p.eta_seconds() >= 0) {
    absl::StrAppend(&s, ", ETA ", FormatDuration(p.eta_seconds()));
  }
  if (p.retries() > 0) absl::StrAppend(&s, ", ", p.retries(), " retries");
  return s;
}

void PrintJob(std::ostream& out, const v1::Job& job) {
  Line(out, "Job", job.job_id());
  Line(out, "Name", job.spec().name());
  Line(out, "Phase", PhaseName(job.phase()));
  Line(out, "Progress", ProgressSummary(job.progress()));
  Line(out, "Model", job.spec().model().path());
  Line(out, "Quant", QuantSummary(job.spec().quant()));
  const auto& cal = job.spec().calibration();
  Line(out, "Calibration",
       absl::StrCat(cal.num_sequences(), " x ", cal.sequence_length(), " tokens, ",
                    cal.num_shards(), " shards, from ", absl::StrJoin(cal.text_paths(), ", ")));
  if (job.spec().has_eval()) {
    Line(out, "Eval", absl::StrJoin(job.spec().eval().text_paths(), ", "));
  }
  Line(out, "Output dir", job.spec().output_dir());
  Line(out, "Created", FormatUnixMs(job.create_unix_ms()));
  if (job.start_unix_ms() > 0) Line(out, "Started", FormatUnixMs(job.start_unix_ms()));
  if (job.end_unix_ms() > 0) {
    Line(out, "Ended",
         absl::StrCat(FormatUnixMs(job.end_unix_ms()), " (took ",
                      FormatDuration((job.end_unix_ms() - job.create_unix_ms()) / 1000), ")"));
  }
  Line(out, "Quality", QualitySummary(job.quality()));
  if (job.error().code() != 0) Line(out, "Error", job.error().message());
  for (const std::string& w : job.warnings()) Line(out, "Warning", w);
  if (!job.outputs().empty()) {
    std::vector<std::string> files;
    int64_t total = 0;
    for (const auto& f : job.outputs()) {
      files.push_back(absl::StrCat(f.path(), " (", FormatBytes(f.artifact().size_bytes()), ")"));
      total += f.artifact().size_bytes();
    }
    Line(out, "Outputs", absl::StrCat(absl::StrJoin(files, ", "), "; ", FormatBytes(total), " in all"));
  }
  std::vector<std::string> conditions;
  for (const auto& c : job.conditions()) {
    conditions.push_back(absl::StrCat(c.type(), c.status() ? "" : "=false"));
  }
  Line(out, "Conditions", absl::StrJoin(conditions, ", "));
  if (!job.request_id().empty()) Line(out, "Request id", job.request_id());
}

void PrintTasks(std::ostream& out,
                const google::protobuf::RepeatedPtrField<v1::TaskStatus>& tasks) {
  Table t({"TASK", "KIND", "STATE", "ATTEMPT", "WORKER", "SECONDS", "ERROR"});
  for (const v1::TaskStatus& s : tasks) {
    t.AddRow({s.name(), TaskKindName(s.kind()), TaskStateName(s.state()),
              s.attempt() > 0 ? absl::StrCat(s.attempt()) : "-",
              s.worker_id().empty() ? "-" : s.worker_id(),
              s.run_seconds() > 0 ? absl::StrFormat("%.1f", s.run_seconds()) : "-",
              s.last_error().code() != 0 ? s.last_error().message() : ""});
  }
  t.Print(out);
}

void PrintJobList(std::ostream& out, const google::protobuf::RepeatedPtrField<v1::Job>& jobs,
                  absl::Time now) {
  Table t({"JOB", "NAME", "PHASE", "TASKS", "STAGE", "LINEARS", "AGE"});
  for (const v1::Job& j : jobs) {
    const v1::Progress& p = j.progress();
    t.AddRow({j.job_id(), j.spec().name(), PhaseName(j.phase()),
              absl::StrCat(p.tasks_done(), "/", p.tasks_total()),
              p.stage().empty() ? "-" : p.stage(),
              p.linears_total() > 0 ? absl::StrCat(p.linears_done(), "/", p.linears_total()) : "-",
              Age(j.create_unix_ms(), now)});
  }
  t.Print(out);
}

}  // namespace vptq::cli
