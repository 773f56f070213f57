// A read replica's copy of its primary's log (SPEC §9): the primary's
// stored bytes, fetched through GET /v1/events/raw from this log's head
// and stored with EventStore::AppendStored, which refuses any event that
// does not continue the log. What is stored reaches the projection as a
// primary's own appends do (the store's durable listener).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "eventstore/base/status.h"
#include "eventstore/event_store.h"

namespace httplib {
class Client;
}

namespace okr::api {

class ReplicaFollower {
 public:
  struct Options {
    std::string primary;  // the primary's base URL, http://host:port
    std::string token;    // a bearer token of the primary's replica role
    // Between pages once caught up, and the first wait after a failure
    // (doubled after each one in a row, up to max_backoff).
    std::chrono::milliseconds poll{50};
    std::chrono::milliseconds max_backoff{5000};
  };
  struct State {
    uint64_t primary_head = 0;  // the primary's head as it last said (Okrd-Head-Seq)
    bool connected = false;     // the last page was fetched whole
    bool diverged = false;      // the primary's history disagrees with this log: stopped
    std::string problem;        // why diverged, or the last failure while connected is false
  };

  // Starts following on a thread of its own.
  ReplicaFollower(EventStore* store, Options options);
  // Stops following, waiting for a page in flight to end.
  ~ReplicaFollower();
  ReplicaFollower(const ReplicaFollower&) = delete;
  ReplicaFollower& operator=(const ReplicaFollower&) = delete;

  State state() const;

 private:
  void Run();
  // One page of the primary's log after this log's head: how many events
  // it stored, or why not (kCorruption: the histories disagree).
  Result<uint64_t> FetchPage(httplib::Client& client);
  // Waits `d` unless stopped first; false once stopped.
  bool Wait(std::chrono::milliseconds d);
  void Set(State state);

  EventStore* store_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  State state_;
  std::thread thread_;
};

}  // namespace okr::api
