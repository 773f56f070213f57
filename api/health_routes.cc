// /healthz and /metrics: whether okrd is healthy, and how it is doing
// (SPEC §6, §7, §9).
#include <sys/statvfs.h>

#include <cstdint>

#include "api/handler.h"

namespace okr::api {

using nlohmann::json;

// The log's check (SPEC §7) as /healthz shows it.
static json LogCheckJson(const LogCheck& check) {
  json j = {{"state", LogCheckStateName(check.state)},
            {"checked", check.checked},
            {"total", check.total}};
  if (check.state == LogCheck::State::kVerified) j["took_us"] = check.took_us;
  if (check.state == LogCheck::State::kDamaged) {
    j["first_bad_seq"] = check.first_bad_seq;
    j["problem"] = check.problem;
  }
  return j;
}

// Liveness stays open for probes; under --private only a token holder
// learns anything about the log.
// 200 "ok", or 503 with the status and why (SPEC §6), so a load
// balancer stops routing to an okrd that cannot take writes.
void Server::Routes::Health(Call& c) {
  auto stuck = projector_->stuck();
  const LogCheck check = store_->BackgroundCheck();
  const bool corrupt = check.state == LogCheck::State::kDamaged;
  const bool diverged = Diverged();
  int status = stuck || corrupt || diverged ? 503 : 200;
  json body = {{"status", corrupt ? "corrupt" : stuck ? "stuck" : diverged ? "diverged" : "ok"}};
  if (options_.private_reads && !c.principal) return c.Send(status, body);
  AddRoleHealth(&body);
  body["head_seq"] = store_->head().seq;
  body["projected_seq"] = projector_->seq();
  if (stuck) {
    body["stuck_seq"] = stuck->seq;
    body["reason"] = stuck->reason;
  }
  body["log_check"] = LogCheckJson(check);
  c.Send(status, body);
}

// The filesystem holding the log, for an alert before it fills (a full
// disk refuses every write). Nothing when okrd was given no directory or
// statvfs fails: an absent series, not a wrong one.
std::string Server::Routes::DiskMetrics() const {
  struct statvfs fs {};
  if (options_.data_dir.empty() || ::statvfs(options_.data_dir.c_str(), &fs) != 0) return "";
  const auto block = static_cast<unsigned long long>(fs.f_frsize);
  return "# HELP okrd_data_filesystem_avail_bytes Bytes okrd may still write on the filesystem "
         "of its data directory.\n"
         "# TYPE okrd_data_filesystem_avail_bytes gauge\n"
         "okrd_data_filesystem_avail_bytes " +
         std::to_string(block * fs.f_bavail) +
         "\n# HELP okrd_data_filesystem_size_bytes The size of that filesystem.\n"
         "# TYPE okrd_data_filesystem_size_bytes gauge\n"
         "okrd_data_filesystem_size_bytes " +
         std::to_string(block * fs.f_blocks) + "\n";
}

void Server::Routes::MetricsText(Call& c) {
  uint64_t head = store_->head().seq;
  uint64_t snapshot_seq = store_->NewestSnapshotSeq();
  int64_t age = snapshot_seq > 0 ? static_cast<int64_t>(head - snapshot_seq) : -1;
  c.res.status = 200;
  auto stuck = projector_->stuck();
  const LogCheck check = store_->BackgroundCheck();
  const char* status = UnhealthyStatus();
  c.res.set_content(
      metrics_->Render(head, projector_->seq(), age, projector_->batches_left_to_follower(),
                       status ? status : "ok", stuck ? stuck->seq : 0, check) +
          DiskMetrics() + RoleMetrics() + WebhookMetrics(head),
      "text/plain; version=0.0.4");
}

}  // namespace okr::api
