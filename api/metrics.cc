#include "api/metrics.h"

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

std::string Metrics::Render(uint64_t head_seq, uint64_t projected_seq,
                            int64_t snapshot_age_events, const std::string& status,
                            uint64_t stuck_seq) const {
  std::ostringstream out;
  std::lock_guard<std::mutex> lock(mu_);
  out << "# HELP okrd_status 1 for the status /healthz reports, 0 for the others.\n"
      << "# TYPE okrd_status gauge\n";
  for (const char* name : {"ok", "stuck"}) {
    out << "okrd_status{status=\"" << name << "\"} " << (status == name ? 1 : 0) << "\n";
  }
  out << "# HELP okrd_stuck_seq The event the projection could not fold (0: none).\n"
      << "# TYPE okrd_stuck_seq gauge\n"
      << "okrd_stuck_seq " << stuck_seq << "\n";
  out << "# HELP okrd_requests_total HTTP requests answered, by route and status.\n"
      << "# TYPE okrd_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out << "okrd_requests_total{method=\"" << std::get<0>(key) << "\",route=\"" << std::get<1>(key)
        << "\",status=\"" << std::get<2>(key) << "\"} " << count << "\n";
  }
  out << "# HELP okrd_request_duration_seconds Time from routing to answer.\n"
      << "# TYPE okrd_request_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBucketsSeconds.size(); ++i) {
    cumulative += latency_[i];
    out << "okrd_request_duration_seconds_bucket{le=\"" << kLatencyBucketsSeconds[i] << "\"} "
        << cumulative << "\n";
  }
  cumulative += latency_.back();
  out << "okrd_request_duration_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
      << "okrd_request_duration_seconds_sum " << latency_sum_seconds_ << "\n"
      << "okrd_request_duration_seconds_count " << latency_count_ << "\n";
  out << "# HELP okrd_connections_refused_total Connections answered 503 as they arrived: every worker "
         "thread busy and the queue full (threads_busy), or too many from one address (per_address).\n"
      << "# TYPE okrd_connections_refused_total counter\n";
  for (const auto& [reason, count] : connections_refused_) {
    out << "okrd_connections_refused_total{reason=\"" << reason << "\"} " << count << "\n";
  }
  out << "# HELP okrd_requests_timed_out_total Requests that did not arrive within the receive deadline.\n"
      << "# TYPE okrd_requests_timed_out_total counter\n"
      << "okrd_requests_timed_out_total " << requests_timed_out_ << "\n";
  out << "# HELP okrd_append_batch_events Events per durable append batch (one WAL sync).\n"
      << "# TYPE okrd_append_batch_events histogram\n";
  cumulative = 0;
  for (size_t i = 0; i < kBatchBuckets.size(); ++i) {
    cumulative += batch_events_[i];
    out << "okrd_append_batch_events_bucket{le=\"" << kBatchBuckets[i] << "\"} " << cumulative << "\n";
  }
  cumulative += batch_events_.back();
  out << "okrd_append_batch_events_bucket{le=\"+Inf\"} " << cumulative << "\n"
      << "okrd_append_batch_events_sum " << appended_events_ << "\n"
      << "okrd_append_batch_events_count " << (batches_ - batch_failures_) << "\n";
  out << "# HELP okrd_append_batch_failures_total Append batches the storage refused.\n"
      << "# TYPE okrd_append_batch_failures_total counter\n"
      << "okrd_append_batch_failures_total " << batch_failures_ << "\n";
  out << "# HELP okrd_append_write_seconds_total Time spent in synced batch writes.\n"
      << "# TYPE okrd_append_write_seconds_total counter\n"
      << "okrd_append_write_seconds_total " << batch_write_seconds_ << "\n";
  out << "# HELP okrd_events_appended_total Events appended by this process.\n"
      << "# TYPE okrd_events_appended_total counter\n"
      << "okrd_events_appended_total " << appended_events_ << "\n";
  out << "# HELP okrd_head_seq Seq of the last durable event.\n"
      << "# TYPE okrd_head_seq gauge\n"
      << "okrd_head_seq " << head_seq << "\n";
  out << "# HELP okrd_projected_seq Seq of the last event folded into the served state.\n"
      << "# TYPE okrd_projected_seq gauge\n"
      << "okrd_projected_seq " << projected_seq << "\n";
  out << "# HELP okrd_snapshot_age_events Events since the newest snapshot (-1: none).\n"
      << "# TYPE okrd_snapshot_age_events gauge\n"
      << "okrd_snapshot_age_events " << snapshot_age_events << "\n";
  return out.str();
}

}  // namespace okr::api
