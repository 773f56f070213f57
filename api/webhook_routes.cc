// The webhook routes (SPEC §8), admins only: register, list, remove, and
// a webhook's recent deliveries. No answer and no log line carries a
// webhook's URL or secret.
#include <cassert>
#include <map>

#include "api/handler.h"
#include "api/webhooks/webhooks.h"

namespace okr::api {

using nlohmann::json;

// Admins only, and only where okrd delivers webhooks; else answers.
bool Server::Routes::AdmitWebhooks(Call& c) {
  assert(c.principal.has_value());  // Admit let only a token through
  if (options_.replica) {
    FailOnReplica(c, 403, "read_only_replica", "webhooks are kept and delivered by the primary");
    return false;
  }
  if (c.principal->role != Role::kAdmin) {
    c.Fail(403, "webhooks need the admin role");
    return false;
  }
  if (options_.webhooks == nullptr) {
    c.Fail(503, "this okrd delivers no webhooks");
    return false;
  }
  return true;
}

std::string Server::Routes::WebhookMetrics(uint64_t head_seq) const {
  if (options_.webhooks == nullptr) return "";
  std::map<std::string, int> by_state = {{"active", 0}, {"failing", 0}, {"disabled", 0}};
  std::string lag =
      "# HELP okrd_webhook_lag_events Events of the log after a webhook's cursor.\n"
      "# TYPE okrd_webhook_lag_events gauge\n";
  for (const webhooks::WebhookInfo& info : options_.webhooks->List()) {
    ++by_state[webhooks::WebhookStateName(info.state)];
    const uint64_t behind = head_seq > info.state.cursor ? head_seq - info.state.cursor : 0;
    lag += "okrd_webhook_lag_events{webhook=\"" + info.config.id + "\"} " + std::to_string(behind) +
           "\n";
  }
  std::string out =
      "# HELP okrd_webhooks Registered webhooks by state.\n# TYPE okrd_webhooks gauge\n";
  for (const auto& [state, n] : by_state) {
    out += "okrd_webhooks{state=\"" + state + "\"} " + std::to_string(n) + "\n";
  }
  return out + lag;
}

void Server::Routes::ListWebhooks(Call& c) {
  if (!AdmitWebhooks(c)) return;
  json items = json::array();
  for (const webhooks::WebhookInfo& info : options_.webhooks->List()) {
    items.push_back(webhooks::WebhookInfoJson(info));
  }
  c.Send(200, {{"items", std::move(items)}});
}

void Server::Routes::RegisterWebhook(Call& c) {
  if (!AdmitWebhooks(c)) return;
  if (projector_->is_stuck()) return c.Fail(503, "the projection is stuck: writes are refused");
  ApiError e;
  auto body = ParseBody(c.req.body, &e);
  if (!body) return c.Fail(e);
  auto config = webhooks::ParseRegistration(*body);
  if (!config.ok()) {
    return c.Fail(ApiError{400, "malformed", config.status().message(), config.status().field()});
  }
  // A cycle is never deleted: one known now is known for the webhook's life.
  if (Status known =
          projector_->Read([&](const Projection& p) { return CycleKnown(p, config->cycle); });
      !known.ok()) {
    return c.Fail(ApiError{422, "invalid", known.message(), "cycle"});
  }
  auto registered = options_.webhooks->Register(std::move(config.value()), c.principal->actor);
  if (!registered.ok()) return c.Fail(registered.status());
  json out = webhooks::WebhookInfoJson(*registered);
  out["seq"] = registered->registered_seq;
  c.Send(201, out);
}

void Server::Routes::RemoveWebhook(Call& c) {
  if (!AdmitWebhooks(c)) return;
  const std::string id = c.req.matches.size() > 1 ? std::string(c.req.matches[1]) : "";
  if (!webhooks::ValidWebhookId(id)) {
    return c.Fail(ApiError{400, "malformed", "webhook ids are 1-64 of a-z, 0-9 and -", "id"});
  }
  auto removed = options_.webhooks->Remove(id, c.principal->actor);
  if (!removed.ok()) return c.Fail(removed.status());
  c.Send(200, {{"id", id}, {"removed", true}, {"seq", *removed}});
}

void Server::Routes::WebhookDeliveries(Call& c) {
  if (!AdmitWebhooks(c)) return;
  const std::string id = c.req.matches.size() > 1 ? std::string(c.req.matches[1]) : "";
  if (!webhooks::ValidWebhookId(id)) {
    return c.Fail(ApiError{400, "malformed", "webhook ids are 1-64 of a-z, 0-9 and -", "id"});
  }
  auto deliveries = options_.webhooks->Deliveries(id);
  if (!deliveries.ok()) return c.Fail(deliveries.status());
  json items = json::array();
  for (const webhooks::DeliveryRecord& r : *deliveries) {
    items.push_back(webhooks::DeliveryRecordJson(r));
  }
  c.Send(200, {{"id", id}, {"items", std::move(items)}});
}

}  // namespace okr::api
