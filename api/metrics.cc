#include "api/metrics.h"

#include <cassert>
#include <ostream>
#include <sstream>

namespace okr::api {

void Metrics::Request(const std::string& method, const std::string& route, int status,
                      int64_t micros) {
  double seconds = static_cast<double>(micros) / 1e6;
  std::lock_guard<std::mutex> lock(mu_);
  requests_[{method, route, status}]++;
  size_t b = 0;
  while (b < kLatencyBucketsSeconds.size() && seconds > kLatencyBucketsSeconds[b]) ++b;
  latency_[b]++;
  latency_sum_seconds_ += seconds;
  latency_count_++;
}

void Metrics::Batch(size_t appends, size_t events, int64_t write_us, bool ok) {
  (void)appends;
  std::lock_guard<std::mutex> lock(mu_);
  batches_++;
  if (!ok) {
    batch_failures_++;
    return;
  }
  size_t b = 0;
  while (b < kBatchBuckets.size() && static_cast<double>(events) > kBatchBuckets[b]) ++b;
  batch_events_[b]++;
  appended_events_ += events;
  batch_write_seconds_ += static_cast<double>(write_us) / 1e6;
}

void Metrics::ConnectionRefused(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  connections_refused_[reason]++;
}

void Metrics::RequestTimedOut() {
  std::lock_guard<std::mutex> lock(mu_);
  requests_timed_out_++;
}

void Metrics::StreamOpened() {
  std::lock_guard<std::mutex> lock(mu_);
  streams_open_++;
}

void Metrics::StreamClosed(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_open_--;
  streams_closed_[reason]++;
}

namespace {

// A histogram's bucket lines (cumulative, as Prometheus reads them), then
// its +Inf bucket, sum and count. `counts` has one more slot than
// `bounds`: the observations above the last bound.
template <size_t N, typename Sum, typename Count>
void WriteHistogram(std::ostream& out, const char* name, const std::array<double, N>& bounds,
                    const std::array<uint64_t, N + 1>& counts, Sum sum, Count count) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    out << name << "_bucket{le=\"" << bounds[i] << "\"} " << cumulative << "\n";
  }
  cumulative += counts.back();
  out << name << "_bucket{le=\"+Inf\"} " << cumulative << "\n"
      << name << "_sum " << sum << "\n"
      << name << "_count " << count << "\n";
}

// One unlabelled gauge or counter, with its HELP and TYPE lines.
template <typename T>
void WriteScalar(std::ostream& out, const char* name, const char* type, const char* help, T value) {
  out << "# HELP " << name << " " << help << "\n"
      << "# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
}

}  // namespace

const char* LogCheckStateName(LogCheck::State state) {
  switch (state) {
    case LogCheck::State::kNotChecked:
      return "not_checked";
    case LogCheck::State::kChecking:
      return "checking";
    case LogCheck::State::kVerified:
      return "verified";
    case LogCheck::State::kDamaged:
      return "damaged";
  }
  return "not_checked";
}

namespace {

// The log's check (SPEC §7): its state, one series per state, and progress.
void WriteLogCheck(std::ostream& out, const LogCheck& check) {
  out << "# HELP okrd_log_check_state 1 for the state of the log's check, 0 for the others.\n"
      << "# TYPE okrd_log_check_state gauge\n";
  for (auto state : {LogCheck::State::kNotChecked, LogCheck::State::kChecking,
                     LogCheck::State::kVerified, LogCheck::State::kDamaged}) {
    out << "okrd_log_check_state{state=\"" << LogCheckStateName(state) << "\"} "
        << (check.state == state ? 1 : 0) << "\n";
  }
  WriteScalar(out, "okrd_log_check_checked_events", "gauge",
              "Events the log's check has found sound, from seq 1.", check.checked);
  WriteScalar(out, "okrd_log_check_total_events", "gauge",
              "Events the log's check covers: the head when it began.", check.total);
  WriteScalar(out, "okrd_log_check_first_bad_seq", "gauge",
              "The first damaged event the check found (0: none).", check.first_bad_seq);
}

}  // namespace

