// The coordinator's configuration: the text-proto file (--config), its
// defaults and validation, and the bearer tokens from the environment.
//
//   v1::CoordinatorConfig config;
//   VPTQ_RETURN_IF_ERROR(LoadCoordinatorConfig(path, &config));  // parsed, defaulted, checked
//   VPTQ_ASSIGN_OR_RETURN(AuthTokens tokens, TokensFromEnv(config));
//
// Errors are INVALID_ARGUMENT (syntax, out-of-range values) or
// FAILED_PRECONDITION (a root or TLS file that does not exist), naming the
// field. Pure functions apart from file and environment reads.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "coordinator/auth.h"
#include "coordinator/scheduler.h"
#include "vptq/v1/config.pb.h"

namespace vptq::coordinator {

inline constexpr char kClientTokenEnv[] = "VPTQ_CLIENT_TOKEN";
inline constexpr char kWorkerTokenEnv[] = "VPTQ_WORKER_TOKEN";

// Fills zero fields with defaults (lease 30 s, 5 attempts, backoff 1 s..300 s,
// drain 30 s, 1 MiB chunks, 10 s lease polls).
void ApplyConfigDefaults(v1::CoordinatorConfig* config);
// Checks ranges, roots (exist, directories) and TLS files (readable; cert and
// key together).
absl::Status ValidateCoordinatorConfig(const v1::CoordinatorConfig& config);
// Parse + defaults + validate.
absl::Status LoadCoordinatorConfig(const std::string& path, v1::CoordinatorConfig* config);

SchedulerOptions SchedulerOptionsFromConfig(const v1::CoordinatorConfig& config);

// VPTQ_CLIENT_TOKEN / VPTQ_WORKER_TOKEN. Both required (and different)
// unless config.allow_unauthenticated.
absl::StatusOr<AuthTokens> TokensFromEnv(const v1::CoordinatorConfig& config);

}  // namespace vptq::coordinator
