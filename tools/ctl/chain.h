// Checking a hash chain from its stored bytes alone, event by event, as
// they arrive (from okrd's /v1/events?raw=true), without trusting whoever
// serves them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "tools/ctl/client.h"

namespace okr::ctl {

// The checks of EventStore::Verify over a stream of stored values: seqs
// dense from 1, each value decodes, its seq field is its position, its
// prevHash is the SHA-256 of the previous value, recordedAt never goes
// back, per-entity versions are dense.
class ChainChecker {
 public:
  // Checks the next stored value; false once the chain is broken (the
  // report then says where). `seq` is the seq it was served under.
  bool Add(uint64_t seq, std::string_view bytes);
  const VerifyReport& report() const { return report_; }

 private:
  bool Fail(uint64_t seq, std::string problem);
  VerifyReport report_;
  Hash prev_ = kZeroHash;
  int64_t last_time_ = INT64_MIN;
  std::unordered_map<std::string, uint64_t> versions_;
};

// Pages through GET /v1/events?raw=true&after=…&limit=… up to `up_to` and
// calls `fn` with each event's seq and its stored bytes (decoded from
// base64) in order, until it returns false. `progress` gets the last seq
// seen. Errors: the server's answer, or a page without raw values.
Status FetchRawEvents(Client& client, uint64_t up_to,
                      const std::function<bool(uint64_t seq, const std::string& bytes)>& fn,
                      const std::function<void(uint64_t)>& progress = {});

inline constexpr size_t kEventsPageSize = 1000;  // the API's largest page

}  // namespace okr::ctl
