// vptqctl's hand-off of the engine commands to vptqctl-local. A successful
// exec would replace the test process, so these point at a missing binary
// and check what the command line does before and instead of the exec.
#include "cli/hand_off.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/exit_codes.h"

namespace vptq::cli {
namespace {

using ::testing::HasSubstr;

struct CliRun {
  int code;
  std::string out, err;
};

CliRun RunWithHandOff(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code =
      RunVptqctl(args, CliIo{out, err}, HandOffCommands(args, "/nonexistent/vptqctl-local"));
  return {code, out.str(), err.str()};
}

TEST(HandOffTest, HelpListsTheHandedOffCommands) {
  CliRun r = RunWithHandOff({"vptqctl", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("quantize"));
  EXPECT_THAT(r.out, HasSubstr("convert-llama2c"));
  EXPECT_THAT(r.out, HasSubstr("submit"));
}

TEST(HandOffTest, AMissingLocalBinaryIsAClearUsageError) {
  CliRun r = RunWithHandOff({"vptqctl", "quantize", "--model", "m", "--output", "o"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("vptqctl: quantize: cannot run /nonexistent/vptqctl-local"));
  EXPECT_THAT(r.err, HasSubstr("No such file"));
}

TEST(HandOffTest, FlagsAndHelpAfterTheCommandAreTheLocalBinarys) {
  // Not parsed here: an unknown flag is no usage error, and --help is not
  // answered by the stub but handed on (so the exec is tried).
  for (const char* flag : {"--help", "--no-such-flag"}) {
    CliRun r = RunWithHandOff({"vptqctl", "eval", flag});
    EXPECT_EQ(r.code, kExitUsage) << flag;
    EXPECT_THAT(r.err, HasSubstr("cannot run /nonexistent/vptqctl-local")) << flag;
  }
}

TEST(HandOffTest, SiblingBinaryIsNextToThisExecutable) {
  const std::string path = SiblingBinary("vptqctl-local");
  EXPECT_THAT(path, ::testing::EndsWith("/vptqctl-local"));
  EXPECT_THAT(path, HasSubstr("/cli/"));  // this test binary lives in build/cli/
}

}  // namespace
}  // namespace vptq::cli
