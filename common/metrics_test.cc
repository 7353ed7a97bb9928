#include "common/metrics.h"

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

TEST(MetricsTest, RendersExactTextFormat) {
  MetricsRegistry r;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto* jobs, r.AddCounter("vptq_jobs_total", "Jobs finished.",
                                                     {"outcome"}));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto* depth, r.AddGauge("vptq_task_queue_depth", "Ready tasks."));
  VPTQ_ASSERT_OK_AND_ASSIGN(
      auto* dur, r.AddHistogram("vptq_task_duration_seconds", "Task run time.", {"kind"},
                                {1, 60, 3600}));
  jobs->Labels({"succeeded"}).Increment();
  jobs->Labels({"succeeded"}).Increment(2);
  jobs->Labels({"failed"}).Increment();
  depth->Labels({}).Set(7);
  dur->Labels({"quantize"}).Observe(0.5);
  dur->Labels({"quantize"}).Observe(30);
  dur->Labels({"quantize"}).Observe(7200);

  EXPECT_EQ(r.RenderText(),
            "# HELP vptq_jobs_total Jobs finished.\n"
            "# TYPE vptq_jobs_total counter\n"
            "vptq_jobs_total{outcome=\"failed\"} 1\n"
            "vptq_jobs_total{outcome=\"succeeded\"} 3\n"
            "# HELP vptq_task_queue_depth Ready tasks.\n"
            "# TYPE vptq_task_queue_depth gauge\n"
            "vptq_task_queue_depth 7\n"
            "# HELP vptq_task_duration_seconds Task run time.\n"
            "# TYPE vptq_task_duration_seconds histogram\n"
            "vptq_task_duration_seconds_bucket{kind=\"quantize\",le=\"1\"} 1\n"
            "vptq_task_duration_seconds_bucket{kind=\"quantize\",le=\"60\"} 2\n"
            "vptq_task_duration_seconds_bucket{kind=\"quantize\",le=\"3600\"} 2\n"
            "vptq_task_duration_seconds_bucket{kind=\"quantize\",le=\"+Inf\"} 3\n"
            "vptq_task_duration_seconds_sum{kind=\"quantize\"} 7230.5\n"
            "vptq_task_duration_seconds_count{kind=\"quantize\"} 3\n");
}

TEST(MetricsTest, UnlabeledFamilyExportsZeroAtOnce) {
  MetricsRegistry r;
  ASSERT_THAT(r.AddCounter("c_total", "help").status(), IsOk());
  VPTQ_ASSERT_OK_AND_ASSIGN(auto* h, r.AddHistogram("h_seconds", "h", {}, {0.25}));
  (void)h;
  EXPECT_EQ(r.RenderText(),
            "# HELP c_total help\n# TYPE c_total counter\nc_total 0\n"
            "# HELP h_seconds h\n# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"0.25\"} 0\nh_seconds_bucket{le=\"+Inf\"} 0\n"
            "h_seconds_sum 0\nh_seconds_count 0\n");
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry r;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto* g, r.AddGauge("g", "line1\nback\\slash \"q\"", {"l"}));
  g->Labels({"a\"b\\c\nd"}).Set(-1.5);
  EXPECT_EQ(r.RenderText(),
            "# HELP g line1\\nback\\\\slash \"q\"\n# TYPE g gauge\n"
            "g{l=\"a\\\"b\\\\c\\nd\"} -1.5\n");
}

TEST(MetricsTest, FormatsSpecialValues) {
  EXPECT_EQ(metrics_text::FormatValue(1), "1");
  EXPECT_EQ(metrics_text::FormatValue(0.1), "0.1");
  EXPECT_EQ(metrics_text::FormatValue(1e20), "1e+20");
  EXPECT_EQ(metrics_text::FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(metrics_text::FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(metrics_text::FormatValue(std::nan("")), "NaN");
}

TEST(MetricsTest, RejectsBadNamesAndDuplicates) {
  MetricsRegistry r;
  EXPECT_THAT(r.AddCounter("1bad", "h").status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.AddCounter("bad-name", "h").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.AddCounter("ok", "h", {"__reserved"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.AddCounter("ok2", "h", {"a", "a"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.AddHistogram("h1", "h", {"le"}, {1}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.AddHistogram("h2", "h", {}, {2, 1}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.AddHistogram("h3", "h", {}, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT(r.AddGauge("dup", "h").status(), IsOk());
  EXPECT_THAT(r.AddCounter("dup", "h").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MetricsTest, WrongLabelCountIsDetachedNotExported) {
  MetricsRegistry r;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto* c, r.AddCounter("c_total", "h", {"a"}));
  c->Labels({"x", "y"}).Increment(5);
  EXPECT_EQ(r.RenderText(), "# HELP c_total h\n# TYPE c_total counter\n");
}

TEST(MetricsTest, CounterIgnoresNegativeAndNaN) {
  Counter c;
  c.Increment(2);
  c.Increment(-1);
  c.Increment(std::nan(""));
  EXPECT_EQ(c.Value(), 2);
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry r;
  VPTQ_ASSERT_OK_AND_ASSIGN(auto* c, r.AddCounter("c_total", "h", {"t"}));
  VPTQ_ASSERT_OK_AND_ASSIGN(auto* h, r.AddHistogram("h", "h", {}, {1}));
  constexpr int kThreads = 8, kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        c->Labels({t % 2 ? "odd" : "even"}).Increment();
        h->Labels({}).Observe(i % 2 ? 0.5 : 2.0);
        if (i % 1000 == 0) (void)r.RenderText();  // readers race writers
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->Labels({"odd"}).Value(), kThreads / 2 * kPerThread);
  EXPECT_EQ(c->Labels({"even"}).Value(), kThreads / 2 * kPerThread);
  Histogram::Snapshot s = h->Labels({}).Read();
  EXPECT_EQ(s.count, uint64_t{kThreads * kPerThread});
  EXPECT_EQ(s.cumulative_counts[0], uint64_t{kThreads * kPerThread / 2});
  EXPECT_THAT(r.RenderText(), HasSubstr("h_count 80000\n"));
}

TEST(MetricsTest, ExponentialBuckets) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
}

}  // namespace
}  // namespace vptq