std::string Metrics::Render(uint64_t head_seq, uint64_t projected_seq, int64_t snapshot_age_events,
                            uint64_t batches_left_to_follower, const std::string& status,
                            uint64_t stuck_seq, const LogCheck& check) const {
  std::ostringstream out;
  std::lock_guard<std::mutex> lock(mu_);
  assert(batch_failures_ <= batches_);
  out << "# HELP okrd_status 1 for the status /healthz reports, 0 for the others.\n"
      << "# TYPE okrd_status gauge\n";
  for (const char* name : {"ok", "stuck", "corrupt", "diverged"}) {
    out << "okrd_status{status=\"" << name << "\"} " << (status == name ? 1 : 0) << "\n";
  }
  WriteScalar(out, "okrd_stuck_seq", "gauge", "The event the projection could not fold (0: none).",
              stuck_seq);
  WriteLogCheck(out, check);
  out << "# HELP okrd_requests_total HTTP requests answered, by route and status.\n"
      << "# TYPE okrd_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out << "okrd_requests_total{method=\"" << std::get<0>(key) << "\",route=\"" << std::get<1>(key)
        << "\",status=\"" << std::get<2>(key) << "\"} " << count << "\n";
  }
  out << "# HELP okrd_request_duration_seconds Time from routing to answer.\n"
      << "# TYPE okrd_request_duration_seconds histogram\n";
  WriteHistogram(out, "okrd_request_duration_seconds", kLatencyBucketsSeconds, latency_,
                 latency_sum_seconds_, latency_count_);
  out << "# HELP okrd_connections_refused_total Connections answered 503 as they arrived: every "
         "worker "
         "thread busy and the queue full (threads_busy), or too many from one address "
         "(per_address).\n"
      << "# TYPE okrd_connections_refused_total counter\n";
  for (const auto& [reason, count] : connections_refused_) {
    out << "okrd_connections_refused_total{reason=\"" << reason << "\"} " << count << "\n";
  }
  WriteScalar(out, "okrd_requests_timed_out_total", "counter",
              "Requests that did not arrive within the receive deadline.", requests_timed_out_);
  WriteScalar(out, "okrd_streams_open", "gauge", "Event and change streams open.", streams_open_);
  out << "# HELP okrd_streams_closed_total Streams closed: by their client (client_closed), for "
         "reading nothing while okrd had events for them (slow), as okrd stopped (stopping), or as "
         "its tokens changed (tokens_changed).\n"
      << "# TYPE okrd_streams_closed_total counter\n";
  for (const auto& [reason, count] : streams_closed_) {
    out << "okrd_streams_closed_total{reason=\"" << reason << "\"} " << count << "\n";
  }
  out << "# HELP okrd_append_batch_events Events per durable append batch (one WAL sync).\n"
      << "# TYPE okrd_append_batch_events histogram\n";
  WriteHistogram(out, "okrd_append_batch_events", kBatchBuckets, batch_events_, appended_events_,
                 batches_ - batch_failures_);
  WriteScalar(out, "okrd_append_batch_failures_total", "counter",
              "Append batches the storage refused.", batch_failures_);
  WriteScalar(out, "okrd_append_write_seconds_total", "counter",
              "Time spent in synced batch writes.", batch_write_seconds_);
  WriteScalar(out, "okrd_events_appended_total", "counter", "Events appended by this process.",
              appended_events_);
  WriteScalar(out, "okrd_head_seq", "gauge", "Seq of the last durable event.", head_seq);
  WriteScalar(out, "okrd_projected_seq", "gauge",
              "Seq of the last event folded into the served state.", projected_seq);
  WriteScalar(out, "okrd_fold_batches_left_to_follower_total", "counter",
              "Durable batches the writer's thread could not fold (readers held the lock) and "
              "left to the follower thread.",
              batches_left_to_follower);
  WriteScalar(out, "okrd_snapshot_age_events", "gauge",
              "Events since the newest snapshot (-1: none).", snapshot_age_events);
  return out.str();
}

}  // namespace okr::api
