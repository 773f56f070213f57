// Fetching the log's stored bytes from okrd (GET /v1/events/raw, frames
// of seq, length and bytes), so okrctl can check the chain itself
// (eventstore/chain.h) without trusting whoever serves them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "api/routes/raw_frames.h"
#include "eventstore/base/status.h"
#include "tools/ctl/client.h"

namespace okr::ctl {

using api::RawEventFn;
using api::RawFrameReader;

// Pages through GET /v1/events/raw?after=…&limit=… (kMaxRawEvents a page)
// from seq `after` + 1 up to `up_to` and calls `fn` with each event's seq
// and its stored bytes, in order, until it returns false. `progress` gets
// the last seq seen, now and then and at the end. Errors: the server's
// answer, a transport failure or a malformed frame (RawFrameReader), told
// after `fn` has had every event before it. Blocks the calling thread;
// `fn` and `progress` run on it, while a thread of the call's own uses
// `client`, and only during the call.
Status FetchRawEvents(Client& client, uint64_t up_to, const RawEventFn& fn,
                      const std::function<void(uint64_t)>& progress = {}, uint64_t after = 0);

}  // namespace okr::ctl
