#include "api/replica.h"

#include <httplib.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "api/log_key.h"
#include "api/routes/raw_frames.h"
#include "api/routes/request.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"
#include "eventstore/sealing.h"

namespace okr::api {

namespace {

constexpr int kConnectTimeoutSeconds = 5;
constexpr int kReadTimeoutSeconds = 30;
constexpr size_t kRefusalBytes = 300;  // of a refusal's body, kept for the state's problem
constexpr auto kCheckpointEvery = std::chrono::seconds(1);  // at most, asking the primary to sign

}  // namespace

ReplicaFollower::ReplicaFollower(EventStore* store, Options options)
    : store_(store), options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

ReplicaFollower::~ReplicaFollower() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

ReplicaFollower::State ReplicaFollower::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

ReplicaFollower::Lag ReplicaFollower::lag() const {
  const State now = state();
  const Head own = store_->head();
  if (own.seq >= now.primary_head) return {};
  return {now.primary_head - own.seq,
          std::max<int64_t>(0, now.primary_head_recorded_at_us - own.recorded_at_us) / 1e6};
}

void ReplicaFollower::Set(State state) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = state.connected != state_.connected || state.diverged != state_.diverged ||
              (state_.problem.empty() && !state.problem.empty());
    state_ = state;
  }
  if (changed && options_.on_change) options_.on_change(state);
}

std::optional<ReplicaFollower::KeptCheckpoint> ReplicaFollower::checkpoint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checkpoint_;
}

Status ReplicaFollower::KeepCheckpoint(httplib::Client& client) {
  const uint64_t size = store_->head().seq;
  if (size == 0 || size != state().primary_head) return Status::Ok();
  if (auto kept = checkpoint(); kept && kept->size == size) return Status::Ok();
  const auto now = std::chrono::steady_clock::now();
  if (now - checkpoint_asked_ < kCheckpointEvery) return Status::Ok();
  checkpoint_asked_ = now;
  OKR_ASSIGN_OR_RETURN(std::optional<RecordedKey> recorded, FindRecordedKey(*store_));
  if (!recorded) return Status::Ok();  // the log's key is not copied yet
  const NoteVerifier& verifier = options_.log_key ? *options_.log_key : recorded->verifier;
  if (verifier.name != recorded->verifier.name ||
      verifier.public_key != recorded->verifier.public_key) {
    return Status::Corruption("the log records the key " + recorded->verifier.vkey() +
                              ", not --log-key " + verifier.vkey());
  }
  const std::string what = "the primary's checkpoint of size " + std::to_string(size);
  auto res = client.Get("/v1/log/checkpoint?size=" + std::to_string(size),
                        {{"Authorization", "Bearer " + options_.token}});
  if (!res || res->status != 200) return Status::IOError(what + " could not be fetched");
  auto checkpoint = VerifyCheckpoint(res->body, verifier);
  if (!checkpoint.ok()) return Status::Corruption(what + ": " + checkpoint.status().message());
  OKR_ASSIGN_OR_RETURN(Hash root, store_->TreeRoot(size));
  if (checkpoint->size != size || checkpoint->root != root) {
    return Status::Corruption(what + " does not sign this log's tree of that size");
  }
  std::lock_guard<std::mutex> lock(mu_);
  checkpoint_ = KeptCheckpoint{size, root, std::move(res->body)};
  return Status::Ok();
}

bool ReplicaFollower::Wait(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !stop_cv_.wait_for(lock, d, [this] { return stopping_; });
}

// Pages until stopped or diverged; a failure to reach the primary, or an
// answer cut short, is retried with a growing wait from this log's head.
void ReplicaFollower::Run() {
  httplib::Client client(options_.primary), keys(options_.primary);
  for (httplib::Client* c : {&client, &keys}) {
    c->set_connection_timeout(kConnectTimeoutSeconds, 0);
    c->set_read_timeout(kReadTimeoutSeconds, 0);
    c->set_tcp_nodelay(true);
  }
  std::chrono::milliseconds backoff = options_.poll;
  do {
    Result<uint64_t> stored = FetchPage(client, keys);
    if (stored.ok()) {
      Status kept = KeepCheckpoint(client);
      if (kept.code() == Status::Code::kCorruption) stored = kept;
    }
    State now = state();
    if (stored.ok()) {
      backoff = options_.poll;
      now.connected = true;
      now.problem.clear();
      Set(now);
      // Events came: more may have since (or the page stopped short of the
      // head). Only an empty answer waits before the next.
      if (*stored > 0) continue;
      if (!Wait(options_.poll)) return;
      continue;
    }
    now.connected = false;
    now.problem = stored.status().message();
    if (stored.status().code() == Status::Code::kCorruption) {
      now.diverged = true;
      Set(now);
      return;
    }
    Set(now);
    if (!Wait(backoff)) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  } while (true);
}

