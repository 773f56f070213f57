#include "api/webhooks/delivery.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cassert>

#include "eventstore/base/thread_name.h"
#include "eventstore/base/time.h"
#include "eventstore/event_json.h"
#include "projections/read/changes.h"

namespace okr::webhooks {

namespace {

constexpr int64_t kUsPerDay = int64_t{86'400} * 1'000'000;
constexpr uint64_t kEventsPerRead = 64;
// How long the thread waits for new events before it looks at the clock
// (a digest due) and at Stop again.
constexpr std::chrono::milliseconds kIdleWait{200};

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string SignatureV1(const std::string& secret, int64_t t, const std::string& body) {
  const std::string signed_text = std::to_string(t) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac, &len);
  assert(len == 32);
  return Hex(mac, len);
}

std::string DeliveryId(const std::string& id, const std::string& what) {
  return ToHex(Sha256(id + "|" + what)).substr(0, 32);
}

int64_t BackoffUs(int attempt, int64_t base_us, int64_t cap_us) {
  assert(attempt >= 1 && base_us > 0 && cap_us >= base_us);
  int64_t ceiling = base_us;
  for (int i = 1; i < attempt && ceiling < cap_us; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap_us);
  uint64_t r = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r) != 1) r = 0;
  return static_cast<int64_t>(r % static_cast<uint64_t>(ceiling + 1));
}

Worker::Worker(WorkerEnv env, WebhookConfig config, DeliveryState state)
    : env_(std::move(env)), config_(std::move(config)), state_(state) {
  auto parts = SplitUrl(config_.url);
  assert(parts.has_value());  // registered URLs were checked
  base_url_ = parts->scheme + "://" + parts->host + (parts->port.empty() ? "" : ":" + parts->port);
  path_ = parts->path;
}

Worker::~Worker() { Stop(); }

void Worker::Start() {
  assert(!thread_.joinable() && !state_.disabled);
  running_ = true;
  thread_ = NamedThread("okr:webhooks", [this] { Run(); });
}

void Worker::RequestStop() {
  std::shared_ptr<httplib::Client> client;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    client = client_;
  }
  wake_.notify_all();
  // Outside mu_: stop() waits for the client's own socket lock, which a
  // connect or a TLS handshake holds for up to the timeout.
  if (client) client->stop();
}

void Worker::Stop() {
  RequestStop();
  if (!thread_.joinable()) return;
  while (!ended_) {
    std::this_thread::sleep_for(kStopRetry);
    std::shared_ptr<httplib::Client> client;
    {
      std::lock_guard lock(mu_);
      client = client_;
    }
    if (client) client->stop();
  }
  thread_.join();
}

DeliveryState Worker::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

int64_t Worker::NowUs() const { return env_.options->clock_us(); }

void Worker::Log(int level, const char* event,
                 std::vector<std::pair<const char*, nlohmann::json>> fields) {
  if (!env_.options->log) return;
  fields.insert(fields.begin(), {"webhook", config_.id});
  env_.options->log(level, event, fields);
}

void Worker::Run() {
  Log(2, "webhook_started", {{"cursor", state().cursor}});
  while (!stop_) {
    if (!DeliverDigestIfDue()) break;
    if (!DeliverPending()) break;
  }
  SaveCursor();
  running_ = false;
  ended_ = true;
}

void Worker::SaveCursor() {
  if (!cursor_dirty_) return;
  DeliveryState s = state();
  if (env_.records->SaveState(config_.id, s).ok()) cursor_dirty_ = false;
}

