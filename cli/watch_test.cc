// watch across a coordinator restart (no gap, no duplicate), and FollowJob's
// sequence bookkeeping against a scripted event source.
#include <deque>
#include <thread>

#include <nlohmann/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"
#include "cli/exit_codes.h"
#include "cli/follow_job.h"

namespace vptq::cli::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(CliServerTest, WatchReconnectsAcrossARestartWithoutGapsOrDuplicates) {
  const std::string id = Submit("restart");
  SyncStream out, err;
  int code = -1;
  std::thread watcher([&] { code = Run({"watch", id, "-o", "json"}, out, err); });
  ASSERT_EQ(CompleteTasks(3), 3);
  // SUBMITTED, STARTED, then LEASED + SUCCEEDED per task.
  ASSERT_TRUE(WaitFor([&] { return out.lines().size() >= 8; })) << out.str();

  server_->Stop();  // drains: the open watch ends UNAVAILABLE
  ASSERT_TRUE(WaitFor([&] { return err.str().find("reconnecting") != std::string::npos; }))
      << err.str();
  ASSERT_THAT(server_->Start(), IsOk());  // same port, same store: JOB_RESUMED
  CompleteAll();
  watcher.join();
  EXPECT_EQ(code, kExitOk) << err.str();

  const v1::Job job = GetJob(id);
  const std::vector<std::string> lines = out.lines();
  ASSERT_EQ(static_cast<int64_t>(lines.size()), job.last_event_sequence());
  bool resumed = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json e = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(e["sequence"], std::to_string(i + 1)) << lines[i];  // int64 as a JSON string
    resumed = resumed || e["type"] == "EVENT_TYPE_JOB_RESUMED";
  }
  EXPECT_TRUE(resumed);
  EXPECT_EQ(nlohmann::json::parse(lines.back())["type"], "EVENT_TYPE_JOB_SUCCEEDED");
}

// Replays a script: each WatchJob call takes the next entry, delivers those
// of its events that are after `after_sequence` ... exactly as listed
// (duplicates and jumps included), then returns its status.
class ScriptedSource : public JobSource {
 public:
  struct Call {
    std::vector<int64_t> sequences;
    absl::Status status;
  };
  explicit ScriptedSource(std::deque<Call> calls, int64_t terminal)
      : calls_(std::move(calls)), terminal_(terminal) {}

  absl::Status WatchJob(const std::string& job_id, int64_t after, absl::Time deadline,
                        const std::function<bool(const v1::JobEvent&)>& on_event) override {
    afters.push_back(after);
    if (calls_.empty()) return absl::NotFoundError("script ended");
    Call call = calls_.front();
    calls_.pop_front();
    for (int64_t s : call.sequences) {
      v1::JobEvent e;
      e.set_sequence(s);
      e.set_type(s == terminal_ ? v1::EVENT_TYPE_JOB_SUCCEEDED : v1::EVENT_TYPE_TASK_SUCCEEDED);
      e.set_phase(s == terminal_ ? v1::JOB_PHASE_SUCCEEDED : v1::JOB_PHASE_RUNNING);
      if (!on_event(e)) return absl::CancelledError("receiver stopped");
    }
    return call.status;
  }
  absl::StatusOr<v1::GetJobResponse> GetJob(const std::string&, bool) override {
    return absl::UnavailableError("not scripted");
  }
  absl::Status DownloadArtifact(const std::string&, const std::string&, int64_t, absl::Time,
                                const std::function<bool(const v1::ArtifactStreamResponse&)>&) override {
    return absl::UnimplementedError("no artifacts");
  }

  std::vector<int64_t> afters;

 private:
  std::deque<Call> calls_;
  int64_t terminal_;
};

FollowOptions Fast(std::vector<int64_t>* seen) {
  FollowOptions o;
  o.initial_backoff = absl::Milliseconds(1);
  o.max_backoff = absl::Milliseconds(2);
  o.on_event = [seen](const v1::JobEvent& e) { seen->push_back(e.sequence()); };
  return o;
}

TEST(FollowJobTest, DropsDuplicatesAndRefetchesGaps) {
  ScriptedSource source(
      {
          {{1, 2, 3}, absl::UnavailableError("draining")},
          {{2, 3, 4}, absl::CancelledError("stream reset")},  // 2, 3 again: dropped
          {{6}, absl::OkStatus()},                            // a jump: asked again from 4
          {{5, 6, 7}, absl::OkStatus()},                      // 7 is terminal
      },
      /*terminal=*/7);
  std::vector<int64_t> seen;
  FollowResult r = FollowJob(source, "job", Fast(&seen));
  ASSERT_THAT(r.status, IsOk());
  EXPECT_EQ(r.phase, v1::JOB_PHASE_SUCCEEDED);
  EXPECT_THAT(seen, ElementsAre(1, 2, 3, 4, 5, 6, 7));
  EXPECT_THAT(source.afters, ElementsAre(0, 3, 4, 4));
  EXPECT_EQ(r.reconnects, 3);
  EXPECT_EQ(FollowExitCode(r), kExitOk);
}

TEST(FollowJobTest, StopsOnErrorsNotWorthRetrying) {
  ScriptedSource source({{{1}, absl::PermissionDeniedError("token")}}, 9);
  std::vector<int64_t> seen;
  FollowResult r = FollowJob(source, "job", Fast(&seen));
  EXPECT_TRUE(absl::IsPermissionDenied(r.status));
  EXPECT_EQ(r.last_sequence, 1);
  EXPECT_EQ(FollowExitCode(r), kExitUsage);
}

TEST(FollowJobTest, GivesUpAfterBeingUnreachableTooLong) {
  std::deque<ScriptedSource::Call> calls(1000, {{}, absl::UnavailableError("connection refused")});
  ScriptedSource source(calls, 9);
  std::vector<int64_t> seen;
  FollowOptions o = Fast(&seen);
  o.max_unreachable = absl::Milliseconds(30);
  std::vector<std::string> notes;
  o.on_note = [&](const std::string& n) { notes.push_back(n); };
  FollowResult r = FollowJob(source, "job", o);
  EXPECT_TRUE(absl::IsUnavailable(r.status));
  EXPECT_THAT(r.status.message(), HasSubstr("connection refused"));
  EXPECT_FALSE(notes.empty());
  EXPECT_EQ(FollowExitCode(r), kExitUnreachable);
}

}  // namespace
}  // namespace vptq::cli::testing
