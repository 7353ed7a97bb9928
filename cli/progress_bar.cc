#include "cli/progress_bar.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/output_format.h"

namespace vptq::cli {
namespace {

double Fraction(const v1::Progress& p) {
  double f = p.fraction_done();
  if (!(f > 0) && p.tasks_total() > 0) {
    f = static_cast<double>(p.tasks_done()) / static_cast<double>(p.tasks_total());
  }
  return std::clamp(std::isfinite(f) ? f : 0.0, 0.0, 1.0);
}

// "18/34 tasks  quantize  linears 9/42  ETA 3m05s" (parts that are unknown
// are left out).
std::string Details(const v1::Progress& p, const char* sep) {
  std::string s = absl::StrCat(p.tasks_done(), "/", p.tasks_total(), " tasks");
  if (!p.stage().empty()) absl::StrAppend(&s, sep, p.stage());
  if (p.linears_total() > 0) {
    absl::StrAppend(&s, sep, "linears ", p.linears_done(), "/", p.linears_total());
  }
  if (p.stage() != "done") {
    absl::StrAppend(&s, sep, "ETA ", p.eta_seconds() >= 0 ? FormatDuration(p.eta_seconds()) : "?");
  }
  if (p.retries() > 0) absl::StrAppend(&s, sep, "retries ", p.retries());
  return s;
}

}  // namespace

std::string FormatProgressLine(const v1::Progress& progress, int width) {
  width = std::max(width, 20);
  const double f = Fraction(progress);
  const std::string tail = absl::StrFormat("%3d%%  %s", static_cast<int>(std::floor(f * 100)),
                                           Details(progress, "  "));
  // The bar takes what is left of the line, between 10 and 30 cells.
  const int bar = std::clamp(width - static_cast<int>(tail.size()) - 4, 10, 30);
  const int filled = static_cast<int>(std::floor(f * bar));
  std::string line = absl::StrCat("[", std::string(filled, '#'), std::string(bar - filled, '.'),
                                  "]  ", tail);
  if (static_cast<int>(line.size()) > width) line.resize(width);
  return line;
}

std::string FormatEventLine(const v1::JobEvent& e) {
  std::string line = absl::StrCat(FormatUnixMs(e.time_unix_ms()), " #", e.sequence(), " ",
                                  EventTypeName(e.type()));
  if (!e.task_name().empty()) absl::StrAppend(&line, " ", e.task_name());
  if (e.attempt() > 1) absl::StrAppend(&line, " attempt ", e.attempt());
  if (!e.worker_id().empty()) absl::StrAppend(&line, " on ", e.worker_id());
  if (!e.reason().empty()) absl::StrAppend(&line, " reason ", e.reason());
  if (e.status().code() != 0) {
    absl::StrAppend(&line, ": ", e.status().message().empty() ? "error" : e.status().message());
  }
  if (!e.message().empty()) absl::StrAppend(&line, " - ", e.message());
  if (e.has_progress() && e.progress().tasks_total() > 0) {
    absl::StrAppend(&line, " (", Details(e.progress(), ", "), ")");
  }
  return line;
}

bool IsNotableEvent(const v1::JobEvent& e) {
  switch (e.type()) {
    case v1::EVENT_TYPE_TASK_LEASED:
    case v1::EVENT_TYPE_TASK_SUCCEEDED:
      return false;
    default:
      return true;
  }
}

int TerminalWidth(int fd) {
  struct winsize ws {};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

void ProgressDisplay::OnEvent(const v1::JobEvent& event) {
  if (event.has_progress()) last_ = event.progress();
  if (!tty_) {
    out_ << FormatEventLine(event) << "\n" << std::flush;
    return;
  }
  if (IsNotableEvent(event)) {
    ClearBar();
    out_ << FormatEventLine(event) << "\n";
  }
  Redraw();
}

void ProgressDisplay::Note(const std::string& line) {
  if (!tty_) {
    out_ << line << "\n" << std::flush;
    return;
  }
  ClearBar();
  out_ << line << "\n";
  if (last_.tasks_total() > 0) Redraw();
  out_ << std::flush;
}

void ProgressDisplay::Finish() {
  if (tty_ && bar_shown_) out_ << "\n" << std::flush;
  bar_shown_ = false;
}

void ProgressDisplay::Redraw() {
  out_ << "\r" << FormatProgressLine(last_, width_ - 1) << "\x1b[K" << std::flush;
  bar_shown_ = true;
}

void ProgressDisplay::ClearBar() {
  if (bar_shown_) out_ << "\r\x1b[K";
  bar_shown_ = false;
}

}  // namespace vptq::cli
