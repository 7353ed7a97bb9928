// How vptqctl prints: `-o json` (protobuf's canonical JSON mapping, so the
// output is what any gRPC-JSON tool shows) or human tables, plus the small
// formatting helpers the tables and the progress line share.
//
//   VPTQ_ASSIGN_OR_RETURN(OutputFormat f, ParseOutputFormat(flag));   // "table" | "json"
//   out << ProtoToJson(response) << "\n";
//
//   Table t({"JOB", "PHASE", "PROGRESS"});
//   t.AddRow({job.job_id(), PhaseName(job.phase()), "3/24"});
//   t.Print(out);   // columns padded to their widest cell
//
// Pure functions and plain values; thread-safe.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "absl/status/statusor.h"
#include "vptq/v1/job.pb.h"
#include "vptq/v1/task.pb.h"

namespace vptq::cli {

enum class OutputFormat { kTable, kJson };

// "table" (or "") / "json"; INVALID_ARGUMENT naming the allowed values.
absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& name);

// Canonical proto3 JSON: field names in lowerCamelCase, enums by name, int64
// as strings, default values omitted. `pretty`: indented over several lines;
// otherwise one line (JSON lines for streams).
std::string ProtoToJson(const google::protobuf::Message& message, bool pretty = true);

// "Running", "Succeeded", ... (the enum name without its prefix, capitalised).
std::string PhaseName(v1::JobPhase phase);
std::string TaskStateName(v1::TaskState state);
std::string TaskKindName(v1::TaskKind kind);
std::string EventTypeName(v1::EventType type);

// Parses a phase filter word ("running", "RUNNING", "JOB_PHASE_RUNNING").
absl::StatusOr<v1::JobPhase> ParsePhase(const std::string& name);

// "45s", "3m05s", "2h07m"; negative -> "?".
std::string FormatDuration(int64_t seconds);
// "512 B", "1.5 KiB", "3.2 GiB".
std::string FormatBytes(int64_t bytes);
// RFC 3339 UTC with seconds ("2024-05-01T12:00:03Z"); 0 -> "-".
std::string FormatUnixMs(int64_t unix_ms);

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  // Left-aligned columns separated by two spaces, no trailing blanks.
  void Print(std::ostream& out) const;
  size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace vptq::cli
