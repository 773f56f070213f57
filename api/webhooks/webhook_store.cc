#include "api/webhooks/webhook_store.h"

#include <cassert>
#include <cinttypes>
#include <cstdio>

#include "eventstore/base/time.h"

namespace okr::webhooks {

using nlohmann::json;

namespace {

constexpr char kPrefix[] = "webhook/";

std::string Prefix(const std::string& id) { return kPrefix + id + "/"; }
std::string ConfigKey(const std::string& id) { return Prefix(id) + "config"; }
std::string StateKey(const std::string& id) { return Prefix(id) + "state"; }
std::string DeliveriesPrefix(const std::string& id) { return Prefix(id) + "delivery/"; }
std::string DeliveryKey(const std::string& id, uint64_t n) {
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016" PRIx64, n);
  return DeliveriesPrefix(id) + digits;
}

json ConfigJson(const WebhookConfig& c) {
  return {
      {"id", c.id},       {"url", c.url},       {"secret", c.secret}, {"types", c.types},
      {"cycle", c.cycle}, {"scheme", c.scheme}, {"host", c.host},     {"url_sha256", c.url_sha256}};
}

WebhookConfig ConfigOf(const json& j) {
  WebhookConfig c;
  c.id = j.value("id", "");
  c.url = j.value("url", "");
  c.secret = j.value("secret", "");
  c.types = j.value("types", std::vector<std::string>{});
  c.cycle = j.value("cycle", "");
  c.scheme = j.value("scheme", "");
  c.host = j.value("host", "");
  c.url_sha256 = j.value("url_sha256", "");
  return c;
}

json StateJson(const DeliveryState& s) {
  return {{"cursor", s.cursor},
          {"digest_day", s.digest_day},
          {"failing_since_us", s.failing_since_us},
          {"disabled", s.disabled}};
}

DeliveryState StateOf(const json& j) {
  DeliveryState s;
  s.cursor = j.value("cursor", uint64_t{0});
  s.digest_day = j.value("digest_day", int64_t{-1});
  s.failing_since_us = j.value("failing_since_us", int64_t{0});
  s.disabled = j.value("disabled", false);
  return s;
}

json RecordJson(const DeliveryRecord& r) {
  return {{"kind", r.kind},
          {"seq", r.seq},
          {"delivery_id", r.delivery_id},
          {"attempt", r.attempt},
          {"status", r.status},
          {"error", r.error},
          {"at_us", r.at_us},
          {"next_retry_us", r.next_retry_us}};
}

DeliveryRecord RecordOf(const json& j) {
  DeliveryRecord r;
  r.kind = j.value("kind", "event");
  r.seq = j.value("seq", uint64_t{0});
  r.delivery_id = j.value("delivery_id", "");
  r.attempt = j.value("attempt", 1);
  r.status = j.value("status", 0);
  r.error = j.value("error", "");
  r.at_us = j.value("at_us", int64_t{0});
  r.next_retry_us = j.value("next_retry_us", int64_t{0});
  return r;
}

// A stored record that is no JSON object: the key store was damaged.
Result<json> ParseRecord(std::string_view key, std::string_view value) {
  json j = json::parse(value, nullptr, false);
  if (!j.is_object()) return Status::Corruption("key store record " + std::string(key));
  return j;
}

}  // namespace

json DeliveryRecordJson(const DeliveryRecord& r) {
  json out = {{"kind", r.kind},
              {"seq", r.seq},
              {"delivery_id", r.delivery_id},
              {"attempt", r.attempt},
              {"status", r.status == 0 ? json(nullptr) : json(r.status)},
              {"error", r.error.empty() ? json(nullptr) : json(r.error)},
              {"at", FormatTimeUs(r.at_us)},
              {"next_retry_at",
               r.next_retry_us == 0 ? json(nullptr) : json(FormatTimeUs(r.next_retry_us))}};
  return out;
}

WebhookStore::WebhookStore(KeyStore* keys) : keys_(keys) { assert(keys_ != nullptr); }

Result<std::vector<WebhookStore::Entry>> WebhookStore::LoadAll() const {
  std::vector<Entry> out;
  Status bad = Status::Ok();
  OKR_RETURN_IF_ERROR(keys_->Scan(kPrefix, [&](std::string_view key, std::string_view value) {
    const bool config = key.ends_with("/config"), state = key.ends_with("/state");
    if (!config && !state) return true;
    auto j = ParseRecord(key, value);
    if (!j.ok()) return bad = j.status(), false;
    if (config) {
      out.push_back(Entry{ConfigOf(*j), std::nullopt});
    } else if (!out.empty() && key == StateKey(out.back().config.id)) {
      out.back().state = StateOf(*j);  // "config" sorts before "state"
    }
    return true;
  }));
  OKR_RETURN_IF_ERROR(bad);
  return out;
}

Status WebhookStore::PutConfig(const WebhookConfig& config) {
  assert(!config.id.empty() && !config.url.empty());
  return keys_->Put(ConfigKey(config.id), ConfigJson(config).dump());
}

Status WebhookStore::SaveState(const std::string& id, const DeliveryState& state) {
  return keys_->Put(StateKey(id), StateJson(state).dump());
}

Result<uint64_t> WebhookStore::NextDeliveryNumber(const std::string& id) {
  auto it = next_delivery_.find(id);
  if (it != next_delivery_.end()) return it->second++;
  uint64_t next = 0;
  OKR_RETURN_IF_ERROR(
      keys_->Scan(DeliveriesPrefix(id), [&](std::string_view key, std::string_view) {
        std::string_view digits = key.substr(key.size() - 16);
        next = std::strtoull(std::string(digits).c_str(), nullptr, 16) + 1;
        return true;
      }));
  next_delivery_[id] = next + 1;
  return next;
}

Status WebhookStore::SaveAttempt(const std::string& id, const DeliveryState& state,
                                 const DeliveryRecord& record) {
  std::lock_guard lock(mu_);
  OKR_ASSIGN_OR_RETURN(uint64_t n, NextDeliveryNumber(id));
  KeyStore::Batch batch;
  batch.Put(StateKey(id), StateJson(state).dump());
  batch.Put(DeliveryKey(id, n), RecordJson(record).dump());
  if (n >= kMaxDeliveriesKept) batch.Delete(DeliveryKey(id, n - kMaxDeliveriesKept));
  return keys_->Write(
      batch, record.kind == "digest" ? KeyStore::Sync::kSynced : KeyStore::Sync::kUnsynced);
}

Result<std::vector<DeliveryRecord>> WebhookStore::Deliveries(const std::string& id) const {
  std::vector<DeliveryRecord> out;
  Status bad = Status::Ok();
  OKR_RETURN_IF_ERROR(
      keys_->Scan(DeliveriesPrefix(id), [&](std::string_view key, std::string_view value) {
        auto j = ParseRecord(key, value);
        if (!j.ok()) return bad = j.status(), false;
        out.push_back(RecordOf(*j));
        return true;
      }));
  OKR_RETURN_IF_ERROR(bad);
  std::reverse(out.begin(), out.end());
  return out;
}

Status WebhookStore::Drop(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    next_delivery_.erase(id);
  }
  return keys_->DeletePrefix(Prefix(id));
}

}  // namespace okr::webhooks
