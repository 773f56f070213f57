// What the stream hub (streams.cc) keeps for each stream and each recent
// event, and the Server-Sent Events it renders for them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/streams.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"

namespace okr::api::stream_parts {

using Clock = std::chrono::steady_clock;

// One SSE event: `id:` the seq, `event:` the type, `data:` one line of JSON
// (Dump escapes every control character, so the JSON holds no newline).
void AppendFrame(uint64_t seq, const std::string& type, const std::string& data, std::string* out);
// The events stream's data: the event as /v1/events shows it.
std::string EventData(schema::Event::Reader ev, std::string_view raw_bytes, bool raw);
// The changes stream's data.
std::string ChangeData(uint64_t seq, const std::string& type, const std::string& entity,
                       const std::string& cycle);

// A recent event, encoded once for every stream at the live edge.
struct Recent {
  uint64_t seq = 0;
  std::string type, entity;
  std::string bytes;      // as stored
  std::string frame;      // the events stream's frame
  std::string raw_frame;  // the same with raw=true; made when a stream first needs it
  std::string cycle;      // known once the projection has folded the event
  bool cycle_known = false;
};

struct Stream {
  int fd = -1;
  std::function<void()> release;
  StreamRequest req;
  uint64_t next = 1;  // the next seq to consider
  std::string out;    // bytes waiting for the client, from `sent_off`
  size_t sent_off = 0;
  bool blocked = false;               // the socket took no more; waits for EPOLLOUT
  bool broken = false;                // a send failed: the connection is gone
  Clock::time_point waiting_since{};  // when `out` last went from empty to not
  Clock::time_point last_queued{};    // for heartbeats
  uint64_t events = 0;                // events sent
  uint64_t checkpoint_sent = 0;       // the size of the last checkpoint sent (raw events)
  // Behind the ring: where it reads the store, up to cursor_last.
  std::unique_ptr<EventCursor> cursor;
  uint64_t cursor_next = 0, cursor_last = 0;
  Clock::time_point cursor_opened{};

  bool pending() const { return sent_off < out.size(); }
  void Queue(std::string_view bytes, Clock::time_point now) {
    if (!pending()) {
      out.clear();
      sent_off = 0;
      waiting_since = now;
    }
    out.append(bytes);
    last_queued = now;
  }
};

}  // namespace okr::api::stream_parts
