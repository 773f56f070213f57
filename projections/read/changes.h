// What a follower of the log hears about each event (SPEC §8): its seq,
// type, entity and the cycle that entity belongs to, so a dashboard or a
// webhook can keep to one cycle.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "projections/domain/projection.h"

namespace okr {

// The cycle `entity` belongs to in `p`: a cycle is its own, an
// objective's is the one it was set in (objectives never change cycle),
// a key result's is its objective's. Empty for units and the log's own
// records, which belong to no cycle, and for an id `p` does not know.
std::string CycleOfEntity(const Projection& p, std::string_view entity);

// Whether a follower keeping to `cycle` (empty: every cycle) hears of an
// event of `event_cycle`: its own cycle's events and the events of no
// cycle (units, which every cycle's cascade shows).
inline bool FollowsCycle(std::string_view cycle, std::string_view event_cycle) {
  return cycle.empty() || event_cycle.empty() || event_cycle == cycle;
}

}  // namespace okr
