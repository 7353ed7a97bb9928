// Progress line, event lines, tables, durations and exit-code mapping.
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/exit_codes.h"
#include "cli/output_format.h"
#include "cli/progress_bar.h"

namespace vptq::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

v1::Progress Progress(int done, int total, const std::string& stage, int lin_done, int lin_total,
                      int64_t eta, double fraction) {
  v1::Progress p;
  p.set_tasks_done(done);
  p.set_tasks_total(total);
  p.set_stage(stage);
  p.set_linears_done(lin_done);
  p.set_linears_total(lin_total);
  p.set_eta_seconds(eta);
  p.set_fraction_done(fraction);
  return p;
}

TEST(ProgressLineTest, ShowsTasksStageLinearsAndEta) {
  const std::string line = FormatProgressLine(Progress(18, 34, "quantize", 9, 42, 185, 0.52), 100);
  EXPECT_THAT(line, StartsWith("[###############...............]   52%"));  // 30 cells, 15 filled
  EXPECT_THAT(line, HasSubstr("18/34 tasks  quantize  linears 9/42  ETA 3m05s"));
  EXPECT_LE(line.size(), 100u);
  // Unknown ETA; done jobs show no ETA; a narrow terminal still fits.
  EXPECT_THAT(FormatProgressLine(Progress(1, 34, "hessian", 0, 42, -1, 0), 100), HasSubstr("ETA ?"));
  const std::string done = FormatProgressLine(Progress(34, 34, "done", 42, 42, 0, 1.0), 100);
  EXPECT_THAT(done, StartsWith("[##############################]  100%"));
  EXPECT_THAT(done, Not(HasSubstr("ETA")));
  EXPECT_EQ(FormatProgressLine(Progress(18, 34, "quantize", 9, 42, 185, 0.52), 40).size(), 40u);
  // Without a cost-weighted fraction the bar follows the task count.
  EXPECT_THAT(FormatProgressLine(Progress(17, 34, "reduce", 0, 42, 60, 0), 100), HasSubstr(" 50%"));
}

v1::JobEvent Event(int64_t seq, v1::EventType type, const std::string& task) {
  v1::JobEvent e;
  e.set_sequence(seq);
  e.set_time_unix_ms(1714564803000);  // 2024-05-01T12:00:03Z
  e.set_type(type);
  e.set_task_name(task);
  *e.mutable_progress() = Progress(18, 34, "quantize", 9, 42, 185, 0.52);
  return e;
}

TEST(ProgressDisplayTest, PlainOutputIsOneLogLinePerEvent) {
  std::ostringstream out;
  {
    ProgressDisplay d(out, /*tty=*/false);
    d.OnEvent(Event(12, v1::EVENT_TYPE_TASK_SUCCEEDED, "quantize/model.layers.0.mlp.up_proj"));
    d.Note("connection lost; reconnecting");
  }
  EXPECT_EQ(out.str(),
            "2024-05-01T12:00:03Z #12 Task succeeded quantize/model.layers.0.mlp.up_proj "
            "(18/34 tasks, quantize, linears 9/42, ETA 3m05s)\n"
            "connection lost; reconnecting\n");
}

TEST(ProgressDisplayTest, TerminalRedrawsOneLineAndKeepsNotableEvents) {
  std::ostringstream out;
  {
    ProgressDisplay d(out, /*tty=*/true, 100);
    d.OnEvent(Event(12, v1::EVENT_TYPE_TASK_SUCCEEDED, "quantize/a"));
    d.OnEvent(Event(13, v1::EVENT_TYPE_TASK_RETRYING, "quantize/b"));
  }
  const std::string s = out.str();
  // Routine events only redraw the bar; a retry gets its own line above it.
  EXPECT_THAT(s, Not(HasSubstr("quantize/a")));
  EXPECT_THAT(s, HasSubstr("\r\x1b[K2024-05-01T12:00:03Z #13 Task retrying quantize/b"));
  EXPECT_THAT(s, HasSubstr("\r[###############"));
  EXPECT_THAT(s, HasSubstr("\x1b[K"));
  EXPECT_EQ(s.back(), '\n');  // Finish() leaves the bar and moves on
}

TEST(OutputFormatTest, Helpers) {
  EXPECT_EQ(FormatDuration(45), "45s");
  EXPECT_EQ(FormatDuration(185), "3m05s");
  EXPECT_EQ(FormatDuration(7620), "2h07m");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(int64_t{3} << 30), "3.0 GiB");
  EXPECT_EQ(PhaseName(v1::JOB_PHASE_RUNNING), "Running");
  EXPECT_EQ(TaskKindName(v1::TASK_KIND_QUANTIZE), "Quantize");
  EXPECT_EQ(*ParsePhase("running"), v1::JOB_PHASE_RUNNING);
  EXPECT_EQ(*ParsePhase("JOB_PHASE_FAILED"), v1::JOB_PHASE_FAILED);
  EXPECT_FALSE(ParsePhase("unspecified").ok());
  EXPECT_FALSE(ParseOutputFormat("yaml").ok());

  Table t({"JOB", "PHASE"});
  t.AddRow({"job-1", "Running"});
  t.AddRow({"job-22", "Failed"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(), "JOB     PHASE\njob-1   Running\njob-22  Failed\n");

  v1::Job job;
  job.set_job_id("job-1");
  job.set_phase(v1::JOB_PHASE_RUNNING);
  EXPECT_EQ(ProtoToJson(job, false), R"({"jobId":"job-1","phase":"JOB_PHASE_RUNNING"})");
}

TEST(ExitCodesTest, PhasesAndStatuses) {
  EXPECT_EQ(ExitCodeForPhase(v1::JOB_PHASE_SUCCEEDED), 0);
  EXPECT_EQ(ExitCodeForPhase(v1::JOB_PHASE_FAILED), 1);
  EXPECT_EQ(ExitCodeForPhase(v1::JOB_PHASE_CANCELLED), 2);
  EXPECT_EQ(ExitCodeForPhase(v1::JOB_PHASE_RUNNING), 4);
  EXPECT_EQ(ExitCodeForStatus(absl::InvalidArgumentError("x")), 3);
  EXPECT_EQ(ExitCodeForStatus(absl::NotFoundError("x")), 3);
  EXPECT_EQ(ExitCodeForStatus(absl::UnavailableError("x")), 4);
  EXPECT_EQ(ExitCodeForStatus(absl::DeadlineExceededError("x")), 4);
  EXPECT_EQ(ExitCodeForStatus(absl::DataLossError("x")), 1);
}

}  // namespace
}  // namespace vptq::cli
