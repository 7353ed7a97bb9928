// Bearer-token authorization for the two gRPC services: clients and workers
// hold different tokens, so a leaked client token cannot lease or complete
// tasks and a worker token cannot submit or cancel jobs.
//
// Authorize(header, caller, tokens), where header is the `authorization`
// metadata value ("Bearer <token>"; empty when absent):
//   OK                 the token is the `caller` role's token
//   PERMISSION_DENIED  the token is the other role's
//   UNAUTHENTICATED    missing, malformed or unknown
// With allow_unauthenticated and no tokens configured, everything is OK.
// Comparisons take time independent of where the tokens differ. Pure.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vptq::coordinator {

enum class Caller { kClient, kWorker };

struct AuthTokens {
  std::string client;
  std::string worker;
  bool allow_unauthenticated = false;
};

inline constexpr int kMinTokenLength = 16;

absl::Status Authorize(absl::string_view authorization, Caller required, const AuthTokens& tokens);
// Tokens present (unless allow_unauthenticated), at least kMinTokenLength
// characters, and different from each other. FAILED_PRECONDITION otherwise.
absl::Status ValidateTokens(const AuthTokens& tokens);

}  // namespace vptq::coordinator
