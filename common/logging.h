// JSON-lines logging on stderr (one object per line), built on spdlog.
//
//   vptq::log::Info("linear quantized", {{"job", job_id}, {"layer", 3},
//                                        {"stage", "vptq"}, {"seconds", 1.2}});
//
// Every line has "ts" (RFC 3339, UTC, ms), "level" and "msg"; the fields given
// are merged in (a field named ts/level/msg is written as "field.<name>" so it
// cannot overwrite them; fields that are not an object go under "fields").
// Invalid UTF-8 is replaced, so every line is valid JSON. Well-known field
// names: job, task, layer, stage, attempt, worker. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace vptq {

struct LogOptions {
  std::string level = "info";  // trace|debug|info|warn|error|off
  bool json = true;            // false: "LEVEL msg k=v" for humans
};

// Idempotent; may be called again to change the level. An unknown level
// name logs a warning and means "info" (never silently "off").
void InitLogging(const LogOptions& options);

namespace log {
void Debug(std::string_view msg, const nlohmann::json& fields = nullptr);
void Info(std::string_view msg, const nlohmann::json& fields = nullptr);
void Warn(std::string_view msg, const nlohmann::json& fields = nullptr);
void Error(std::string_view msg, const nlohmann::json& fields = nullptr);
}  // namespace log

// Formats one line exactly as the logger writes it (without the newline).
std::string FormatLogLine(std::string_view level, std::string_view msg,
                          const nlohmann::json& fields, bool json);

}  // namespace vptq
