#include "common/metrics.h"

#include <charconv>
#include <cmath>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"

namespace vptq {

void Counter::Increment(double by) {
  if (!(by >= 0)) return;  // also drops NaN
  value_.fetch_add(by, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < upper_bounds_.size() && !(value <= upper_bounds_[i])) ++i;
  absl::MutexLock lock(&mu_);
  ++bucket_counts_[i];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.upper_bounds = upper_bounds_;
  absl::MutexLock lock(&mu_);
  uint64_t running = 0;
  for (uint64_t c : bucket_counts_) {
    running += c;
    s.cumulative_counts.push_back(running);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {
  detached_.reset(NewChild());
  if (label_names_.empty()) {
    absl::MutexLock lock(&mu_);
    children_[{}].reset(NewChild());
  }
}

template <typename T>
T* Family<T>::NewChild() const {
  if constexpr (std::is_same_v<T, Histogram>) {
    return new Histogram(buckets_);
  } else {
    return new T();
  }
}

template <typename T>
T& Family<T>::Labels(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) return *detached_;
  absl::MutexLock lock(&mu_);
  std::unique_ptr<T>& child = children_[values];
  if (!child) child.reset(NewChild());
  return *child;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

struct MetricsRegistry::Entry {
  MetricType type;
  std::string name;
  std::vector<std::string> label_names;
  std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>,
               std::unique_ptr<Family<Histogram>>>
      family;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

absl::Status MetricsRegistry::CheckNew(const std::string& name,
                                       const std::vector<std::string>& label_names,
                                       MetricType type) const {
  if (!metrics_text::IsValidMetricName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric name '", name, "' must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  for (const auto& e : entries_) {
    if (e->name == name) {
      return absl::InvalidArgumentError(absl::StrCat("metric '", name, "' registered twice"));
    }
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!metrics_text::IsValidLabelName(l) || (type == MetricType::kHistogram && l == "le")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric '", name, "': label name '", l,
          "' must match [a-zA-Z_][a-zA-Z0-9_]*, not start with __, and not be 'le' "
          "on a histogram"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (label_names[j] == l) {
        return absl::InvalidArgumentError(
            absl::StrCat("metric '", name, "': label '", l, "' repeated"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Family<Counter>*> MetricsRegistry::AddCounter(
    std::string name, std::string help, std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckNew(name, label_names, MetricType::kCounter); !s.ok()) return s;
  auto family = std::unique_ptr<Family<Counter>>(
      new Family<Counter>(name, std::move(help), label_names, {}));
  Family<Counter>* out = family.get();
  entries_.push_back(std::unique_ptr<Entry>(
      new Entry{MetricType::kCounter, std::move(name), std::move(label_names), std::move(family)}));
  return out;
}

absl::StatusOr<Family<Gauge>*> MetricsRegistry::AddGauge(std::string name, std::string help,
                                                         std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckNew(name, label_names, MetricType::kGauge); !s.ok()) return s;
  auto family =
      std::unique_ptr<Family<Gauge>>(new Family<Gauge>(name, std::move(help), label_names, {}));
  Family<Gauge>* out = family.get();
  entries_.push_back(std::unique_ptr<Entry>(
      new Entry{MetricType::kGauge, std::move(name), std::move(label_names), std::move(family)}));
  return out;
}

absl::StatusOr<Family<Histogram>*> MetricsRegistry::AddHistogram(
    std::string name, std::string help, std::vector<std::string> label_names,
    std::vector<double> buckets) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckNew(name, label_names, MetricType::kHistogram); !s.ok()) return s;
  if (buckets.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("histogram '", name, "' needs buckets"));
  }
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "histogram '", name, "': buckets must be finite and strictly increasing"));
    }
  }
  auto family = std::unique_ptr<Family<Histogram>>(
      new Family<Histogram>(name, std::move(help), label_names, std::move(buckets)));
  Family<Histogram>* out = family.get();
  entries_.push_back(std::unique_ptr<Entry>(new Entry{
      MetricType::kHistogram, std::move(name), std::move(label_names), std::move(family)}));
  return out;
}

namespace {

// `{a="x",b="y"}` with an optional extra label (histogram "le"); empty when
// there are no labels at all.
std::string LabelSet(const std::vector<std::string>& names,
                     const std::vector<std::string>& values, std::string_view extra_name = {},
                     std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    absl::StrAppend(&out, names[i], "=\"", metrics_text::EscapeLabelValue(values[i]), "\"");
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    absl::StrAppend(&out, std::string(extra_name), "=\"", std::string(extra_value), "\"");
  }
  out += '}';
  return out;
}

}  // namespace

std::string MetricsRegistry::RenderText() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& e : entries_) {
    std::visit(
        [&](const auto& family) {
          using F = std::decay_t<decltype(*family)>;
          const char* type = e->type == MetricType::kCounter ? "counter"
                             : e->type == MetricType::kGauge ? "gauge"
                                                             : "histogram";
          absl::StrAppend(&out, "# HELP ", e->name, " ", metrics_text::EscapeHelp(family->help_),
                          "\n# TYPE ", e->name, " ", type, "\n");
          absl::MutexLock family_lock(&family->mu_);
          for (const auto& [values, child] : family->children_) {
            if constexpr (std::is_same_v<F, Family<Histogram>>) {
              Histogram::Snapshot s = child->Read();
              for (size_t i = 0; i <= s.upper_bounds.size(); ++i) {
                std::string le = i < s.upper_bounds.size()
                                     ? metrics_text::FormatValue(s.upper_bounds[i])
                                     : std::string("+Inf");
                absl::StrAppend(&out, e->name, "_bucket",
                                LabelSet(e->label_names, values, "le", le), " ",
                                s.cumulative_counts[i], "\n");
              }
              absl::StrAppend(&out, e->name, "_sum", LabelSet(e->label_names, values), " ",
                              metrics_text::FormatValue(s.sum), "\n");
              absl::StrAppend(&out, e->name, "_count", LabelSet(e->label_names, values), " ",
                              s.count, "\n");
            } else {
              absl::StrAppend(&out, e->name, LabelSet(e->label_names, values), " ",
                              metrics_text::FormatValue(child->Value()), "\n");
            }
          }
        },
        e->family);
  }
  return out;
}

namespace metrics_text {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

std::string EscapeLabelValue(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = IsAlpha(c) || c == '_' || c == ':' || (i > 0 && IsDigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = IsAlpha(c) || c == '_' || (i > 0 && IsDigit(c));
    if (!ok) return false;
  }
  return true;
}

}  // namespace metrics_text

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i) {
    out.push_back(v);
    v *= factor;
  }
  return out;
}

}  // namespace vptq
