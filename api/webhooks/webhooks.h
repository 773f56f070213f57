// Webhooks (SPEC §8): registered and removed by admins, as events of the
// entity `webhook:<id>` in the log; their URL and secret in the key store
// (never in the log); delivered one POST per event, in seq order per
// webhook, at least once, from a durable cursor, signed with the secret.
//
// Each active webhook has a worker thread (delivery.h): a target that
// hangs stalls only its own webhook. Webhooks is thread-safe; it borrows
// the store, projector and key store, which must outlive it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/webhooks/webhook_store.h"
#include "eventstore/base/clock.h"
#include "eventstore/event_store.h"
#include "eventstore/keystore.h"
#include "projections/service/projector.h"

namespace okr::webhooks {

class Worker;

// Limits (each checked when a webhook is registered).
inline constexpr size_t kMaxIdChars = 64;
inline constexpr size_t kMaxUrlBytes = 2048;
inline constexpr size_t kMinSecretBytes = 16;
inline constexpr size_t kMaxSecretBytes = 256;
inline constexpr size_t kMaxTypes = 64;
inline constexpr size_t kMaxWebhooks = 100;  // registered at once
inline constexpr char kDigestType[] = "digest";
inline constexpr char kEveryType[] = "*";
inline constexpr char kEntityPrefix[] = "webhook:";

// The digest's body: built from the projection at `now_us` (UTC µs).
using DigestBuilder = std::function<nlohmann::json(const Projection&, int64_t now_us)>;

// A log line: okrd's logger, with the level as spdlog's number.
using LogFn =
    std::function<void(int level, const char* event,
                       const std::vector<std::pair<const char*, nlohmann::json>>& fields)>;

struct WebhookOptions {
  // Retries wait a random time in [0, min(cap, base * 2^(attempt-1))]
  // (exponential backoff with full jitter).
  int64_t retry_base_us = 1'000'000;
  int64_t retry_cap_us = 300'000'000;
  // After this long failing without a break, okrd disables the webhook.
  int64_t failure_window_us = int64_t{24} * 3600 * 1'000'000;
  int64_t timeout_us = 10'000'000;  // to connect, and for each read and write
  // https: the CA certificates (PEM) receivers' certificates are checked
  // against; empty: the system's.
  std::string ca_file;
  int digest_minute_utc = 8 * 60;  // --digest-at, minutes after 00:00 UTC
  DigestBuilder digest;
  ClockUs clock_us;  // default: the system clock
  LogFn log;         // default: none
};

// A URL taken apart: scheme "http" or "https", host (lowercase; an IPv6
// address in brackets), port ("" when none) and the rest ("/" when none).
struct UrlParts {
  std::string scheme, host, port, path;
};
std::optional<UrlParts> SplitUrl(std::string_view url);

// A registration as an admin posts it (POST /v1/webhooks).
// Fills the config from the body; kInvalid naming the field otherwise.
Result<WebhookConfig> ParseRegistration(const nlohmann::json& body);
// Whether `id` is a webhook id: 1-64 of [a-z0-9-].
bool ValidWebhookId(std::string_view id);

// A webhook as GET /v1/webhooks shows it: never the URL or the secret.
struct WebhookInfo {
  WebhookConfig config;  // url and secret cleared
  DeliveryState state;
  uint64_t registered_seq = 0;
  bool running = false;
};
nlohmann::json WebhookInfoJson(const WebhookInfo& info);
// What GET /v1/webhooks and /metrics call its state: "active", "failing"
// (retrying since failing_since) or "disabled".
const char* WebhookStateName(const DeliveryState& s);

class Webhooks {
 public:
  // Reconciles the key store with the log — drops webhooks whose
  // registration is not in the log (okrd stopped between the two writes)
  // or whose last event is webhook.removed — then starts a worker for each
  // webhook not disabled.
  static Result<std::unique_ptr<Webhooks>> Start(EventStore* store, Projector* projector,
                                                 KeyStore* keys, WebhookOptions options);
  ~Webhooks();  // Stop()
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  // Stops every worker promptly (an attempt in flight is cut off) and
  // waits for them. Idempotent.
  void Stop();

  // Registers `config` by `actor`: the key store first, then the event
  // (expected version 0), then the cursor at that event; delivery starts
  // after it. kAlreadyExists when the id is or was ever taken.
  Result<WebhookInfo> Register(WebhookConfig config, const std::string& actor);
  // Appends webhook.removed by `actor` and forgets the webhook.
  // kNotFound when no such webhook is registered.
  Result<uint64_t> Remove(const std::string& id, const std::string& actor);
  std::vector<WebhookInfo> List() const;
  // kNotFound when no such webhook is registered.
  Result<std::vector<DeliveryRecord>> Deliveries(const std::string& id) const;

 private:
  Webhooks(EventStore* store, Projector* projector, KeyStore* keys, WebhookOptions options);
  Status Reconcile();
  Status Adopt(const WebhookStore::Entry& entry);
  void StartWorker(const WebhookConfig& config, const DeliveryState& state);
  Status Disable(const std::string& id, const std::string& reason, int64_t failing_since_us);

  EventStore* store_;
  Projector* projector_;
  WebhookStore records_;
  WebhookOptions options_;
  mutable std::mutex mu_;  // serialises registrations and removals; guards below
  std::map<std::string, uint64_t> registered_seq_;
  // Every registered webhook's worker; a disabled one's never runs.
  std::map<std::string, std::unique_ptr<Worker>> workers_;
  bool stopped_ = false;
};

}  // namespace okr::webhooks
