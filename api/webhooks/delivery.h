// One webhook's deliveries (SPEC §8): a thread that POSTs each event after
// the durable cursor, in seq order, retrying with backoff until a 2xx, and
// the daily digest when the webhook asks for one.
//
//   cursor  the last seq delivered or filtered out, saved after the 2xx:
//           a crash in between delivers that event again (at least once);
//           Okrd-Delivery names (webhook, seq), so the receiver can tell.
//   retry   exponential backoff with full jitter; after the failure window
//           without one success the webhook is disabled (an event by
//           system:okrd) and the thread ends.
//   digest  once per UTC day at or after --digest-at, before the events
//           that wait; the day is saved with the cursor, so a restart never
//           sends a second one that day.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "api/webhooks/webhook_store.h"
#include "api/webhooks/webhooks.h"

namespace okr::webhooks {

// hex(HMAC-SHA256(secret, "<t>.<body>")): the v1 of Okrd-Signature.
std::string SignatureV1(const std::string& secret, int64_t t, const std::string& body);
// One id per webhook and event seq (or digest day), the same on every
// retry: 32 hex digits of SHA-256 of "<id>|<what>".
std::string DeliveryId(const std::string& id, const std::string& what);
// The wait before retry `attempt` (from 1): uniform in [0, min(cap, base * 2^(attempt-1))].
int64_t BackoffUs(int attempt, int64_t base_us, int64_t cap_us);

// What a worker shares with the others. Borrowed; outlives the workers.
struct WorkerEnv {
  EventStore* store;
  Projector* projector;
  WebhookStore* records;
  const WebhookOptions* options;
  // Appends webhook.disabled; kVersionMismatch when the webhook was
  // removed meanwhile.
  std::function<Status(const std::string& id, const std::string& reason, int64_t failing_since_us)>
      disable;
};

// How often Worker::Stop cuts a worker's attempt off again while it waits.
inline constexpr std::chrono::milliseconds kStopRetry{50};

class Worker {
 public:
  Worker(WorkerEnv env, WebhookConfig config, DeliveryState state);
  ~Worker();  // Stop()
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread (not for a disabled webhook).
  void Start();
  // Asks the thread to end and cuts off an attempt in flight, without
  // waiting (so that many workers stop at once).
  void RequestStop();
  // RequestStop(), then waits for the thread, cutting the attempt off again
  // every kStopRetry until it has ended (a stop that came as an attempt
  // was starting would otherwise be lost).
  void Stop();
  // The state as the thread last saved or changed it.
  DeliveryState state() const;
  bool running() const { return running_; }
  const WebhookConfig& config() const { return config_; }

 private:
  // The outcome of one POST.
  struct Outcome {
    int status = 0;
    std::string error;
    bool ok() const { return status >= 200 && status < 300; }
  };
  struct Delivery {
    std::string kind;  // "event" or "digest"
    uint64_t seq = 0;
    std::string delivery_id;
    std::string body;
    int64_t digest_day = -1;
  };

  void Run();
  bool DeliverPending();
  bool DeliverDigestIfDue();
  // Delivers until a 2xx (true) or the thread must end (false).
  bool Deliver(const Delivery& d);
  Outcome Post(const Delivery& d);
  void Record(const Delivery& d, int attempt, const Outcome& o, int64_t now_us,
              int64_t next_retry_us);
  bool Wants(uint64_t seq, schema::Event::Reader ev);
  bool GiveUp(int64_t now_us);
  // Sleeps up to `us` unless stopped; false when stopped.
  bool Pause(int64_t us);
  int64_t NowUs() const;
  void Log(int level, const char* event, std::vector<std::pair<const char*, nlohmann::json>> f);
  void SaveCursor();

  WorkerEnv env_;
  const WebhookConfig config_;
  std::string base_url_, path_;
  mutable std::mutex mu_;  // guards state_, client_
  std::condition_variable wake_;
  DeliveryState state_;
  bool cursor_dirty_ = false;                // only the thread touches it
  std::shared_ptr<httplib::Client> client_;  // the attempt in flight
  std::atomic<bool> stop_{false}, running_{false}, ended_{false};
  std::thread thread_;
};

}  // namespace okr::webhooks
