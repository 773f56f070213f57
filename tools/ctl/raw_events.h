// Fetching the log's stored bytes from okrd (GET /v1/events/raw, frames
// of seq, length and bytes), so okrctl can check the chain itself
// (eventstore/chain.h) without trusting whoever serves them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "eventstore/base/status.h"
#include "tools/ctl/client.h"

namespace okr::ctl {

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

// Pages through GET /v1/events/raw?after=…&limit=… (kMaxRawEvents a page)
// from seq `after` + 1 up to `up_to` and calls `fn` with each event's seq
// and its stored bytes, in order, until it returns false. `progress` gets
// the last seq seen. Errors: the server's answer, a transport failure or
// a malformed frame (RawFrameReader). Blocks the calling thread; uses
// `client` only during the call.
Status FetchRawEvents(Client& client, uint64_t up_to, const RawEventFn& fn,
                      const std::function<void(uint64_t)>& progress = {}, uint64_t after = 0);

}  // namespace okr::ctl
