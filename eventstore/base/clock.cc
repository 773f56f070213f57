#include "eventstore/base/clock.h"

#include <chrono>

namespace okr {

int64_t SystemClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace okr
