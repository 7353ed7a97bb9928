// Human-readable views of jobs for `vptqctl get` and `list` (the JSON views
// are the protos themselves, output_format.h).
//
//   PrintJob(out, response.job());         // key: value lines
//   PrintTasks(out, response.tasks());     // one table row per task
//   PrintJobList(out, list.jobs(), now);   // one table row per job
//
// Pure formatting; thread-safe.
#pragma once

#include <ostream>
#include <string>

#include <google/protobuf/repeated_field.h>

#include "absl/time/time.h"
#include "vptq/v1/job.pb.h"

namespace vptq::cli {

// "bits 2" or "v 4, K 256, K_r 16, groups 4, outliers 1%", ...
std::string QuantSummary(const v1::QuantOptions& q);
// "2.31 bits/weight; perplexity 12.41 (fp 11.98), KL 0.0412, top-1 93.1%";
// empty when nothing was measured yet.
std::string QualitySummary(const v1::Quality& q);
// "12/34 tasks, stage quantize, linears 5/42, ETA 3m05s".
std::string ProgressSummary(const v1::Progress& p);

void PrintJob(std::ostream& out, const v1::Job& job);
void PrintTasks(std::ostream& out, const google::protobuf::RepeatedPtrField<v1::TaskStatus>& tasks);
void PrintJobList(std::ostream& out, const google::protobuf::RepeatedPtrField<v1::Job>& jobs,
                  absl::Time now);

}  // namespace vptq::cli
