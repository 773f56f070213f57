#include "api/replica.h"

#include <httplib.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "api/heap.h"
#include "api/log_key.h"
#include "api/replica_copy.h"
#include "api/routes/raw_frames.h"
#include "api/routes/request.h"
#include "eventstore/base/thread_name.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"
#include "eventstore/sealing.h"

namespace okr::api {

namespace {

constexpr int kConnectTimeoutSeconds = 5;
// Longer than the stream's heartbeat (15 s by default): a stream silent
// for this long is taken as broken.
constexpr int kReadTimeoutSeconds = 30;
constexpr size_t kRefusalBytes = 300;  // of a refusal's body, kept for the state's problem

// Keeps the start of a refusal's body, `data` the next bytes of it.
void KeepRefusal(std::string* refusal, const char* data, size_t n) {
  refusal->append(data, std::min(n, kRefusalBytes - std::min(kRefusalBytes, refusal->size())));
}

// How a stream that brought nothing wrong ended. Ok: by the primary (a
// restart, new tokens, an erasure), by a heartbeat, or cut off; the
// follower pages from its head, then follows again.
Status StreamEnd(const httplib::Result& res, int status, const std::string& refusal,
                 bool too_large) {
  if (too_large) {
    return Status::Corruption("the primary's stream sent a block over " +
                              std::to_string(kMaxSseBlockBytes) + " bytes");
  }
  if (status == 0) {
    return Status::IOError("the primary's stream did not answer: " +
                           httplib::to_string(res.error()));
  }
  if (status != 200) {
    return Status::IOError("the primary's stream answered " + std::to_string(status) + ": " +
                           refusal);
  }
  return Status::Ok();
}

}  // namespace

ReplicaFollower::ReplicaFollower(EventStore* store, Options options)
    : store_(store), options_(std::move(options)) {
  thread_ = NamedThread("okr:replica", [this] { Run(); });
}

ReplicaFollower::~ReplicaFollower() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    // A read in flight returns at once.
    for (httplib::Client* client : clients_) client->stop();
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

Status ReplicaFollower::KeepCheckpoint(const std::string& data) {
  const std::string what = "a checkpoint in the primary's stream";
  auto body = nlohmann::json::parse(data, nullptr, false);
  if (!body.is_object() || !body["note"].is_string() || !body["size"].is_number_unsigned()) {
    return Status::Corruption(what + " is not {note, root, size}");
  }
  const uint64_t size = body["size"].get<uint64_t>();
  if (size == 0 || size > store_->head().seq) {
    return Status::Corruption(what + " signs size " + std::to_string(size) +
                              ", beyond the events it sent");
  }
  if (auto kept = checkpoint(); kept && kept->size >= size) return Status::Ok();
  OKR_ASSIGN_OR_RETURN(std::optional<RecordedKey> recorded, FindRecordedKey(*store_));
  if (!recorded) {
    return Status::Corruption(what + " came before the log recorded the key it is signed with");
  }
  const NoteVerifier& verifier = options_.log_key ? *options_.log_key : recorded->verifier;
  if (verifier.name != recorded->verifier.name ||
      verifier.public_key != recorded->verifier.public_key) {
    return Status::Corruption("the log records the key " + recorded->verifier.vkey() +
                              ", not --log-key " + verifier.vkey());
  }
  std::string note = body["note"].get<std::string>();
  auto checkpoint = VerifyCheckpoint(note, verifier);
  if (!checkpoint.ok()) return Status::Corruption(what + ": " + checkpoint.status().message());
  OKR_ASSIGN_OR_RETURN(Hash root, store_->TreeRoot(size));
  if (checkpoint->size != size || checkpoint->root != root) {
    return Status::Corruption(what + " does not sign this log's tree of size " +
                              std::to_string(size));
  }
  std::lock_guard<std::mutex> lock(mu_);
  checkpoint_ = KeptCheckpoint{size, root, std::move(note)};
  return Status::Ok();
}

bool ReplicaFollower::Stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    clients_ = {&client, &keys};
  }
  // Stopped, the clients go with this frame: the destructor must not reach them.
  struct Forget {
    ReplicaFollower* follower;
    ~Forget() {
      std::lock_guard<std::mutex> lock(follower->mu_);
      follower->clients_.clear();
    }
  } forget{this};
  std::chrono::milliseconds backoff = options_.poll;
  // Held while pages come back to back (a catch-up, as a start may be),
  // so their buffers reuse the same pages; gone at the primary's head.
  std::optional<HeapForCopy> copying(std::in_place);
  PageStorer storer(store_);
  do {
    Result<uint64_t> stored = FetchPage(client, keys, storer);
    State now = state();
    if (stored.ok()) {
      backoff = options_.poll;
      now.connected = true;
      now.problem.clear();
      Set(now);
      // Short of the primary's head: the next page. At it: the stream,
      // from this log's head once the pages are stored, until it ends,
      // then a page again for whatever came in between.
      if (storer.queued_head() < now.primary_head) {
        if (!copying) copying.emplace();
        continue;
      }
      Status followed = storer.Drain();
      copying.reset();
      if (followed.ok()) followed = Follow(client, keys);
      if (Stopping()) return;
      if (followed.ok()) continue;
      stored = followed;
      now = state();
    }
    if (Stopping()) return;
    copying.reset();
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
  return FetchKeys(client);
}

