#include "coordinator/path_policy.h"

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "common/status_matchers.h"
#include "coordinator/test_util.h"

namespace vptq::coordinator {
namespace {

namespace fs = std::filesystem;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

class PathPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(MakeTempDir("paths")).string();
    fs::create_directories(base_ + "/models/llama");
    fs::create_directories(base_ + "/out");
    fs::create_directories(base_ + "/secret");
    ASSERT_THAT(WriteTestFile(base_ + "/secret/key", "k"), IsOk());
    ASSERT_THAT(WriteTestFile(base_ + "/models/llama/config.json", "{}"), IsOk());
    fs::create_symlink(base_ + "/secret", base_ + "/models/escape");
    fs::create_symlink(base_ + "/models/llama", base_ + "/models/alias");
    fs::create_symlink(base_ + "/secret", base_ + "/out/escape");
    VPTQ_ASSERT_OK_AND_ASSIGN(policy_, PathPolicy::Create({base_ + "/models"}, {base_ + "/out"}));
  }
  void TearDown() override { fs::remove_all(base_); }

  std::string base_;
  PathPolicy policy_;
};

TEST_F(PathPolicyTest, InputsUnderRootResolve) {
  VPTQ_ASSERT_OK_AND_ASSIGN(auto p, policy_.ResolveInput(base_ + "/models/llama"));
  EXPECT_EQ(p, base_ + "/models/llama");
  VPTQ_ASSERT_OK_AND_ASSIGN(auto q, policy_.ResolveInput(base_ + "/models/./llama/config.json"));
  EXPECT_EQ(q, base_ + "/models/llama/config.json");
  // A symlink that stays inside the root is fine and resolves to its target.
  VPTQ_ASSERT_OK_AND_ASSIGN(auto a, policy_.ResolveInput(base_ + "/models/alias"));
  EXPECT_EQ(a, base_ + "/models/llama");
}

TEST_F(PathPolicyTest, DotDotAndSymlinkEscapesAreDenied) {
  EXPECT_THAT(policy_.ResolveInput(base_ + "/models/../secret/key"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(policy_.ResolveInput(base_ + "/models/escape/key"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(policy_.ResolveInput(base_ + "/models/escape"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(policy_.ResolveInput("/etc/passwd"), StatusIs(absl::StatusCode::kPermissionDenied));
  // A sibling whose name starts like the root is not under it.
  fs::create_directories(base_ + "/models2");
  EXPECT_THAT(policy_.ResolveInput(base_ + "/models2"),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(PathPolicyTest, BadSyntaxAndMissing) {
  EXPECT_THAT(policy_.ResolveInput(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(policy_.ResolveInput("models/llama"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(policy_.ResolveInput(std::string("/a\0b", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(policy_.ResolveInput(base_ + "/models/nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PathPolicyTest, Outputs) {
  VPTQ_ASSERT_OK_AND_ASSIGN(auto p, policy_.ResolveOutput(base_ + "/out/new/model"));
  EXPECT_EQ(p, base_ + "/out/new/model");
  EXPECT_THAT(policy_.ResolveOutput(base_ + "/out"),
              StatusIs(absl::StatusCode::kPermissionDenied));  // the root itself
  EXPECT_THAT(policy_.ResolveOutput(base_ + "/out/new/../../secret/x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(policy_.ResolveOutput(base_ + "/out/../secret/x"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(policy_.ResolveOutput(base_ + "/out/escape/x"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(policy_.ResolveOutput(base_ + "/models/llama/out"),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(PathPolicyCreateTest, RootsMustExist) {
  EXPECT_THAT(PathPolicy::Create({"/no/such/root"}, {}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(PathPolicy::Create({"relative"}, {}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(IsUnderRoot("/a/b", "/"));
  EXPECT_TRUE(IsUnderRoot("/a/b", "/a"));
  EXPECT_FALSE(IsUnderRoot("/ab", "/a"));
}

}  // namespace
}  // namespace vptq::coordinator
