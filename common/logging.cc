#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vptq {
namespace {

std::atomic<bool> g_json{true};

std::shared_ptr<spdlog::logger> Logger() {
  static std::once_flag once;
  static std::shared_ptr<spdlog::logger> logger;
  std::call_once(once, [] {
    logger = spdlog::stderr_logger_mt("vptq");
    logger->set_pattern("%v");
    logger->flush_on(spdlog::level::info);
  });
  return logger;
}

void Emit(spdlog::level::level_enum level, std::string_view name,
          std::string_view msg, const nlohmann::json& fields) {
  auto logger = Logger();
  if (!logger->should_log(level)) return;
  logger->log(level, "{}", FormatLogLine(name, msg, fields, g_json.load()));
}

}  // namespace

std::string FormatLogLine(std::string_view level, std::string_view msg,
                          const nlohmann::json& fields, bool json) {
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                          absl::UTCTimeZone());
  if (json) {
    nlohmann::ordered_json line;
    line["ts"] = ts;
    line["level"] = level;
    line["msg"] = msg;
    if (fields.is_object()) {
      for (const auto& [k, v] : fields.items()) {
        // A field must not overwrite the line's own ts/level/msg.
        const bool reserved = k == "ts" || k == "level" || k == "msg";
        line[reserved ? "field." + k : k] = v;
      }
    } else if (!fields.is_null()) {
      line["fields"] = fields;  // not an object: keep it rather than drop it
    }
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = ts + " " + std::string(level) + " " + std::string(msg);
  auto text = [](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>()
                         : v.dump(-1, ' ', false,
                                  nlohmann::json::error_handler_t::replace);
  };
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) out += " " + k + "=" + text(v);
  } else if (!fields.is_null()) {
    out += " fields=" + text(fields);
  }
  return out;
}

void InitLogging(const LogOptions& options) {
  g_json = options.json;
  // spdlog maps an unknown name to "off", so a typo would silence every log;
  // fall back to info and say so instead.
  spdlog::level::level_enum level = spdlog::level::from_str(options.level);
  const bool known = level != spdlog::level::off || options.level == "off";
  Logger()->set_level(known ? level : spdlog::level::info);
  if (!known) {
    log::Warn("unknown log level, using info",
              {{"level_given", options.level},
               {"levels", "trace|debug|info|warn|error|off"}});
  }
}

namespace log {
void Debug(std::string_view m, const nlohmann::json& f) {
  Emit(spdlog::level::debug, "debug", m, f);
}
void Info(std::string_view m, const nlohmann::json& f) {
  Emit(spdlog::level::info, "info", m, f);
}
void Warn(std::string_view m, const nlohmann::json& f) {
  Emit(spdlog::level::warn, "warn", m, f);
}
void Error(std::string_view m, const nlohmann::json& f) {
  Emit(spdlog::level::err, "error", m, f);
}
}  // namespace log

}  // namespace vptq
