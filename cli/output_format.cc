#include "cli/output_format.h"

#include <algorithm>
#include <cctype>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace vptq::cli {
namespace {

// "JOB_PHASE_RUNNING" minus "JOB_PHASE_" -> "Running"; "TASK_KIND_QUANTIZE"
// -> "Quantize".
std::string EnumWord(const std::string& full, const std::string& prefix) {
  std::string word = absl::StartsWith(full, prefix) ? full.substr(prefix.size()) : full;
  if (word.empty()) return "?";
  std::string out = absl::AsciiStrToLower(word);
  out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  for (char& c : out) {
    if (c == '_') c = ' ';
  }
  return out;
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& name) {
  if (name.empty() || name == "table") return OutputFormat::kTable;
  if (name == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output format '", name, "' (use -o table or -o json)"));
}

std::string ProtoToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.preserve_proto_field_names = false;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    // Only reachable for messages with unresolvable Any fields; none here.
    return absl::StrCat("{\"error\": \"cannot print ", message.GetTypeName(), " as JSON\"}");
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string PhaseName(v1::JobPhase phase) {
  return EnumWord(v1::JobPhase_Name(phase), "JOB_PHASE_");
}
std::string TaskStateName(v1::TaskState state) {
  return EnumWord(v1::TaskState_Name(state), "TASK_STATE_");
}
std::string TaskKindName(v1::TaskKind kind) {
  return EnumWord(v1::TaskKind_Name(kind), "TASK_KIND_");
}
std::string EventTypeName(v1::EventType type) {
  return EnumWord(v1::EventType_Name(type), "EVENT_TYPE_");
}

absl::StatusOr<v1::JobPhase> ParsePhase(const std::string& name) {
  std::string upper = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(upper, "JOB_PHASE_")) upper = "JOB_PHASE_" + upper;
  v1::JobPhase phase;
  if (!v1::JobPhase_Parse(upper, &phase) || phase == v1::JOB_PHASE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown phase '", name, "' (use pending, running, succeeded, failed or cancelled)"));
  }
  return phase;
}

std::string FormatDuration(int64_t seconds) {
  if (seconds < 0) return "?";
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  if (seconds < 100 * 3600) return absl::StrFormat("%dh%02dm", seconds / 3600, (seconds % 3600) / 60);
  return absl::StrFormat("%dd%02dh", seconds / 86400, (seconds % 86400) / 3600);
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  return absl::StrFormat(v < 10 ? "%.1f %s" : "%.0f %s", v, kUnits[unit]);
}

std::string FormatUnixMs(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < width.size(); ++i) {
      const std::string& cell = i < row.size() ? row[i] : std::string();
      line += cell;
      if (i + 1 < width.size()) line += std::string(width[i] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  print(header_);
  for (const auto& r : rows_) print(r);
}

}  // namespace vptq::cli
