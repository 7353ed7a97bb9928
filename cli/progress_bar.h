// Progress of a job as vptqctl shows it (watch, submit --wait, quantize).
//
// On a terminal one line is redrawn in place:
//   [##########..........]  52%  18/34 tasks  quantize  linears 9/42  ETA 3m05s
// and events worth keeping (retries, failures, the end of the job) are
// printed above it as log lines. When the output is not a terminal (a pipe,
// a file, CI) every event becomes one plain log line and nothing is redrawn:
//   2024-05-01T12:00:03Z #12 Task succeeded quantize/model.layers.0.mlp.up_proj (18/34 tasks, stage quantize, linears 9/42, ETA 3m05s)
//
//   ProgressDisplay display(std::cerr, isatty(2), TerminalWidth(2));
//   for (const v1::JobEvent& e : events) display.OnEvent(e);
//   display.Finish();
//
// Not thread-safe: one thread feeds a display.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "vptq/v1/job.pb.h"

namespace vptq::cli {

// The bar line for `progress`, at most `width` columns (>= 20). The bar
// follows fraction_done (cost-weighted) when set, else tasks done/total.
std::string FormatProgressLine(const v1::Progress& progress, int width);

// One plain log line for an event (no trailing newline).
std::string FormatEventLine(const v1::JobEvent& event);

// Whether an event deserves its own line above the bar on a terminal.
bool IsNotableEvent(const v1::JobEvent& event);

// Columns of the terminal on `fd`, or 80 when unknown.
int TerminalWidth(int fd);

class ProgressDisplay {
 public:
  ProgressDisplay(std::ostream& out, bool tty, int width = 80)
      : out_(out), tty_(tty), width_(width < 20 ? 20 : width) {}
  ~ProgressDisplay() { Finish(); }
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  void OnEvent(const v1::JobEvent& event);
  // A message of the caller's (e.g. "reconnecting in 2s"), on its own line.
  void Note(const std::string& line);
  // Leaves the bar on screen and moves to the next line; idempotent.
  void Finish();

 private:
  void Redraw();
  void ClearBar();

  std::ostream& out_;
  const bool tty_;
  const int width_;
  bool bar_shown_ = false;
  v1::Progress last_;
};

}  // namespace vptq::cli
