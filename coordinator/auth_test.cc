#include "coordinator/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status_matchers.h"

namespace vptq::coordinator {
namespace {

using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

AuthTokens Tokens(std::string client, std::string worker, bool allow = false) {
  AuthTokens t;
  t.client = std::move(client);
  t.worker = std::move(worker);
  t.allow_unauthenticated = allow;
  return t;
}

const AuthTokens kTokens = Tokens("client-token-0123456789", "worker-token-0123456789");

TEST(AuthTest, RightTokenForEachService) {
  EXPECT_THAT(Authorize("Bearer client-token-0123456789", Caller::kClient, kTokens), IsOk());
  EXPECT_THAT(Authorize("Bearer worker-token-0123456789", Caller::kWorker, kTokens), IsOk());
  EXPECT_THAT(Authorize("bearer worker-token-0123456789", Caller::kWorker, kTokens), IsOk());
}

TEST(AuthTest, OtherRolesTokenIsPermissionDenied) {
  EXPECT_THAT(Authorize("Bearer worker-token-0123456789", Caller::kClient, kTokens),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Authorize("Bearer client-token-0123456789", Caller::kWorker, kTokens),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(AuthTest, MissingOrWrongIsUnauthenticated) {
  EXPECT_THAT(Authorize("", Caller::kClient, kTokens),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(Authorize("client-token-0123456789", Caller::kClient, kTokens),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(Authorize("Bearer client-token-012345678", Caller::kClient, kTokens),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(Authorize("Bearer ", Caller::kWorker, kTokens),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(AuthTest, UnauthenticatedModeOnlyWithoutTokens) {
  AuthTokens open = Tokens("", "", true);
  EXPECT_THAT(Authorize("", Caller::kWorker, open), IsOk());
  EXPECT_THAT(ValidateTokens(open), IsOk());
  AuthTokens half = Tokens("client-token-0123456789", "", true);
  EXPECT_THAT(ValidateTokens(half), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(AuthTest, ValidateTokens) {
  EXPECT_THAT(ValidateTokens(kTokens), IsOk());
  EXPECT_THAT(ValidateTokens({}), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ValidateTokens(Tokens("short", "worker-token-0123456789")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ValidateTokens(Tokens("same-token-0123456789", "same-token-0123456789")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace vptq::coordinator
