// The wall clock, as okrd reads it: microseconds since the Unix epoch, UTC.
//
// The store and the Projector take a clock (a ClockUs) so that tests can move
// time; everything else asks the Projector (Projector::NowUs) or, where no
// Projector exists (logging, a command line tool), SystemClockUs.
#pragma once

#include <cstdint>
#include <functional>

namespace okr {

// A source of "now" in µs UTC. Must be callable from any thread.
using ClockUs = std::function<int64_t()>;

// The system's real-time clock in µs UTC.
int64_t SystemClockUs();

}  // namespace okr
