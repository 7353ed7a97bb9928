// submit / get / list / cancel / watch against a coordinator served over
// gRPC on 127.0.0.1: messages, JSON output and exit codes per job phase.
#include <thread>

#include <nlohmann/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"
#include "cli/exit_codes.h"
#include "coordinator/grpc_status.h"

namespace vptq::cli::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(CliServerTest, SubmitRejectsMalformedSpecsWithExit3) {
  // A syntax error: the message names the file and the line.
  const std::string broken = WriteSpec("broken.textproto", "name: \"x\"\nmodel { path: \n");
  Output r = Run({"submit", broken});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("broken.textproto"));
  EXPECT_THAT(r.err, HasSubstr("3"));  // line 3: the value never came

  const std::string unknown = WriteSpec("unknown.textproto", "modle { path: \"/x\" }\n");
  r = Run({"submit", unknown});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("modle"));

  // Well-formed but incomplete: the missing field is named, before any call.
  const std::string incomplete =
      WriteSpec("incomplete.textproto", absl::StrCat("model { path: \"", base_, "/models/tiny\" }\n"));
  r = Run({"submit", incomplete});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("calibration.text_paths"));

  // A path outside the coordinator's roots: refused by the server.
  const std::string outside = WriteSpec(
      "outside.textproto",
      absl::StrCat("model { path: \"", base_, "\" }\ncalibration { text_paths: \"", base_,
                   "/models/cal.txt\" }\n"));
  r = Run({"submit", outside});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("model.path"));

  r = Run({"submit", base_ + "/missing.textproto"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("missing.textproto"));

  // Usage errors from the command line itself.
  EXPECT_EQ(Run({"submit"}).code, kExitUsage);
  EXPECT_EQ(Run({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(Run({"get", "x", "-o", "yaml"}).code, kExitUsage);
  auto listed = server_->coordinator().ListJobs(v1::ListJobsRequest());
  ASSERT_THAT(listed, IsOk());
  EXPECT_EQ(listed->jobs_size(), 0);  // nothing was submitted by any of these
}

TEST_F(CliServerTest, SubmitPrintsTheJobAndTheNextCommands) {
  const std::string spec = WriteSpec("job.textproto", SpecText());
  Output r = Run({"submit", spec, "--request-id", "req-1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto id = server_->coordinator().scheduler().JobForRequest("req-1");
  ASSERT_TRUE(id.has_value());
  EXPECT_THAT(r.out, HasSubstr("submitted job " + *id + " (tiny-2bit): 24 tasks"));
  EXPECT_THAT(r.out, HasSubstr("vptqctl watch " + *id));
  EXPECT_THAT(r.out, HasSubstr("vptqctl get " + *id));
  EXPECT_THAT(r.out, HasSubstr("vptqctl download " + *id + " --output DIR"));
  // Idempotent per request id; -o json is the SubmitJobResponse.
  r = Run({"submit", spec, "--request-id", "req-1", "-o", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["jobId"], *id);
  EXPECT_EQ(j["job"]["spec"]["name"], "tiny-2bit");
}

TEST_F(CliServerTest, GetAndListSpeakJson) {
  const std::string a = Submit("a");
  const std::string b = Submit("b");
  CompleteAll();  // both succeed

  Output r = Run({"get", a, "-o", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["job"]["jobId"], a);
  EXPECT_EQ(j["job"]["phase"], "JOB_PHASE_SUCCEEDED");
  EXPECT_EQ(j["job"]["progress"]["tasksDone"], 24);
  EXPECT_EQ(j["job"]["outputs"].size(), 2u);
  EXPECT_FALSE(j.contains("tasks"));

  r = Run({"get", a, "--tasks", "-o", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["tasks"].size(), 24u);
  EXPECT_EQ(j["tasks"][0]["kind"], "TASK_KIND_HESSIAN");

  r = Run({"list", "-o", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["jobs"].size(), 2u);
  EXPECT_EQ(j["jobs"][0]["jobId"], b);  // newest first
  EXPECT_EQ(j["jobs"][1]["jobId"], a);

  r = Run({"list", "--phase", "running,failed", "-o", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).value("jobs", nlohmann::json::array()).size(), 0u);
  r = Run({"list", "--limit", "1", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["jobs"].size(), 1u);
  EXPECT_EQ(Run({"list", "--phase", "sleeping"}).code, kExitUsage);

  // The human views.
  r = Run({"get", a, "--tasks"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Phase:      Succeeded"));
  EXPECT_THAT(r.out, HasSubstr("quantize/model.layers.1.mlp.down_proj"));
  r = Run({"list"});
  EXPECT_THAT(r.out, HasSubstr("JOB"));
  EXPECT_THAT(r.out, HasSubstr(a));

  EXPECT_EQ(Run({"get", "job-nope"}).code, kExitUsage);
}

TEST_F(CliServerTest, ExitCodeComesFromTheFinalPhase) {
  // Succeeded -> 0.
  const std::string ok = Submit("ok");
  CompleteAll();
  Output r = Run({"watch", ok});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("job " + ok + " succeeded"));
  EXPECT_THAT(r.out, HasSubstr("vptqctl download " + ok));

  // Failed (a task reports bad input) -> 1.
  const std::string bad = Submit("bad");
  v1::LeaseTaskRequest lease;
  lease.set_worker_id("w");
  auto got = server_->coordinator().LeaseTask(lease);
  ASSERT_THAT(got, IsOk());
  ASSERT_TRUE(got->has_task());
  v1::FailTaskRequest fail;
  fail.set_worker_id("w");
  fail.set_task_id(got->task().task_id());
  fail.set_lease_id(got->task().lease_id());
  *fail.mutable_status() =
      coordinator::ToStatusProto(absl::InvalidArgumentError("calibration text is empty"));
  ASSERT_THAT(server_->coordinator().FailTask(fail), IsOk());
  r = Run({"watch", bad});
  EXPECT_EQ(r.code, kExitFailed) << r.err;
  EXPECT_THAT(r.out, HasSubstr("calibration text is empty"));

  // Cancelled -> 2; cancelling again is fine; a finished job cannot be.
  const std::string gone = Submit("gone");
  r = Run({"cancel", gone, "--reason", "not needed"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Cancelled"));
  EXPECT_EQ(Run({"cancel", gone}).code, kExitOk);
  r = Run({"watch", gone, "-o", "json"});
  EXPECT_EQ(r.code, kExitCancelled) << r.err;
  EXPECT_THAT(r.out, HasSubstr("EVENT_TYPE_JOB_CANCELLED"));
  r = Run({"cancel", ok});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr(ok));

  // Unknown job -> 3; still running at --timeout -> 4.
  EXPECT_EQ(Run({"watch", "job-nope"}).code, kExitUsage);
  const std::string slow = Submit("slow");
  r = Run({"watch", slow, "--timeout", "0.3"});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_THAT(r.err, HasSubstr("timed out"));
}

TEST_F(CliServerTest, UnreachableCoordinatorIsExit4) {
  const std::string address = server_->address();
  server_->Stop();
  std::ostringstream out, err;
  int code = RunVptqctl({"vptqctl", "--coordinator", address, "--call-timeout", "0.3", "get", "x"},
                        CliIo{out, err});
  EXPECT_EQ(code, kExitUnreachable);
  EXPECT_THAT(err.str(), HasSubstr("is the coordinator running at " + address));
  code = RunVptqctl({"vptqctl", "--coordinator", address, "watch", "x", "--max-unreachable", "0.3"},
                    CliIo{out, err});
  EXPECT_EQ(code, kExitUnreachable);
  EXPECT_THAT(err.str(), HasSubstr("unreachable"));
}

TEST_F(CliServerTest, WrongTokenIsABadUsage) {
  std::ostringstream out, err;
  const int code = RunVptqctl({"vptqctl", "--coordinator", server_->address(), "--token",
                               "wrong-token-0123456789", "list"},
                              CliIo{out, err});
  EXPECT_EQ(code, kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--token"));
}

TEST_F(CliServerTest, SubmitWaitFollowsToTheEnd) {
  const std::string spec = WriteSpec("job.textproto", SpecText());
  Output r;
  std::thread submitter([&] { r = Run({"submit", spec, "--wait", "--request-id", "wait-1"}); });
  ASSERT_TRUE(WaitFor([&] {
    return server_->coordinator().scheduler().JobForRequest("wait-1").has_value();
  }));
  CompleteAll();
  submitter.join();
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Job succeeded"));  // the last event's line
  EXPECT_THAT(r.out, Not(HasSubstr("\x1b[K")));    // not a terminal: no redraws
}

}  // namespace
}  // namespace vptq::cli::testing
