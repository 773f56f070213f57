// A one-line progress bar on stderr, drawn only on a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace okr::ctl {

class ProgressBar {
 public:
  // Draws only when `enabled` (callers pass isatty(stderr) && !--json),
  // so scripts and pipes never see carriage returns.
  ProgressBar(std::string label, uint64_t total, bool enabled, std::string unit = "");
  ~ProgressBar();  // finishes the line if Finish() was not called
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void set_total(uint64_t total) { total_ = total; }
  // Redraws at most every kRedrawInterval, so calling it per item is cheap;
  // nothing is drawn before kShowAfter, so quick work leaves no trace.
  void Update(uint64_t done);
  // Draws the final state and ends the line, if the bar was shown.
  void Finish();
  bool enabled() const { return enabled_; }

  // True when stderr is a terminal.
  static bool Terminal();

 private:
  static constexpr std::chrono::milliseconds kRedrawInterval{100};
  static constexpr std::chrono::milliseconds kShowAfter{500};
  static constexpr int kBarWidth = 30;
  void Draw(uint64_t done);

  std::string label_;
  std::string unit_;
  uint64_t total_;
  bool enabled_;
  bool finished_ = false;
  bool shown_ = false;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point drawn_{};
};

}  // namespace okr::ctl
