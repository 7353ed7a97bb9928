// A small Prometheus metrics registry: counters, gauges and histograms with
// labels, rendered in the text exposition format 0.0.4.
//
// Contract:
//  - Families are registered once by name; registering a name twice or an
//    invalid metric/label name is INVALID_ARGUMENT.
//  - Family::Labels(values) returns the child for those label values,
//    creating it on first use. The reference stays valid for the registry's
//    life, so hot paths may cache it. A call with the wrong number of values
//    is a programming error: it returns a detached child that is never
//    exported, so a metrics mistake cannot take the process down.
//  - A family without labels exports its single child (value 0) from the
//    moment it is registered; labeled children appear once created.
//  - Everything is thread-safe. Counter/Gauge updates are lock-free atomics;
//    a histogram observation takes a short per-histogram lock. RenderText
//    takes each family's lock briefly; its cost is linear in the children.
//
//   MetricsRegistry registry;
//   VPTQ_ASSIGN_OR_RETURN(auto* tasks, registry.AddCounter(
//       "vptq_tasks_total", "Tasks finished.", {"kind", "outcome"}));
//   tasks->Labels({"quantize", "succeeded"}).Increment();
//   std::string body = registry.RenderText();
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace vptq {

class Counter {
 public:
  // Negative or NaN increments are ignored: a counter only goes up.
  void Increment(double by = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `upper_bounds` strictly increasing and finite; +Inf is implicit.
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> upper_bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> bucket_counts_ ABSL_GUARDED_BY(mu_);  // non-cumulative
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
};

enum class MetricType { kCounter, kGauge, kHistogram };

// Children of one metric name, keyed by label values.
template <typename T>
class Family {
 public:
  T& Labels(const std::vector<std::string>& values);
  const std::string& name() const { return name_; }

 private:
  friend class MetricsRegistry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> buckets);
  T* NewChild() const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;  // histograms only
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<T> detached_;  // returned on a label-count mistake
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  absl::StatusOr<Family<Counter>*> AddCounter(std::string name, std::string help,
                                              std::vector<std::string> label_names = {});
  absl::StatusOr<Family<Gauge>*> AddGauge(std::string name, std::string help,
                                          std::vector<std::string> label_names = {});
  // `buckets`: strictly increasing finite upper bounds ("le"), +Inf implicit.
  absl::StatusOr<Family<Histogram>*> AddHistogram(std::string name, std::string help,
                                                  std::vector<std::string> label_names,
                                                  std::vector<double> buckets);

  // Text exposition format 0.0.4: families in registration order, children
  // in label order, "# HELP" and "# TYPE" lines first.
  std::string RenderText() const;

 private:
  struct Entry;
  absl::Status CheckNew(const std::string& name,
                        const std::vector<std::string>& label_names,
                        MetricType type) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

// Formatting helpers of the exposition format, exposed for tests.
namespace metrics_text {
// Shortest decimal that reads back as the same double; "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);
// Escapes \ " and newline (label values) or \ and newline (help text).
std::string EscapeLabelValue(std::string_view s);
std::string EscapeHelp(std::string_view s);
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
}  // namespace metrics_text

// Exponential buckets: start, start*factor, ... (count bounds).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

}  // namespace vptq
