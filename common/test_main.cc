// Shared gtest main: quiet logging and a fixed torch thread count so results
// are reproducible between runs on the same machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/logging.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  vptq::InitLogging(vptq::LogOptions{.level = "warn"});
  return RUN_ALL_TESTS();
}
