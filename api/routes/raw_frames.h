// The frames of a GET /v1/events/raw answer (SPEC §8: 8-byte big-endian
// seq, 4-byte big-endian length, the exact stored bytes), read strictly by
// whoever copies the log: okrctl's checks and a read replica.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "eventstore/base/status.h"

namespace okr::api {

// Called with each event's seq and its stored bytes (valid during the
// call only), in order; false stops the reading.
using RawEventFn = std::function<bool(uint64_t seq, std::string_view bytes)>;

// Reads the frames of one GET /v1/events/raw answer strictly, however the
// bytes are split on arrival: each frame is an 8-byte big-endian seq, a
// 4-byte big-endian length and that many bytes; seqs run from `first`
// one after another and never past `last`. Every refusal names the seq.
class RawFrameReader {
 public:
  RawFrameReader(uint64_t first, uint64_t last);

  // Takes the next bytes of the answer and calls `fn` for each frame they
  // complete. Corruption on a seq out of order or past `last`, or a length
  // over format::kMaxEventBytes. After `fn` returned false, stopped() and
  // the rest is ignored.
  Status Feed(std::string_view data, const RawEventFn& fn);
  // The answer ended: Corruption when it ended inside a frame.
  Status Finish() const;
  // The seq the next frame must carry.
  uint64_t next_seq() const { return next_; }
  bool stopped() const { return stopped_; }

 private:
  Status TakeFrames(std::string_view* data, const RawEventFn& fn);

  uint64_t next_, last_;
  bool stopped_ = false;
  std::string pending_;  // the start of a frame whose end has not arrived
};

}  // namespace okr::api