// The page's last event is stored only when something vouches for it:
// the primary's head hash (Okrd-Head-Hash) when it is the head, else the
// next page, whose first event must name its hash. So a byte changed in
// the newest event on its way is refused like any other.
Status ReplicaFollower::SyncKeys(httplib::Client& client, const std::string& version) {
  if (options_.key_ring == nullptr || version.empty() || version == keys_version_) {
    return Status::Ok();
  }
  auto res = client.Get("/v1/replication/keys", {{"Authorization", "Bearer " + options_.token}});
  if (!res || res->status != 200) {
    return Status::IOError("the primary's keys could not be fetched" +
                           (res ? " (" + std::to_string(res->status) + ")" : std::string()));
  }
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  KeyRing::Copy copy;
  bool well_formed = body.is_object() && body["keys"].is_array() && body["erased"].is_array() &&
                     body["version"].is_string();
  for (const auto& k : well_formed ? body["keys"] : nlohmann::json::array()) {
    const auto text = [&k](const char* name) {
      return k.is_object() && k.contains(name) && k.at(name).is_string()
                 ? std::optional<std::string>(k.at(name).get<std::string>())
                 : std::nullopt;
    };
    auto subject = text("subject"), encoded = text("key");
    auto key = encoded ? Base64Decode(*encoded) : std::nullopt;
    well_formed = well_formed && subject && key;
    if (well_formed) copy.keys.emplace_back(*subject, *key);
  }
  for (const auto& s : well_formed ? body["erased"] : nlohmann::json::array()) {
    well_formed = well_formed && s.is_string();
    if (well_formed) copy.erased.push_back(s.get<std::string>());
  }
  if (!well_formed) return Status::IOError("the primary's keys are not {version, keys, erased}");
  OKR_RETURN_IF_ERROR(options_.key_ring->Adopt(copy));
  keys_version_ = body["version"].get<std::string>();
  return Status::Ok();
}

Result<uint64_t> ReplicaFollower::FetchPage(httplib::Client& client, httplib::Client& keys) {
  const uint64_t after = store_->head().seq;
  RawFrameReader reader(after + 1, after + kMaxRawEvents);
  Page page;
  std::vector<StoredEvent> batch;
  uint64_t stored = 0;
  Status refused = Status::Ok();
  auto flush = [&] {
    if (batch.empty() || !refused.ok()) return refused.ok();
    // The keys these events are sealed with, before the events.
    refused = SyncKeys(keys, page.keys_version);
    if (!refused.ok()) return false;
    auto appended = store_->AppendStored(std::move(batch));
    batch.clear();
    if (appended.ok()) stored = appended->last_seq - after;
    refused = appended.status();
    return refused.ok();
  };
  auto take = [&](uint64_t seq, std::string_view bytes) {
    if (batch.size() == kMaxEventsPerAppend && !flush()) return false;
    if (seq == page.head && page.head_hash && Sha256(bytes) != *page.head_hash) {
      refused = Status::Corruption("seq " + std::to_string(seq) +
                                   " differs from the head the primary announced (Okrd-Head-Hash)");
      return false;
    }
    batch.push_back({seq, std::string(bytes)});
    return true;
  };
  Status framed = Status::Ok();
  const std::string path =
      "/v1/events/raw?after=" + std::to_string(after) + "&limit=" + std::to_string(kMaxRawEvents);
  auto res = client.Get(
      path, {{"Authorization", "Bearer " + options_.token}},
      [&](const httplib::Response& r) {
        page.Read(r);
        return true;
      },
      [&](const char* data, size_t n) {
        if (page.status != 200) {
          page.refusal.append(
              data, std::min(n, kRefusalBytes - std::min(kRefusalBytes, page.refusal.size())));
          return true;
        }
        framed = reader.Feed(std::string_view(data, n), take);
        return framed.ok() && !reader.stopped();
      });
  if (!batch.empty() && (batch.back().seq != page.head || !page.head_hash)) {
    batch.pop_back();  // not vouched for yet
  }
  if (!flush()) return refused;  // kCorruption when the events do not continue this log
  if (!framed.ok()) return Status::Corruption("the primary's answer: " + framed.message());
  OKR_RETURN_IF_ERROR(page.Check(res, reader, after));
  if (page.head < store_->head().seq) {
    return Status::Corruption("the primary's head is seq " + std::to_string(page.head) +
                              ", behind this log's " + std::to_string(store_->head().seq));
  }
  State now = state();
  now.primary_head = page.head;
  now.primary_head_recorded_at_us = page.head_recorded_at_us;
  Set(now);
  return stored;
}

void ReplicaFollower::Page::Read(const httplib::Response& r) {
  status = r.status;
  head = std::strtoull(r.get_header_value("Okrd-Head-Seq").c_str(), nullptr, 10);
  head_recorded_at_us =
      std::strtoll(r.get_header_value("Okrd-Head-Recorded-At").c_str(), nullptr, 10);
  Hash hash{};
  if (FromHex(r.get_header_value("Okrd-Head-Hash"), &hash)) head_hash = hash;
  keys_version = r.get_header_value("Okrd-Keys-Version");
}

// A page that did not arrive whole is asked for again (kIOError); one
// that arrived whole but stops short of the head it announced disagrees
// with itself (kCorruption).
Status ReplicaFollower::Page::Check(const httplib::Result& res, const RawFrameReader& reader,
                                    uint64_t after) const {
  if (!res)
    return Status::IOError("the primary did not answer: " + httplib::to_string(res.error()));
  if (status != 200) {
    return Status::IOError("the primary answered " + std::to_string(status) + ": " + refusal);
  }
  if (Status whole = reader.Finish(); !whole.ok()) {
    return Status::IOError("the primary's answer was cut short: " + whole.message());
  }
  if (!head_hash) return Status::IOError("the primary's answer has no Okrd-Head-Hash");
  const uint64_t due = std::min(head, after + kMaxRawEvents);
  if (due > after && reader.next_seq() <= due) {
    return Status::Corruption("the primary's answer ends before seq " +
                              std::to_string(reader.next_seq()) + ", short of its head " +
                              std::to_string(head));
  }
  return Status::Ok();
}

}  // namespace okr::api
