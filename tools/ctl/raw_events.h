// Fetching the log's stored bytes from okrd (/v1/events?raw=true), so
// okrctl can check the chain itself (eventstore/chain.h) without trusting
// whoever serves them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "eventstore/base/status.h"
#include "tools/ctl/client.h"

namespace okr::ctl {

// Pages through GET /v1/events?raw=true&after=…&limit=… up to `up_to` and
// calls `fn` with each event's seq and its stored bytes (decoded from
// base64) in order, until it returns false. `progress` gets the last seq
// seen. Errors: the server's answer, or a page without raw values.
// Blocks the calling thread; uses `client` only during the call.
Status FetchRawEvents(Client& client, uint64_t up_to,
                      const std::function<bool(uint64_t seq, const std::string& bytes)>& fn,
                      const std::function<void(uint64_t)>& progress = {});

inline constexpr size_t kEventsPageSize = 1000;  // the API's largest page

}  // namespace okr::ctl
