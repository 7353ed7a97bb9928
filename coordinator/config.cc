#include "coordinator/config.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "coordinator/path_policy.h"
#include "coordinator/text_proto.h"

namespace vptq::coordinator {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("config field '", field, "' ", why));
}

absl::Status Readable(absl::string_view field, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("config field '", field, "': cannot read '", path, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

void ApplyConfigDefaults(v1::CoordinatorConfig* c) {
  if (c->lease_seconds() == 0) c->set_lease_seconds(30);
  if (c->max_attempts() == 0) c->set_max_attempts(5);
  if (c->backoff_initial_seconds() == 0) c->set_backoff_initial_seconds(1);
  if (c->backoff_max_seconds() == 0) c->set_backoff_max_seconds(300);
  if (c->drain_seconds() == 0) c->set_drain_seconds(30);
  if (c->artifact_chunk_bytes() == 0) c->set_artifact_chunk_bytes(int64_t{1} << 20);
  if (c->lease_poll_max_ms() == 0) c->set_lease_poll_max_ms(10000);
}

absl::Status ValidateCoordinatorConfig(const v1::CoordinatorConfig& c) {
  if (c.input_roots().empty()) {
    return Bad("input_roots", "needs at least one directory that model and text paths live under");
  }
  if (c.lease_seconds() < 1 || c.lease_seconds() > 3600) return Bad("lease_seconds", "must be in [1, 3600]");
  if (c.max_attempts() < 1 || c.max_attempts() > 100) return Bad("max_attempts", "must be in [1, 100]");
  if (!(c.backoff_initial_seconds() > 0) || c.backoff_initial_seconds() > 3600) {
    return Bad("backoff_initial_seconds", "must be in (0, 3600]");
  }
  if (c.backoff_max_seconds() < c.backoff_initial_seconds() || c.backoff_max_seconds() > 86400) {
    return Bad("backoff_max_seconds", "must be in [backoff_initial_seconds, 86400]");
  }
  if (c.drain_seconds() < 0 || c.drain_seconds() > 3600) return Bad("drain_seconds", "must be in [0, 3600]");
  if (c.artifact_chunk_bytes() < 4096 || c.artifact_chunk_bytes() > (int64_t{64} << 20)) {
    return Bad("artifact_chunk_bytes", "must be in [4096, 67108864]");
  }
  if (c.lease_poll_max_ms() < 0 || c.lease_poll_max_ms() > 60000) {
    return Bad("lease_poll_max_ms", "must be in [0, 60000]");
  }
  std::vector<std::string> in(c.input_roots().begin(), c.input_roots().end());
  std::vector<std::string> out(c.output_roots().begin(), c.output_roots().end());
  VPTQ_RETURN_IF_ERROR(PathPolicy::Create(in, out).status());
  const auto& tls = c.tls();
  if (tls.cert_path().empty() != tls.key_path().empty()) {
    return Bad("tls", "needs both cert_path and key_path (or neither)");
  }
  if (!tls.client_ca_path().empty() && tls.cert_path().empty()) {
    return Bad("tls.client_ca_path", "needs cert_path and key_path too");
  }
  if (!tls.cert_path().empty()) {
    VPTQ_RETURN_IF_ERROR(Readable("tls.cert_path", tls.cert_path()));
    VPTQ_RETURN_IF_ERROR(Readable("tls.key_path", tls.key_path()));
  }
  if (!tls.client_ca_path().empty()) {
    VPTQ_RETURN_IF_ERROR(Readable("tls.client_ca_path", tls.client_ca_path()));
  }
  return absl::OkStatus();
}

absl::Status LoadCoordinatorConfig(const std::string& path, v1::CoordinatorConfig* config) {
  VPTQ_RETURN_IF_ERROR(ReadTextProtoFile(path, config));
  ApplyConfigDefaults(config);
  return Annotate(ValidateCoordinatorConfig(*config), path);
}

SchedulerOptions SchedulerOptionsFromConfig(const v1::CoordinatorConfig& c) {
  SchedulerOptions o;
  o.lease = absl::Seconds(c.lease_seconds());
  o.max_attempts = c.max_attempts();
  o.backoff_initial = absl::Seconds(c.backoff_initial_seconds());
  o.backoff_max = absl::Seconds(c.backoff_max_seconds());
  o.keep_intermediate_artifacts = c.keep_intermediate_artifacts();
  return o;
}

absl::StatusOr<AuthTokens> TokensFromEnv(const v1::CoordinatorConfig& config) {
  AuthTokens t;
  const char* client = std::getenv(kClientTokenEnv);
  const char* worker = std::getenv(kWorkerTokenEnv);
  t.client = client != nullptr ? client : "";
  t.worker = worker != nullptr ? worker : "";
  t.allow_unauthenticated = config.allow_unauthenticated();
  VPTQ_RETURN_IF_ERROR(ValidateTokens(t));
  return t;
}

}  // namespace vptq::coordinator