Status ReplicaFollower::FetchKeys(httplib::Client& client) {
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

Result<uint64_t> ReplicaFollower::FetchPage(httplib::Client& client, httplib::Client& keys,
                                            PageStorer& storer) {
  const uint64_t after = storer.queued_head();
  RawFrameReader reader(after + 1, after + kMaxRawEvents);
  Page page;
  std::vector<StoredEvent> batch;
  size_t batch_bytes = 0;
  uint64_t handed = 0;
  Status refused = Status::Ok();
  auto flush = [&] {
    if (batch.empty() || !refused.ok()) return refused.ok();
    // The keys these events are sealed with, before the events.
    refused = SyncKeys(keys, page.keys_version);
    if (!refused.ok()) return false;
    handed = batch.back().seq - after;
    if (!storer.Submit(std::move(batch))) refused = Status::IOError("an append of the page failed");
    batch.clear();
    batch_bytes = 0;
    return refused.ok();
  };
  // Ends the page with a failure: what the appends handed over said
  // first (kCorruption when they do not continue this log), else `why`.
  auto failed = [&storer](Status why) {
    Status stored = storer.Drain();
    return stored.ok() ? why : stored;
  };
  auto take = [&](uint64_t seq, std::string_view bytes) {
    // Half a page to an append (ingested: docs/DECISIONS.md, "A
    // replica's catch-up is ingested"), less when its events are large.
    const bool full =
        batch.size() == kMaxStoredEventsPerAppend || batch_bytes >= options_.most_append_bytes;
    if (full) {
      // The append's last event is stored before the rest of the page:
      // this one, naming its hash, vouches for it first.
      refused = Vouches(batch.back(), seq, bytes);
      if (!flush()) return false;
    }
    refused = page.CheckHead(seq, bytes);  // refused: the batch is not handed over
    batch.push_back({seq, std::string(bytes)});
    batch_bytes += bytes.size();
    return refused.ok();
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
          KeepRefusal(&page.refusal, data, n);
          return true;
        }
        framed = reader.Feed(std::string_view(data, n), take);
        return framed.ok() && !reader.stopped();
      });
  if (!batch.empty() && (batch.back().seq != page.head || !page.head_hash)) {
    batch.pop_back();  // not vouched for yet
  }
  if (!flush()) return failed(refused);
  if (!framed.ok()) return failed(Status::Corruption("the primary's answer: " + framed.message()));
  if (Status c = page.Check(res, reader, after, storer.queued_head()); !c.ok()) return failed(c);
  State now = state();
  now.primary_head = page.head;
  now.primary_head_recorded_at_us = page.head_recorded_at_us;
  Set(now);
  return handed;
}

// What the stream brought, between the thread that reads it and the one
// that stores it: while one append is made durable, the events read
// meanwhile gather for the next, as a primary's writer gathers writes.
// Storing each read as it came made one synced append per 4 KiB read,
// which falls behind a primary writing a few thousand events a second.
struct ReplicaFollower::Inbox {
  struct Item {
    StoredEvent event;
    bool unknown_subject = false;           // sealed under a key not here
    std::optional<std::string> checkpoint;  // or a checkpoint event's data
  };
  explicit Inbox(size_t most_bytes) : most_bytes(most_bytes) {}
  const size_t most_bytes;  // of the events queued (one is always taken)
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> items;
  size_t bytes = 0;     // of the events in `items`
  bool closed = false;  // the stream ended: store what is left and stop
  Status failed;        // why storing stopped

  // Waits while the inbox is full, by count or by bytes (the stream is
  // then read no further, and the primary's hub holds the rest); false
  // once storing failed.
  bool Put(Item item) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] {
      return (items.size() < kMaxQueued && (items.empty() || bytes < most_bytes)) || !failed.ok();
    });
    if (!failed.ok()) return false;
    bytes += item.event.bytes.size();
    items.push_back(std::move(item));
    cv.notify_all();
    return true;
  }
  // The oldest item, taken out.
  Item Take() {
    Item item = std::move(items.front());
    items.pop_front();
    bytes -= item.event.bytes.size();
    return item;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu);
    closed = true;
    cv.notify_all();
  }
  static constexpr size_t kMaxQueued = 4 * kMaxEventsPerAppend;
};

