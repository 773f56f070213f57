// What okrd keeps about each webhook in the key store (SPEC §8, §10): the
// full URL and the secret (never in the log), and its delivery state — the
// durable cursor, the day of the last digest, since when it has been
// failing — and a bounded log of its delivery attempts. Records are JSON
// under `webhook/<id>/…` (docs/FORMAT.md, "The key store").
//
// Thread-safe (the key store is; the deliveries' counters are guarded).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/keystore.h"

namespace okr::webhooks {

// Delivery attempts kept per webhook; the oldest go first.
inline constexpr size_t kMaxDeliveriesKept = 100;

// A webhook as registered: what the log records and what it does not.
struct WebhookConfig {
  std::string id;                  // 1-64 of [a-z0-9-]
  std::string url;                 // secret: key store only
  std::string secret;              // secret: key store only
  std::vector<std::string> types;  // event type names, "digest" or "*"
  std::string cycle;               // empty: every cycle
  std::string scheme, host;        // of url
  std::string url_sha256;          // hex
};

// Where a webhook's delivery stands. `cursor` is the last seq delivered (or
// filtered out): delivery resumes after it, so a crash between a 2xx and
// the cursor's write delivers that event again (at least once).
struct DeliveryState {
  uint64_t cursor = 0;
  int64_t digest_day = -1;       // UTC days since the epoch of the last digest delivered
  int64_t failing_since_us = 0;  // the first failure of the current run; 0: not failing
  bool disabled = false;         // the log records webhook.disabled
};

// One delivery attempt.
struct DeliveryRecord {
  std::string kind;         // "event" or "digest"
  uint64_t seq = 0;         // the event's (a digest's: the state it was built at)
  std::string delivery_id;  // Okrd-Delivery
  int attempt = 1;          // 1 for the first try of this delivery
  int status = 0;           // the HTTP status; 0 when none came
  std::string error;        // what went wrong when no 2xx came ("" on success)
  int64_t at_us = 0;
  int64_t next_retry_us = 0;  // 0: no retry (delivered, or given up)
};
nlohmann::json DeliveryRecordJson(const DeliveryRecord& r);

class WebhookStore {
 public:
  explicit WebhookStore(KeyStore* keys);

  // Every webhook the key store holds, with its state (default when none
  // was written yet).
  struct Entry {
    WebhookConfig config;
    std::optional<DeliveryState> state;
  };
  Result<std::vector<Entry>> LoadAll() const;
  Status PutConfig(const WebhookConfig& config);
  Status SaveState(const std::string& id, const DeliveryState& state);
  // Saves `state` and adds `record` to the deliveries log (dropping the
  // oldest beyond kMaxDeliveriesKept), atomically. An event's attempt is
  // saved unsynced (KeyStore::Sync::kUnsynced): a power loss may take the
  // newest back, and their events are delivered again; a digest's is
  // synced, so that no restart sends a second one the same day.
  Status SaveAttempt(const std::string& id, const DeliveryState& state,
                     const DeliveryRecord& record);
  // The deliveries log, newest first.
  Result<std::vector<DeliveryRecord>> Deliveries(const std::string& id) const;
  // Deletes everything about `id` and compacts it away.
  Status Drop(const std::string& id);

 private:
  Result<uint64_t> NextDeliveryNumber(const std::string& id);

  KeyStore* keys_;
  std::mutex mu_;
  std::map<std::string, uint64_t> next_delivery_;  // guarded by mu_
};

}  // namespace okr::webhooks
