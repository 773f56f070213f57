// Snapshots: the whole projection as Cap'n Proto messages
// (schemas/snapshot.capnp), so okrd starts from the newest one plus the
// tail of the log instead of replaying everything. A snapshot is a header
// and runs of entities, one message (a part) each.
#pragma once

#include <capnp/common.h>
#include <kj/array.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/event_codec.h"
#include "projections/domain/projection.h"

namespace okr {

inline constexpr uint32_t kSnapshotFormatVersion = 2;
// About how many revisions, check-ins, corrections, comments and entities
// one part holds: a part of a large snapshot is about 180 KB.
inline constexpr size_t kSnapshotPartItems = 1024;

// Stateless; both functions are safe to call from any thread. Encode
// reads the projection, which the caller keeps unchanged meanwhile; a
// decoded projection is the caller's.
class SnapshotCodec {
 public:
  // `head_hash` is the hash of the event at projection.seq(); it ties the
  // snapshot to one log. The same projection encodes to the same parts.
  static std::vector<std::string> Encode(const Projection& projection, const Hash& head_hash);
  // kCorruption when a part is malformed, missing or of another snapshot,
  // or the format is unknown.
  static Result<Projection> Decode(const std::vector<std::string>& parts, Hash* head_hash);
};

// Decodes a snapshot a part at a time, as its parts are read: a reader
// holds one part at a time, never the whole snapshot.
class SnapshotDecoder {
 public:
  // The next part. False once a part did not decode: read no more.
  bool Add(std::string_view part);
  // The projection the parts added make up; see SnapshotCodec::Decode.
  Result<Projection> Finish(Hash* head_hash);

 private:
  Status AddPart(std::string_view part);

  Status status_ = Status::Ok();
  uint32_t added_ = 0;
  uint32_t format_ = 0;
  uint32_t parts_ = 0;  // as the header says
  std::vector<uint8_t> head_hash_;
  Projection projection_;
  kj::Array<capnp::word> aligned_;  // a part that was not word-aligned
};

}  // namespace okr
