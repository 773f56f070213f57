// The webhooks' registry: the events that register, remove and disable
// them, the key store's records kept in step with the log, a worker each.
#include "api/webhooks/webhooks.h"

#include <algorithm>
#include <cassert>

#include "api/webhooks/delivery.h"

namespace okr::webhooks {

namespace {

std::string EntityOf(const std::string& id) { return kEntityPrefix + id; }

// The first and the last event of a webhook's stream.
struct Stream {
  uint64_t version = 0;
  uint64_t registered_seq = 0;
  std::string url_sha256;  // hex, as registered
  schema::Event::Which last = schema::Event::Which::WEBHOOK_REGISTERED;
};

Result<std::optional<Stream>> ReadStream(const EventStore& store, const std::string& id) {
  OKR_ASSIGN_OR_RETURN(std::vector<StoredEvent> events, store.ReadStream(EntityOf(id)));
  if (events.empty()) return std::optional<Stream>();
  Stream out;
  out.version = events.size();
  OKR_ASSIGN_OR_RETURN(auto first, DecodedEvent::Decode(events.front().bytes));
  if (first->event().which() != schema::Event::Which::WEBHOOK_REGISTERED) {
    return Status::Corruption("seq " + std::to_string(events.front().seq) + " opens " +
                              EntityOf(id) + " but is no webhook.registered");
  }
  out.registered_seq = events.front().seq;
  auto sha = first->event().getWebhookRegistered().getUrlSha256();
  Hash h{};
  if (sha.size() == h.size()) std::copy(sha.begin(), sha.end(), h.begin());
  out.url_sha256 = ToHex(h);
  OKR_ASSIGN_OR_RETURN(auto last, DecodedEvent::Decode(events.back().bytes));
  out.last = last->event().which();
  return std::optional<Stream>(out);
}

void Log(const WebhookOptions& o, int level, const char* event,
         const std::vector<std::pair<const char*, nlohmann::json>>& fields) {
  if (o.log) o.log(level, event, fields);
}

}  // namespace

Webhooks::Webhooks(EventStore* store, Projector* projector, KeyStore* keys, WebhookOptions options)
    : store_(store), projector_(projector), records_(keys), options_(std::move(options)) {
  assert(store_ != nullptr && projector_ != nullptr);
  if (!options_.clock_us) options_.clock_us = SystemClockUs;
}

Result<std::unique_ptr<Webhooks>> Webhooks::Start(EventStore* store, Projector* projector,
                                                  KeyStore* keys, WebhookOptions options) {
  std::unique_ptr<Webhooks> w(new Webhooks(store, projector, keys, std::move(options)));
  OKR_RETURN_IF_ERROR(w->Reconcile());
  return w;
}

Webhooks::~Webhooks() { Stop(); }

void Webhooks::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  // Every worker is asked first, so that they stop together, not each
  // after the one before.
  for (auto& [id, worker] : workers_) worker->RequestStop();
  for (auto& [id, worker] : workers_) worker->Stop();
}

Status Webhooks::Reconcile() {
  OKR_ASSIGN_OR_RETURN(std::vector<WebhookStore::Entry> entries, records_.LoadAll());
  std::lock_guard lock(mu_);
  for (const WebhookStore::Entry& entry : entries) OKR_RETURN_IF_ERROR(Adopt(entry));
  return Status::Ok();
}

// Takes one key-store webhook on, or drops it when the log says it is not
// (or no longer) registered.
Status Webhooks::Adopt(const WebhookStore::Entry& entry) {
  const std::string& id = entry.config.id;
  std::optional<Stream> stream;
  if (ValidWebhookId(id) && SplitUrl(entry.config.url)) {
    OKR_ASSIGN_OR_RETURN(stream, ReadStream(*store_, id));
  }
  const char* drop = !stream                                                 ? "not registered"
                     : stream->last == schema::Event::Which::WEBHOOK_REMOVED ? "removed"
                     : stream->url_sha256 != entry.config.url_sha256 ? "another URL than the log's"
                                                                     : nullptr;
  if (drop != nullptr) {
    Log(options_, 3, "webhook_dropped", {{"webhook", id}, {"why", drop}});
    return records_.Drop(id);
  }
  DeliveryState state = entry.state.value_or(DeliveryState{stream->registered_seq});
  state.disabled = stream->last == schema::Event::Which::WEBHOOK_DISABLED;
  // A key store newer than a restored log: deliver what the log holds next.
  state.cursor = std::min(state.cursor, store_->head().seq);
  registered_seq_[id] = stream->registered_seq;
  StartWorker(entry.config, state);
  return Status::Ok();
}

void Webhooks::StartWorker(const WebhookConfig& config, const DeliveryState& state) {
  WorkerEnv env{store_, projector_, &records_, &options_,
                [this](const std::string& id, const std::string& reason, int64_t since) {
                  return Disable(id, reason, since);
                }};
  auto worker = std::make_unique<Worker>(std::move(env), config, state);
  if (!state.disabled && !stopped_) worker->Start();
  workers_[config.id] = std::move(worker);
}

