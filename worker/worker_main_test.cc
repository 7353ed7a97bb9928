// The vptq-worker binary as a process: --help, bad flags (exit 2), and
// SIGTERM while the coordinator is unreachable (the worker keeps retrying
// until the signal, then exits 0).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace vptq::worker {
namespace {

using ::testing::HasSubstr;

std::string Binary() {
  const char* b = std::getenv("VPTQ_BUILD_DIR");
  return absl::StrCat(b != nullptr ? b : "build", "/vptq-worker");
}

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;  // the child's stdout and stderr
};

Child Spawn(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    unsetenv("VPTQ_COORDINATOR");
    unsetenv("VPTQ_WORKER_TOKEN");
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

// Reads lines until one contains `needle` (true) or the output ends.
bool ReadUntil(FILE* f, const std::string& needle, std::string* all) {
  char* line = nullptr;
  size_t cap = 0;
  bool found = false;
  while (!found && getline(&line, &cap, f) > 0) {
    all->append(line);
    found = std::string(line).find(needle) != std::string::npos;
  }
  free(line);
  return found;
}

// Output to the end, then the exit code (-1 unless it exited normally).
int Finish(Child c, std::string* all) {
  ReadUntil(c.out, "\x01never\x01", all);
  fclose(c.out);
  int status = 0;
  waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(WorkerMainTest, HelpExitsZero) {
  std::string out;
  EXPECT_EQ(Finish(Spawn({Binary(), "--help"}), &out), 0);
  EXPECT_THAT(out, HasSubstr("--coordinator"));
  EXPECT_THAT(out, HasSubstr("--devices"));
  EXPECT_THAT(out, HasSubstr("--metrics-listen"));
}

TEST(WorkerMainTest, BadFlagsExitTwoWithAClearMessage) {
  std::string out;
  EXPECT_EQ(Finish(Spawn({Binary(), "--coordinator", "127.0.0.1:1", "--devices", "gpu0"}), &out),
            2);
  EXPECT_THAT(out, HasSubstr("--devices 'gpu0'"));
  EXPECT_THAT(out, HasSubstr("cuda:0,cuda:1"));

  out.clear();
  EXPECT_EQ(Finish(Spawn({Binary(), "--coordinator", "127.0.0.1:1", "--devices", "cpu,cpu"}), &out),
            2);
  EXPECT_THAT(out, HasSubstr("twice"));

  out.clear();
  EXPECT_EQ(Finish(Spawn({Binary(), "--devices", "cpu"}), &out), 2);
  EXPECT_THAT(out, HasSubstr("--coordinator"));

  out.clear();
  EXPECT_EQ(Finish(Spawn({Binary(), "--no-such-flag"}), &out), 2);
}

TEST(WorkerMainTest, SigtermWhileTheCoordinatorIsAwayExitsZero) {
  // Nothing listens on port 1: every LeaseTask is UNAVAILABLE and retried.
  Child c = Spawn({Binary(), "--coordinator", "127.0.0.1:1", "--devices", "cpu", "--worker-id",
                   "main-test", "--lease-wait-ms", "100"});
  ASSERT_GT(c.pid, 0);
  std::string out;
  ASSERT_TRUE(ReadUntil(c.out, "lease failed; retrying", &out)) << out;
  kill(c.pid, SIGTERM);
  EXPECT_EQ(Finish(c, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("\"worker\":\"main-test/cpu\""));
  EXPECT_THAT(out, HasSubstr("worker stopped"));
}

}  // namespace
}  // namespace vptq::worker