void ReplicaFollower::StoreFromInbox(Inbox& inbox, httplib::Client& stream, httplib::Client& keys) {
  while (true) {
    std::vector<StoredEvent> batch;
    std::optional<std::string> checkpoint;
    bool unknown_subject = false;
    {
      std::unique_lock<std::mutex> lock(inbox.mu);
      inbox.cv.wait(lock, [&] { return !inbox.items.empty() || inbox.closed; });
      if (inbox.items.empty()) return;
      // The events up to a checkpoint, which comes after the events it
      // signs, within an append's bounds.
      size_t batch_bytes = 0;
      while (!inbox.items.empty() && batch.size() < kMaxEventsPerAppend &&
             batch_bytes < options_.most_append_bytes) {
        if (inbox.items.front().checkpoint) {
          if (batch.empty()) checkpoint = std::move(inbox.Take().checkpoint);
          break;
        }
        Inbox::Item item = inbox.Take();
        unknown_subject = unknown_subject || item.unknown_subject;
        batch_bytes += item.event.bytes.size();
        batch.push_back(std::move(item.event));
      }
      inbox.cv.notify_all();
    }
    Status stored = Status::Ok();
    if (checkpoint) {
      stored = KeepCheckpoint(*checkpoint);
    } else {
      // The keys these events are sealed with, before the events.
      if (unknown_subject && options_.key_ring != nullptr) stored = FetchKeys(keys);
      if (stored.ok()) stored = store_->AppendStored(std::move(batch)).status();
    }
    if (!stored.ok()) {
      std::lock_guard<std::mutex> lock(inbox.mu);
      inbox.failed = stored;
      inbox.cv.notify_all();
      stream.stop();  // the reading ends now, not at the stream's next event
      return;
    }
  }
}

Status ReplicaFollower::Follow(httplib::Client& client, httplib::Client& keys) {
  const uint64_t after = store_->head().seq;
  uint64_t next = after + 1;  // the seq the stream's next event must carry
  State now = state();
  int status = 0;
  std::string refusal;
  Status problem = Status::Ok();  // the reading's own
  Inbox inbox(4 * options_.most_append_bytes);
  std::thread storer = NamedThread("okr:live-store", [&] { StoreFromInbox(inbox, client, keys); });
  auto take = [&](const SseBlocks::Block& block) {
    if (block.comment) {
      // ": head N", the heartbeat of a stream with nothing to send. A head
      // beyond what came ends the stream: the next page either brings the
      // rest or shows why it did not come (an event lost on the way).
      if (!block.comment->starts_with("head ")) return true;
      const uint64_t head = std::strtoull(block.comment->c_str() + 5, nullptr, 10);
      now.primary_head = std::max(now.primary_head, head);
      return head < next;
    }
    if (block.event.empty()) return true;  // "retry: ..."
    Inbox::Item item;
    if (block.event == "checkpoint") {
      item.checkpoint = block.data;
      return inbox.Put(std::move(item));
    }
    auto event = CheckStreamedEvent(block.data, next, options_.key_ring);
    if (!event.ok()) {
      problem = event.status();
      return false;
    }
    ++next;
    if (event->stored.seq >= now.primary_head) {
      now.primary_head = event->stored.seq;
      now.primary_head_recorded_at_us = event->recorded_at_us;
    }
    item.event = std::move(event->stored);
    item.unknown_subject = event->unknown_subject;
    return inbox.Put(std::move(item));
  };
  SseBlocks blocks;
  auto res = client.Get(
      "/v1/events/stream?raw=true&after=" + std::to_string(after),
      {{"Authorization", "Bearer " + options_.token}, {"Accept", "text/event-stream"}},
      [&](const httplib::Response& r) {
        status = r.status;
        now.primary_head = std::max<uint64_t>(
            now.primary_head,
            std::strtoull(r.get_header_value("Okrd-Head-Seq").c_str(), nullptr, 10));
        return true;
      },
      [&](const char* data, size_t n) {
        if (status != 200) {
          KeepRefusal(&refusal, data, n);
          return true;
        }
        if (!blocks.Feed(std::string_view(data, n), take)) return false;
        Set(now);
        return !Stopping();
      });
  inbox.Close();
  storer.join();
  // kCorruption when the events do not continue this log.
  if (!inbox.failed.ok()) return inbox.failed;
  if (!problem.ok()) return problem;
  return StreamEnd(res, status, refusal, blocks.too_large());
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

Status ReplicaFollower::Page::CheckHead(uint64_t seq, std::string_view bytes) const {
  if (seq == head && head_hash && Sha256(bytes) != *head_hash) {
    return Status::Corruption("seq " + std::to_string(seq) +
                              " differs from the head the primary announced (Okrd-Head-Hash)");
  }
  return Status::Ok();
}

// A page that did not arrive whole is asked for again (kIOError); one
// that arrived whole but stops short of the head it announced disagrees
// with itself, and a head behind what this log holds with it (kCorruption).
Status ReplicaFollower::Page::Check(const httplib::Result& res, const RawFrameReader& reader,
                                    uint64_t after, uint64_t queued) const {
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
  if (head < queued) {
    return Status::Corruption("the primary's head is seq " + std::to_string(head) +
                              ", behind this log's " + std::to_string(queued));
  }
  return Status::Ok();
}

}  // namespace okr::api
