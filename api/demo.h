// The demo company: a realistic, fictional HR organisation with a year, two
// quarters (one closed and reviewed), a dozen objectives, weekly check-ins,
// moved targets, a correction, an owner change and an archived objective —
// all written through the normal write path, so the hash chain is real.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "eventstore/base/status.h"
#include "projections/service/projector.h"

namespace okr::api {

struct DemoIds {
  std::string year, previous_quarter, current_quarter;
};

// The cycles of a demo made at `now_us`: the previous and the current
// calendar quarter inside a fiscal year that starts with the previous one.
DemoIds DemoCycles(int64_t now_us);

// The moment the demo's story starts: a new log's log.signing_key event is
// recorded then, before the story's events (recordedAt never decreases).
int64_t DemoStartUs(int64_t now_us);

// Whether the demo fills `store`: a new log, empty or holding nothing but
// its log.signing_key event.
Result<bool> DemoFills(const EventStore& store);

// Fills a new log (DemoFills). kInvalid when it is not one. `set_clock`
// moves the clock the store and projector record by, so each event is
// recorded at the moment its story happens (always in the past of now_us);
// the caller returns the clock to real time afterwards.
Status FillDemo(Projector* projector, EventStore* store, int64_t now_us,
                const std::function<void(int64_t)>& set_clock);

}  // namespace okr::api
