// Checking stored snapshots against the log (okrctl verify --deep). A
// snapshot is a cache of the projection at its seq: okrd starts from it
// and folds only the events after it, so a snapshot that disagrees with
// the log (tampered with, or written by a faulty fold) would change every
// answer without breaking the chain. Each one is compared with a full
// replay of the log up to its seq.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eventstore/base/status.h"
#include "eventstore/event_store.h"
#include "projections/domain/projection.h"

namespace okr::ctl {

struct SnapshotCheckReport {
  bool ok = true;
  std::vector<uint64_t> seqs;  // the stored snapshots' seqs, oldest first
  size_t checked = 0;          // snapshots found equal to the replay
  uint64_t first_bad_seq = 0;  // the oldest snapshot that differs; 0 when ok
  std::string problem;         // what differs in it, entity and field named
};

// Texts longer than this are cut when a difference shows them.
inline constexpr size_t kMaxShownChars = 80;

// Compares every snapshot of `store`, oldest first, with the projection a
// full replay (Projector::Rebuild without snapshots) gives at its seq, and
// stops at the first that differs: undecodable, another seq than its key,
// beyond the head, a head hash that is not the hash of the event at its
// seq, or any difference of state. Costs one full replay per snapshot
// (okrd keeps two). `progress` (optional) gets (snapshots checked, total).
// Errors: only when the store cannot be read or the log does not replay
// (which the chain check reports first).
Result<SnapshotCheckReport> CheckSnapshots(
    const EventStore& store, const std::function<void(size_t, size_t)>& progress = {});

// The first difference between a snapshot's projection and the replayed
// one, as "objective o-1, revision 2 (seq 9): title: snapshot \"A\", log
// \"B\"": entities by kind (units, cycles, objectives, key results) and
// id, then their revisions, events, check-ins, corrections and comments.
// Empty when the two are equal (operator==).
std::string FirstDifference(const Projection& snapshot, const Projection& replay);

}  // namespace okr::ctl
