// Snapshots: the whole projection as one Cap'n Proto message
// (schemas/snapshot.capnp), so okrd starts from the newest one plus the
// tail of the log instead of replaying everything.
#pragma once

#include <string>
#include <string_view>

#include "eventstore/event_codec.h"
#include "projections/domain/projection.h"

namespace okr {

inline constexpr uint32_t kSnapshotFormatVersion = 1;

// Stateless; both functions are safe to call from any thread. Encode
// reads the projection, which the caller keeps unchanged meanwhile; a
// decoded projection is the caller's.
class SnapshotCodec {
 public:
  // `head_hash` is the hash of the event at projection.seq(); it ties the
  // snapshot to one log.
  static std::string Encode(const Projection& projection, const Hash& head_hash);
  // kCorruption when the bytes are malformed or of an unknown format.
  static Result<Projection> Decode(std::string_view bytes, Hash* head_hash);
};

}  // namespace okr
