// A read replica's copy of its primary's log (SPEC §9): the primary's
// stored bytes, fetched through GET /v1/events/raw from this log's head
// until it reaches the primary's, then followed through the primary's
// GET /v1/events/stream?raw=true, and stored with EventStore::AppendStored,
// which refuses any event that does not continue the log. What is stored reaches the projection as
// a primary's own appends do (the store's durable listener).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/routes/raw_frames.h"
#include "eventstore/base/status.h"
#include "eventstore/checkpoint.h"
#include "eventstore/event_store.h"

namespace httplib {
class Client;
class Result;
struct Response;
}  // namespace httplib

namespace okr::api {

class PageStorer;  // api/replica_copy.h

class ReplicaFollower {
 public:
  struct State {
    uint64_t primary_head = 0;                // the primary's head as it last said (Okrd-Head-Seq)
    int64_t primary_head_recorded_at_us = 0;  // that head's recordedAt (Okrd-Head-Recorded-At)
    bool connected = false;                   // the last page was fetched whole
    bool diverged = false;  // the primary's history disagrees with this log: stopped
    std::string problem;    // why diverged, or the last failure while connected is false
  };
  struct Options {
    std::string primary;  // the primary's base URL, http://host:port
    std::string token;    // a bearer token of the primary's replica role
    // The first wait after a failure (doubled after each one in a row,
    // up to max_backoff).
    std::chrono::milliseconds poll{50};
    std::chrono::milliseconds max_backoff{5000};
    // The copied events' bytes in one append, at most (the append stops at
    // the first event that reaches it, so it may pass it by that event);
    // the pages hold at most three times as many (one append being stored,
    // one waiting, one being read), the stream's inbox four times as many. Bounds the
    // memory a page or a stream of large events takes while it is stored.
    size_t most_append_bytes = size_t{64} << 20;
    // --log-key: the verifier the primary's checkpoints must verify with,
    // given out of band; nullopt: the one the copied log records.
    std::optional<NoteVerifier> log_key;
    // This okrd's key ring (SPEC §10): before storing events sealed with
    // keys it lacks, the follower copies the primary's keys and erasures
    // into it (GET /v1/replication/keys). Null: sealed fields read as erased.
    KeyRing* key_ring = nullptr;
    // Called, on the follower's thread, with the new state when
    // `connected` or `diverged` changes or a first problem appears; it
    // must not call the follower.
    std::function<void(const State&)> on_change;
  };

  // Starts following on a thread of its own.
  ReplicaFollower(EventStore* store, Options options);
  // Stops following, waiting for a page in flight to end.
  ~ReplicaFollower();
  ReplicaFollower(const ReplicaFollower&) = delete;
  ReplicaFollower& operator=(const ReplicaFollower&) = delete;

  State state() const;
  // How far this log is behind the primary's head as last heard (SPEC §9):
  // events, and the time between the two heads' recordedAt (0 when caught up).
  struct Lag {
    uint64_t events = 0;
    double seconds = 0;
  };
  Lag lag() const;
  const std::string& primary() const { return options_.primary; }

  // The newest checkpoint the primary signed of this log's tree, verified
  // (its signature by the log's key, and its root this log's own);
  // nullopt until one is.
  struct KeptCheckpoint {
    uint64_t size = 0;
    Hash root{};
    std::string note;
  };
  std::optional<KeptCheckpoint> checkpoint() const;

 private:
  void Run();
  // What one answer of the raw route said of itself.
  struct Page {
    int status = 0;
    uint64_t head = 0;  // Okrd-Head-Seq
    int64_t head_recorded_at_us = 0;
    std::optional<Hash> head_hash;
    std::string keys_version;  // Okrd-Keys-Version: the primary's keys then
    std::string refusal;       // the start of a refusal's body
    void Read(const httplib::Response& r);
    // kCorruption when the event `seq` is the head and `bytes` do not
    // hash to Okrd-Head-Hash.
    Status CheckHead(uint64_t seq, std::string_view bytes) const;
    // Whether the answer came whole, from `after` on, and its head is not
    // behind `queued`, the last event handed over to be stored.
    Status Check(const httplib::Result& res, const RawFrameReader& reader, uint64_t after,
                 uint64_t queued) const;
  };
  // One page of the primary's log after the last event handed to
  // `storer` (this log's head when none waits): how many events it handed
  // over, or why not (kCorruption: the histories disagree). `keys` is a
  // second connection, for SyncKeys while the page streams in.
  Result<uint64_t> FetchPage(httplib::Client& client, httplib::Client& keys, PageStorer& storer);
  // Makes this ring hold the primary's keys of `version` (Okrd-Keys-Version)
  // or newer, unless it already does; kIOError when they cannot be fetched.
  Status SyncKeys(httplib::Client& client, const std::string& version);
  // Copies the primary's keys and erasures into this ring, whatever its version.
  Status FetchKeys(httplib::Client& client);
  // Follows the primary's GET /v1/events/stream?raw=true from this log's
  // head until the stream ends (Ok: page and follow again), storing each
  // event as it arrives once its hash and its place in the chain check,
  // and keeping each checkpoint the stream carries. kCorruption when the
  // histories disagree; kIOError when the stream cannot be had.
  Status Follow(httplib::Client& client, httplib::Client& keys);
  struct Inbox;
  // Follow's second thread: stores what the stream brought, each append
  // taking all that gathered while the last was made durable, and keeps
  // the checkpoints after the events they sign. A failure stops `stream`.
  void StoreFromInbox(Inbox& inbox, httplib::Client& stream, httplib::Client& keys);
  // Keeps the checkpoint `data` (a checkpoint event's: note, root, size)
  // once it verifies with the log's key and names this log's own tree of
  // that size; kCorruption when it does not.
  Status KeepCheckpoint(const std::string& data);
  // Waits `d` unless stopped first; false once stopped.
  bool Wait(std::chrono::milliseconds d);
  bool Stopping() const;
  void Set(State state);

  EventStore* store_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  State state_;
  std::optional<KeptCheckpoint> checkpoint_;  // guarded by mu_
  // The follower's clients while it runs, for the destructor to stop a
  // read in flight; guarded by mu_.
  std::vector<httplib::Client*> clients_;
  std::string keys_version_;  // the primary's keys last copied; the follower's thread only
  std::thread thread_;
};

}  // namespace okr::api
