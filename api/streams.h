// The live feeds of SPEC §8: GET /v1/events/stream (every event, as
// /v1/events shows it) and GET /v1/changes/stream ({seq, type, entity,
// cycle} for readers), as Server-Sent Events.
//
// A stream's connection is taken from cpp-httplib once its request is
// admitted (TakeConnection), so streams hold no worker thread: one thread
// of the hub writes every stream, from non-blocking sockets it waits on
// with epoll. Each stream reads the log from its own position: behind the
// newest events it encodes them from the store; at the live edge it
// copies frames encoded once for every stream (the hub's ring of recent
// events). Whatever a client does, a stream holds at most
// kStreamBufferBytes (plus one event) of okrd's memory and a socket send
// buffer of kStreamSendBufferBytes; a client that reads nothing while
// okrd has bytes for it is disconnected after `stall` and resumes with
// Last-Event-ID.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/log.h"
#include "api/metrics.h"
#include "eventstore/event_store.h"
#include "projections/service/projector.h"

namespace okr::api {

inline constexpr size_t kDefaultMaxStreams = 256;
inline constexpr std::chrono::seconds kStreamHeartbeat{15};
inline constexpr std::chrono::seconds kStreamStall{30};
// A stream encodes more events when less than this is waiting to be sent.
inline constexpr size_t kStreamBufferBytes = 128u << 10;
// The kernel's send buffer of a stream's socket (SO_SNDBUF), so that a
// client that stops reading costs bounded kernel memory too.
inline constexpr int kStreamSendBufferBytes = 256 << 10;
// Recent events the hub keeps encoded for the streams at the live edge:
// at most this many, in at most this many bytes.
inline constexpr size_t kStreamRingEvents = 4096;
inline constexpr size_t kStreamRingBytes = 16u << 20;

// How often, at most, the events streams with raw=true carry a signed
// checkpoint of the head (SPEC §9): once a second while the head moves,
// and once more when it comes to rest.
inline constexpr std::chrono::seconds kStreamCheckpointEvery{1};

struct StreamOptions {
  size_t max_streams = kDefaultMaxStreams;
  std::chrono::milliseconds heartbeat = kStreamHeartbeat;
  std::chrono::milliseconds stall = kStreamStall;
  LogFormat log_format = LogFormat::kText;
  // The data of a `checkpoint` event (one line of JSON: note, root, size)
  // for the log's tree of `size`, signed; nullopt when it cannot be had.
  // Empty: no checkpoints (no signing key, or a replica, which signs
  // nothing).
  std::function<std::optional<std::string>(uint64_t size)> checkpoint;
};

enum class StreamKind { kEvents, kChanges };

// One stream as its handler admitted it.
struct StreamRequest {
  StreamKind kind = StreamKind::kEvents;
  uint64_t after = 0;  // the first event sent is after+1
  bool raw = false;    // events: each event's stored bytes (base64) and hash, and checkpoints
  std::string cycle;   // changes: only this cycle's (and no cycle's); empty: all
  std::string request_id;
  std::string head;  // the HTTP answer's status line and headers, sent first
};

class StreamHub {
 public:
  // Borrows the store, projector and metrics, which must outlive it.
  StreamHub(EventStore* store, Projector* projector, StreamOptions options, Metrics* metrics,
            std::shared_ptr<spdlog::logger> log);
  ~StreamHub();  // Stop()
  StreamHub(const StreamHub&) = delete;
  StreamHub& operator=(const StreamHub&) = delete;

  // Holds a place for one more stream; false when max_streams are open or
  // held, or the hub has stopped. Each place held is given back by Adopt.
  bool Reserve();
  // Starts serving `request` on `sock` (taken from cpp-httplib, its place
  // held by Reserve); calls `release` once the socket is closed.
  void Adopt(int sock, std::function<void()> release, StreamRequest request);
  // Ends every stream (a last comment says why, then the connection
  // closes) and stops the hub's threads; later streams close at once.
  // Idempotent.
  void Stop();
  // Ends every stream open now, with a comment asking its client to
  // reconnect: a stream keeps the principal it was opened with, so when
  // the token table changes (SIGHUP) every follower is admitted again.
  // At an erasure in the log (SPEC §10) the hub itself forgets the events
  // it rendered, which may show what was erased, and ends every stream.
  void EndAll();

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace okr::api
