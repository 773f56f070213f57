// Prometheus metrics of one okrd process. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "eventstore/event_store.h"

namespace okr::api {

// The log check's state as /healthz and /metrics name it: "not_checked",
// "checking", "verified", "damaged".
const char* LogCheckStateName(LogCheck::State state);

class Metrics {
 public:
  // One answered request: its route pattern (not the raw path, so ids do
  // not explode the label set), status and latency.
  void Request(const std::string& method, const std::string& route, int status, int64_t micros);
  // One append batch of the event store.
  void Batch(size_t appends, size_t events, int64_t write_us, bool ok);
  // A connection answered 503 (with Retry-After) as it arrived, before any
  // request was read: `reason` is "threads_busy" (every worker thread busy
  // and the queue full) or "per_address" (--max-connections-per-address).
  void ConnectionRefused(const std::string& reason);
  // A request that did not arrive within kRequestReceiveSeconds; its
  // connection was closed.
  void RequestTimedOut();
  // A stream (SPEC §8) opened; one closed, and why: "client_closed",
  // "slow" (its client read nothing for the stall time), "stopping",
  // "tokens_changed" (SIGHUP: every follower is admitted again).
  void StreamOpened();
  void StreamClosed(const std::string& reason);
  // The text exposition format, with the gauges given and the projector's
  // count of batches its writer thread left to the follower: `status` is
  // what /healthz says ("ok", "stuck", "corrupt"), `stuck_seq` the event
  // folding stopped at (0 while it has not), `check` the log's check.
  std::string Render(uint64_t head_seq, uint64_t projected_seq, int64_t snapshot_age_events,
                     uint64_t batches_left_to_follower, const std::string& status = "ok",
                     uint64_t stuck_seq = 0, const LogCheck& check = {}) const;

 private:
  static constexpr std::array<double, 12> kLatencyBucketsSeconds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5};
  static constexpr std::array<double, 8> kBatchBuckets = {1, 2, 4, 8, 16, 32, 64, 128};

  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::array<uint64_t, kLatencyBucketsSeconds.size() + 1> latency_{};
  double latency_sum_seconds_ = 0;
  uint64_t latency_count_ = 0;
  std::array<uint64_t, kBatchBuckets.size() + 1> batch_events_{};
  uint64_t batches_ = 0;
  uint64_t batch_failures_ = 0;
  uint64_t appended_events_ = 0;
  double batch_write_seconds_ = 0;
  std::map<std::string, uint64_t> connections_refused_ = {{"per_address", 0}, {"threads_busy", 0}};
  uint64_t requests_timed_out_ = 0;
  uint64_t streams_open_ = 0;
  std::map<std::string, uint64_t> streams_closed_ = {
      {"client_closed", 0}, {"slow", 0}, {"stopping", 0}, {"tokens_changed", 0}};
};

}  // namespace okr::api
