#include "coordinator/auth.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vptq::coordinator {
namespace {

// Length may leak; content does not.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace

absl::Status Authorize(absl::string_view authorization, Caller required, const AuthTokens& tokens) {
  if (tokens.allow_unauthenticated && tokens.client.empty() && tokens.worker.empty()) {
    return absl::OkStatus();
  }
  const absl::string_view service = required == Caller::kClient ? "ClientService" : "WorkerService";
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("missing 'authorization: Bearer <token>' metadata for ", service));
  }
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(authorization, kBearer)) {
    return absl::UnauthenticatedError("authorization metadata must be 'Bearer <token>'");
  }
  const absl::string_view token = authorization.substr(kBearer.size());
  const std::string& mine = required == Caller::kClient ? tokens.client : tokens.worker;
  const std::string& other = required == Caller::kClient ? tokens.worker : tokens.client;
  if (ConstantTimeEquals(token, mine)) return absl::OkStatus();
  if (ConstantTimeEquals(token, other)) {
    return absl::PermissionDeniedError(absl::StrCat(
        required == Caller::kClient ? "a worker token" : "a client token", " cannot call ",
        service));
  }
  return absl::UnauthenticatedError("unknown bearer token");
}

absl::Status ValidateTokens(const AuthTokens& t) {
  if (t.allow_unauthenticated && t.client.empty() && t.worker.empty()) return absl::OkStatus();
  if (t.client.empty() || t.worker.empty()) {
    return absl::FailedPreconditionError(
        "set VPTQ_CLIENT_TOKEN and VPTQ_WORKER_TOKEN (or allow_unauthenticated in the config "
        "for local development)");
  }
  if (t.client.size() < kMinTokenLength || t.worker.size() < kMinTokenLength) {
    return absl::FailedPreconditionError(
        absl::StrCat("bearer tokens must have at least ", kMinTokenLength, " characters"));
  }
  if (t.client == t.worker) {
    return absl::FailedPreconditionError("the client and worker tokens must differ");
  }
  return absl::OkStatus();
}

}  // namespace vptq::coordinator
