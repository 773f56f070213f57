#include "tools/ctl/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace okr::ctl {

ProgressBar::ProgressBar(std::string label, uint64_t total, bool enabled, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      started_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (!finished_) Finish();
}

bool ProgressBar::Terminal() { return isatty(STDERR_FILENO) == 1; }

void ProgressBar::Update(uint64_t done) {
  done_ = done;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - started_ < kShowAfter || now - drawn_ < kRedrawInterval) return;
  drawn_ = now;
  shown_ = true;
  Draw(done);
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_ || !shown_) return;
  Draw(done_);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void ProgressBar::Draw(uint64_t done) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  std::string unit = unit_.empty() ? "" : " " + unit_;
  if (total_ > 0) {
    double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    int filled = static_cast<int>(fraction * kBarWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kBarWidth - filled), '.');
    std::fprintf(stderr, "\r%s [%s] %3.0f%% %llu/%llu%s %.1f s ", label_.c_str(), bar.c_str(),
                 fraction * 100, static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total_), unit.c_str(), secs);
  } else {
    std::fprintf(stderr, "\r%s %llu%s %.1f s ", label_.c_str(),
                 static_cast<unsigned long long>(done), unit.c_str(), secs);
  }
  std::fflush(stderr);
}

}  // namespace okr::ctl