bool Worker::Wants(uint64_t seq, schema::Event::Reader ev) {
  const auto& types = config_.types;
  const char* name = EventTypeName(ev.which());
  bool typed = std::find(types.begin(), types.end(), kEveryType) != types.end() ||
               std::find(types.begin(), types.end(), name) != types.end();
  if (!typed) return false;
  if (config_.cycle.empty()) return true;
  std::string_view entity(ev.getEntity().cStr());
  // The cycle comes from the projection: wait until it has folded the
  // event (a new objective's cycle is unknown before), unless it is stuck.
  while (env_.projector->seq() < seq && !env_.projector->is_stuck() && !stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string cycle =
      env_.projector->Read([&](const Projection& p) { return CycleOfEntity(p, entity); });
  return FollowsCycle(config_.cycle, cycle);
}

// Delivers (or skips) the events after the cursor, a read at a time;
// waits a while for new ones when there are none. False when the thread
// must end.
bool Worker::DeliverPending() {
  const uint64_t cursor = state().cursor;
  if (env_.store->head().seq <= cursor) {
    SaveCursor();  // what was skipped, before going idle
    env_.store->WaitForEvents(cursor, kIdleWait);
    return true;
  }
  auto events = env_.store->Read(cursor, kEventsPerRead);
  if (!events.ok()) {
    Log(4, "webhook_read_failed", {{"error", events.status().ToString()}});
    return Pause(1'000'000);
  }
  for (const StoredEvent& stored : *events) {
    if (stop_) return false;
    auto decoded = DecodedEvent::Decode(stored.bytes);
    if (!decoded.ok()) {
      Log(4, "webhook_read_failed", {{"seq", stored.seq}, {"error", decoded.status().ToString()}});
      return Pause(1'000'000);
    }
    schema::Event::Reader ev = (*decoded)->event();
    if (!Wants(stored.seq, ev)) {
      std::lock_guard lock(mu_);
      state_.cursor = stored.seq;  // saved with the next delivery, or before idling
      cursor_dirty_ = true;
      continue;
    }
    Delivery d{"event", stored.seq, DeliveryId(config_.id, std::to_string(stored.seq)),
               AuditEventJson(ev).dump(), -1};
    if (!Deliver(d)) return false;
  }
  return true;
}

bool Worker::DeliverDigestIfDue() {
  bool wants =
      std::find(config_.types.begin(), config_.types.end(), kDigestType) != config_.types.end();
  if (!wants || !env_.options->digest) return true;
  const int64_t now = NowUs();
  const int64_t day = now / kUsPerDay;
  const int64_t minute = (now % kUsPerDay) / 60'000'000;
  if (minute < env_.options->digest_minute_utc || state().digest_day >= day) return true;
  Delivery d;
  d.kind = "digest";
  d.digest_day = day;
  d.delivery_id = DeliveryId(config_.id, "digest|" + FormatDate(day * kUsPerDay));
  d.body = env_.projector
               ->Read([&](const Projection& p) {
                 d.seq = p.seq();
                 return env_.options->digest(p, now);
               })
               .dump();
  return Deliver(d);
}

Worker::Outcome Worker::Post(const Delivery& d) {
  auto shared = std::make_shared<httplib::Client>(base_url_);
  httplib::Client& client = *shared;
  // The URL as registered, byte for byte; no body is read (below), so
  // none is inflated either.
  client.set_url_encode(false);
  client.set_decompress(false);
  const time_t secs = env_.options->timeout_us / 1'000'000;
  const time_t usecs = env_.options->timeout_us % 1'000'000;
  client.set_connection_timeout(secs, usecs);
  client.set_read_timeout(secs, usecs);
  client.set_write_timeout(secs, usecs);
  client.enable_server_certificate_verification(true);
  if (!env_.options->ca_file.empty()) client.set_ca_cert_path(env_.options->ca_file);
  const int64_t t = NowUs() / 1'000'000;
  httplib::Headers headers = {{"Okrd-Seq", std::to_string(d.seq)},
                              {"Okrd-Delivery", d.delivery_id},
                              {"Okrd-Signature", "t=" + std::to_string(t) + ",v1=" +
                                                     SignatureV1(config_.secret, t, d.body)},
                              {"User-Agent", "okrd"}};
  if (d.kind == "digest") headers.emplace("Okrd-Digest-Day", FormatDate(d.digest_day * kUsPerDay));
  {
    std::lock_guard lock(mu_);
    if (stop_) return Outcome{0, "stopping"};
    client_ = shared;
  }
  // Only the status matters: the answer's body is never read (a receiver
  // could send one without end), so the request ends at the status line
  // and headers ("Canceled" with the status recorded).
  httplib::Request req;
  req.method = "POST";
  req.path = path_;
  req.headers = std::move(headers);
  req.headers.emplace("Content-Type", "application/json");
  req.body = d.body;
  int status = 0;
  req.response_handler = [&status](const httplib::Response& r) {
    status = r.status;
    return false;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  client.send(req, res, error);
  {
    std::lock_guard lock(mu_);
    client_.reset();
  }
  if (status == 0) return Outcome{0, httplib::to_string(error)};
  Outcome o{status, ""};
  if (!o.ok()) o.error = "HTTP " + std::to_string(status);
  return o;
}

void Worker::Record(const Delivery& d, int attempt, const Outcome& o, int64_t now_us,
                    int64_t next_retry_us) {
  DeliveryRecord r{d.kind, d.seq, d.delivery_id, attempt, o.status, o.error, now_us, next_retry_us};
  DeliveryState s = state();
  Status saved = env_.records->SaveAttempt(config_.id, s, r);
  if (saved.ok()) {
    cursor_dirty_ = false;
  } else {
    cursor_dirty_ = true;  // saved again before the thread ends
    Log(4, "webhook_state_not_saved", {{"error", saved.ToString()}});
  }
}

// Disables the webhook when it has failed for the whole window: true when
// the thread must end.
bool Worker::GiveUp(int64_t now_us) {
  const int64_t since = state().failing_since_us;
  if (since == 0 || now_us - since < env_.options->failure_window_us) return false;
  const std::string reason = "no 2xx for " +
                             std::to_string(env_.options->failure_window_us / 1'000'000) +
                             " s since " + FormatTimeUs(since);
  Status s = env_.disable(config_.id, reason, since);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    state_.disabled = true;  // saved with the attempt that gave up
  }
  Log(4, "webhook_disabled", {{"reason", reason}, {"appended", s.ok()}});
  return true;
}

bool Worker::Deliver(const Delivery& d) {
  for (int attempt = 1;; ++attempt) {
    if (stop_) return false;
    Outcome o = Post(d);
    if (stop_ && !o.ok()) return false;  // cut off by Stop: not the target's failure
    const int64_t now = NowUs();
    if (o.ok()) {
      {
        std::lock_guard lock(mu_);
        if (d.kind == "event") state_.cursor = d.seq;
        if (d.kind == "digest") state_.digest_day = d.digest_day;
        state_.failing_since_us = 0;
      }
      Record(d, attempt, o, now, 0);
      return true;
    }
    {
      std::lock_guard lock(mu_);
      if (state_.failing_since_us == 0) state_.failing_since_us = now;
    }
    if (GiveUp(now)) {
      Record(d, attempt, o, now, 0);
      return false;
    }
    int64_t wait = BackoffUs(attempt, env_.options->retry_base_us, env_.options->retry_cap_us);
    // Never sleep past the end of the failure window: disable on time.
    wait = std::min(wait, state().failing_since_us + env_.options->failure_window_us - now);
    Record(d, attempt, o, now, now + std::max<int64_t>(wait, 0));
    Log(3, "webhook_attempt_failed",
        {{"seq", d.seq}, {"attempt", attempt}, {"status", o.status}, {"error", o.error}});
    if (!Pause(std::max<int64_t>(wait, 0))) return false;
  }
}

bool Worker::Pause(int64_t us) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::microseconds(us), [this] { return stop_.load(); });
  return !stop_;
}

}  // namespace okr::webhooks
