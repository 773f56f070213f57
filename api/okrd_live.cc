#include "api/okrd_live.h"

#include <cassert>

#include "eventstore/base/time.h"
#include "projections/read/digest.h"

namespace okr::api {

void AddWebhookOptions(CLI::App& app, WebhookFlags& f) {
  app.add_option("--keystore", f.keystore_dir,
                 "Key store directory (webhook URLs and secrets; mode 0700, created when "
                 "missing), outside the data directory and its backups. Default: the data "
                 "directory's path plus '.keys'");
  app.add_option("--digest-at", f.digest_at,
                 "HH:MM (UTC): when webhooks subscribed to 'digest' get the day's digest")
      ->capture_default_str();
  app.add_option("--webhook-ca-file", f.ca_file,
                 "PEM file of the CA certificates https webhook receivers are checked against "
                 "(default: the system's)");
  // Hidden (group ""): for tests only.
  app.add_option("--webhook-retry-base-ms", f.retry_base_ms)->group("");
  app.add_option("--webhook-retry-cap-ms", f.retry_cap_ms)->group("");
  app.add_option("--webhook-failure-window-s", f.failure_window_s)->group("");
  app.add_option("--webhook-timeout-ms", f.timeout_ms)->group("");
  app.add_option("--webhook-clock-offset-s", f.clock_offset_s)->group("");
}

void AddStreamOptions(CLI::App& app, StreamFlags& f) {
  app.add_option("--max-streams", f.max_streams,
                 "Event and change streams open at once (they hold no worker thread); more are "
                 "answered 503 with Retry-After")
      ->check(CLI::Range(size_t{1}, size_t{100'000}))
      ->capture_default_str();
  app.add_option("--stream-heartbeat", f.heartbeat_s,
                 "Seconds between the comments that keep an idle stream open through proxies")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--stream-stall", f.stall_s,
                 "Seconds a stream's client may read nothing while okrd has events for it; "
                 "then it is disconnected (it resumes with Last-Event-ID)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
}

StreamOptions ToStreamOptions(const StreamFlags& f) {
  StreamOptions options;
  options.max_streams = f.max_streams;
  options.heartbeat = std::chrono::seconds(f.heartbeat_s);
  options.stall = std::chrono::seconds(f.stall_s);
  return options;
}

std::optional<int> ParseDigestAt(const std::string& text) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  for (int i : {0, 1, 3, 4}) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  }
  int hours = (text[0] - '0') * 10 + (text[1] - '0');
  int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  if (hours > 23 || minutes > 59) return std::nullopt;
  return hours * 60 + minutes;
}

std::string KeyStoreDir(const WebhookFlags& f, const std::string& data_dir) {
  return f.keystore_dir.empty() ? DefaultKeyStorePath(data_dir) : f.keystore_dir;
}

void EraseWhatTheLogErased(bool forensics, Projector* projector, KeyRing* ring) {
  if (ring == nullptr) return;
  std::vector<std::string> erased;
  projector->Read([&](const Projection& p) {
    for (const auto& [id, unit] : p.units()) {
      for (const auto& revision : unit.revisions) {
        if (revision.meta.which == schema::Event::Which::SUBJECT_ERASED) erased.push_back(id);
      }
    }
  });
  for (const std::string& subject : erased) {
    if (ring->IsErased(subject)) continue;
    if (forensics) {
      ring->Forget(subject);
    } else {
      (void)ring->Erase(subject);  // a failure leaves it to the next start
    }
  }
}

Result<std::unique_ptr<webhooks::Webhooks>> StartWebhooks(const WebhookFlags& f, EventStore* store,
                                                          Projector* projector, KeyStore* keys,
                                                          webhooks::LogFn log) {
  auto digest_minute = ParseDigestAt(f.digest_at);
  if (!digest_minute) return Status::Invalid("--digest-at must be HH:MM (UTC)");
  if (f.retry_base_ms <= 0 || f.retry_cap_ms < f.retry_base_ms || f.failure_window_s <= 0 ||
      f.timeout_ms <= 0) {
    return Status::Invalid("the webhook retry, window and timeout flags must be positive");
  }
  webhooks::WebhookOptions options;
  options.retry_base_us = f.retry_base_ms * 1000;
  options.retry_cap_us = f.retry_cap_ms * 1000;
  options.failure_window_us = f.failure_window_s * 1'000'000;
  options.timeout_us = f.timeout_ms * 1000;
  options.digest_minute_utc = *digest_minute;
  // Built under the projection's shared lock, once a day per webhook:
  // at most kDigestMaxEntries entries.
  options.digest = [](const Projection& p, int64_t now_us) { return DigestJson(p, now_us); };
  options.ca_file = f.ca_file;
  const int64_t offset_us = f.clock_offset_s * 1'000'000;
  options.clock_us = [offset_us] { return SystemClockUs() + offset_us; };
  options.log = std::move(log);
  return webhooks::Webhooks::Start(store, projector, keys, options);
}

}  // namespace okr::api
