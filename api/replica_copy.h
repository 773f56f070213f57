// What a read replica's follower (api/replica.h) checks in what its
// primary sends, and how it stores the pages of its catch-up: the blocks
// of the raw events stream, each event of it checked, the link that
// vouches for the last event of an append, and the thread that makes the
// pages' appends.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "eventstore/base/status.h"
#include "eventstore/event_store.h"
#include "eventstore/format.h"
#include "eventstore/sealing.h"

namespace okr::api {

// A stream's block holds one event: its bytes in base64 and its JSON.
inline constexpr size_t kMaxSseBlockBytes = 4 * format::kMaxEventBytes + (1u << 20);

// The blocks of a Server-Sent Events answer (each ends at an empty line),
// however its bytes are split on arrival.
class SseBlocks {
 public:
  struct Block {
    std::string event, data;
    std::optional<std::string> comment;  // a block of one comment line
  };

  // Takes the next bytes and calls `fn` for each block they complete,
  // until it returns false; false then, or when a block grows past
  // kMaxSseBlockBytes (too_large() says so).
  bool Feed(std::string_view bytes, const std::function<bool(const Block&)>& fn);
  bool too_large() const { return too_large_; }

 private:
  static Block Parse(std::string_view text);

  std::string pending_;
  bool too_large_ = false;
};

// An event of the raw events stream, checked: the seq due, and stored
// bytes that hash to the `hash` it came with and decode.
struct StreamedEvent {
  StoredEvent stored;
  int64_t recorded_at_us = 0;
  bool unknown_subject = false;  // sealed under a key `ring` neither holds nor erased
};

// The stream's event whose JSON is `data`, which must be seq `due`;
// kCorruption when it is not that event whole.
Result<StreamedEvent> CheckStreamedEvent(const std::string& data, uint64_t due,
                                         const KeyRing* ring);

// Whether `next`, the event of seq `seq`, names the hash of `before` as
// its prevHash; kCorruption when it does not (or does not decode).
Status Vouches(const StoredEvent& before, uint64_t seq, std::string_view next);

// The pages' appends, made on a thread of their own: while one is made
// durable the events of the next are read, and the next page is asked
// for without waiting for the last append, so the writer does not wait
// for the network nor the network for the writer. One append is stored
// while at most one more waits.
class PageStorer {
 public:
  explicit PageStorer(EventStore* store);
  ~PageStorer();
  PageStorer(const PageStorer&) = delete;
  PageStorer& operator=(const PageStorer&) = delete;

  // Hands `batch` (events that continue queued_head()) over once the one
  // before it was taken, checked as far as it can be without the writer
  // (EventStore::PrepareStored) while that one is stored; false, storing
  // nothing of it, once an append failed (Drain says why).
  bool Submit(std::vector<StoredEvent> batch);
  // Waits until every append handed over was made; what the first that
  // failed said. Then the next page starts from this log's head again.
  Status Drain();
  // The seq of the last event handed over; this log's head when none waits.
  uint64_t queued_head() const;

 private:
  void Loop();

  EventStore* const store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t queued_head_;                // guarded by mu_
  std::optional<PreparedStored> next_;  // guarded by mu_: handed over, not taken
  bool busy_ = false;                   // guarded by mu_: an append under way
  bool closing_ = false;                // guarded by mu_
  Status failed_;                       // guarded by mu_: the first append that failed
  std::thread thread_;
};

}  // namespace okr::api