Result<WebhookInfo> Webhooks::Register(WebhookConfig config, const std::string& actor) {
  assert(ValidWebhookId(config.id) && !actor.empty());
  std::lock_guard lock(mu_);
  if (stopped_) return Status::IOError("okrd is stopping");
  const std::string entity = EntityOf(config.id);
  OKR_ASSIGN_OR_RETURN(uint64_t version, store_->Version(entity));
  if (version != 0) {
    return Status::AlreadyExists(
        "webhook " + config.id + " is or was registered; webhook ids are never reused", "id");
  }
  if (workers_.size() >= kMaxWebhooks) {
    return Status::Conflict("at most " + std::to_string(kMaxWebhooks) + " webhooks", "id");
  }
  // The key store first: a crash before the event leaves a record the
  // next start drops (Reconcile); never an event without its URL.
  OKR_RETURN_IF_ERROR(records_.PutConfig(config));
  AppendRequest request;
  request.events.emplace_back(actor, entity);
  auto ev = request.events.back().event().initWebhookRegistered();
  auto types = ev.initTypes(config.types.size());
  for (size_t i = 0; i < config.types.size(); ++i) types.set(i, config.types[i]);
  ev.setCycle(config.cycle);
  ev.setScheme(config.scheme);
  ev.setHost(config.host);
  Hash sha{};
  [[maybe_unused]] bool hex = FromHex(config.url_sha256, &sha);
  assert(hex);
  ev.setUrlSha256(kj::arrayPtr(sha.data(), sha.size()));
  request.expected.push_back({entity, 0});
  auto appended = store_->Append(std::move(request));
  if (!appended.ok()) {
    (void)records_.Drop(config.id);
    if (appended.status().code() == Status::Code::kVersionMismatch)
      return Status::AlreadyExists("webhook " + config.id + " was registered meanwhile", "id");
    return appended.status();
  }
  DeliveryState state{appended->first_seq};  // delivery starts after its registration
  OKR_RETURN_IF_ERROR(records_.SaveState(config.id, state));
  registered_seq_[config.id] = appended->first_seq;
  StartWorker(config, state);
  Log(options_, 2, "webhook_registered",
      {{"webhook", config.id}, {"host", config.host}, {"seq", appended->first_seq}});
  config.url.clear();
  config.secret.clear();
  return WebhookInfo{std::move(config), state, appended->first_seq, true};
}

Result<uint64_t> Webhooks::Remove(const std::string& id, const std::string& actor) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return Status::NotFound("no webhook " + id);
  const std::string entity = EntityOf(id);
  Result<AppendResult> appended = Status::IOError("not tried");
  for (int attempt = 0; attempt < 3; ++attempt) {  // a disable may slip in between
    OKR_ASSIGN_OR_RETURN(uint64_t version, store_->Version(entity));
    AppendRequest request;
    request.events.emplace_back(actor, entity);
    request.events.back().event().initWebhookRemoved();
    request.expected.push_back({entity, version});
    appended = store_->Append(std::move(request));
    if (appended.ok() || appended.status().code() != Status::Code::kVersionMismatch) break;
  }
  if (!appended.ok()) return appended.status();
  it->second->Stop();
  workers_.erase(it);
  registered_seq_.erase(id);
  Status dropped = records_.Drop(id);
  if (!dropped.ok()) {  // the next start drops it (Reconcile): the log says removed
    Log(options_, 4, "webhook_not_dropped", {{"webhook", id}, {"error", dropped.ToString()}});
  }
  Log(options_, 2, "webhook_removed", {{"webhook", id}, {"seq", appended->first_seq}});
  return appended->first_seq;
}

// Called by the webhook's own worker (never under mu_, which Remove holds
// while it stops that worker). Appends only when the stream's last event
// is still the one read here: never after webhook.removed.
Status Webhooks::Disable(const std::string& id, const std::string& reason,
                         int64_t failing_since_us) {
  OKR_ASSIGN_OR_RETURN(std::optional<Stream> stream, ReadStream(*store_, id));
  if (!stream || stream->last == schema::Event::Which::WEBHOOK_REMOVED) {
    return Status::NotFound("webhook " + id + " is removed");
  }
  const std::string entity = EntityOf(id);
  AppendRequest request;
  request.events.emplace_back(kSystemActor, entity);
  auto ev = request.events.back().event().initWebhookDisabled();
  ev.setReason(reason);
  ev.setFailingSince(failing_since_us);
  request.expected.push_back({entity, stream->version});
  return store_->Append(std::move(request)).status();
}

std::vector<WebhookInfo> Webhooks::List() const {
  std::lock_guard lock(mu_);
  std::vector<WebhookInfo> out;
  for (const auto& [id, worker] : workers_) {
    WebhookInfo info{worker->config(), worker->state(), 0, worker->running()};
    info.config.url.clear();
    info.config.secret.clear();
    auto seq = registered_seq_.find(id);
    if (seq != registered_seq_.end()) info.registered_seq = seq->second;
    out.push_back(std::move(info));
  }
  return out;
}

Result<std::vector<DeliveryRecord>> Webhooks::Deliveries(const std::string& id) const {
  {
    std::lock_guard lock(mu_);
    if (workers_.find(id) == workers_.end()) return Status::NotFound("no webhook " + id);
  }
  return records_.Deliveries(id);
}

}  // namespace okr::webhooks
