#include "api/replica_copy.h"

#include <nlohmann/json.hpp>

#include <cassert>
#include <utility>

#include "eventstore/base/thread_name.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"

namespace okr::api {

bool SseBlocks::Feed(std::string_view bytes, const std::function<bool(const Block&)>& fn) {
  pending_.append(bytes);
  size_t start = 0;
  bool go_on = true;
  for (size_t end; go_on && (end = pending_.find("\n\n", start)) != std::string::npos;
       start = end + 2) {
    go_on = fn(Parse(std::string_view(pending_).substr(start, end - start)));
  }
  pending_.erase(0, start);
  too_large_ = pending_.size() > kMaxSseBlockBytes;
  return go_on && !too_large_;
}

SseBlocks::Block SseBlocks::Parse(std::string_view text) {
  Block block;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon), value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (value.starts_with(' ')) value.remove_prefix(1);
    }
    if (field.empty()) {
      block.comment = std::string(value);
    } else if (field == "event") {
      block.event = value;
    } else if (field == "data") {
      if (!block.data.empty()) block.data += '\n';
      block.data += value;
    }
  }
  return block;
}

Result<StreamedEvent> CheckStreamedEvent(const std::string& data, uint64_t due,
                                         const KeyRing* ring) {
  auto frame = nlohmann::json::parse(data, nullptr, false);
  std::optional<std::string> bytes;
  Hash hash{};
  if (frame.is_object() && frame["seq"].is_number_unsigned() && frame["raw"].is_string() &&
      frame["hash"].is_string() && FromHex(frame["hash"].get<std::string>(), &hash)) {
    bytes = Base64Decode(frame["raw"].get<std::string>());
  }
  if (!bytes) {
    return Status::Corruption("the primary's stream sent an event without seq, raw and hash");
  }
  const uint64_t seq = frame["seq"].get<uint64_t>();
  if (seq != due) {
    return Status::Corruption("the primary's stream sent seq " + std::to_string(seq) + " where " +
                              std::to_string(due) + " was due");
  }
  auto decoded = DecodedEvent::Decode(*bytes);
  if (Sha256(*bytes) != hash || !decoded.ok()) {
    return Status::Corruption("seq " + std::to_string(seq) +
                              " differs from the hash the primary's stream announced");
  }
  StreamedEvent out;
  auto event = (*decoded)->event();
  out.recorded_at_us = event.getRecordedAt();
  for (auto sealed : event.getSealed()) {
    out.unknown_subject =
        out.unknown_subject || (ring != nullptr && !ring->Knows(sealed.getSubject().cStr()));
  }
  out.stored = {seq, std::move(*bytes)};
  return out;
}

Status Vouches(const StoredEvent& before, uint64_t seq, std::string_view next) {
  auto decoded = DecodedEvent::Decode(next);
  if (decoded.ok() && NamesAsPrev((*decoded)->event(), Sha256(before.bytes))) return Status::Ok();
  return Status::Corruption("seq " + std::to_string(seq) + " does not name the hash of seq " +
                            std::to_string(before.seq) + " as its prevHash");
}

PageStorer::PageStorer(EventStore* store)
    : store_(store),
      queued_head_(store->head().seq),
      thread_(NamedThread("okr:page-store", [this] { Loop(); })) {}

PageStorer::~PageStorer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool PageStorer::Submit(std::vector<StoredEvent> batch) {
  assert(!batch.empty() && batch.front().seq == queued_head() + 1);
  PreparedStored prepared = store_->PrepareStored(std::move(batch));
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !next_ || !failed_.ok(); });
  if (!failed_.ok()) return false;
  queued_head_ = prepared.last_seq();
  next_ = std::move(prepared);
  cv_.notify_all();
  return true;
}

Status PageStorer::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !next_ && !busy_; });
  queued_head_ = store_->head().seq;
  return std::exchange(failed_, Status::Ok());
}

uint64_t PageStorer::queued_head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_head_;
}

void PageStorer::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return next_ || closing_; });
    if (!next_) return;
    PreparedStored batch = std::move(*next_);
    next_.reset();
    // A batch handed over after a failure continues events not stored.
    if (!failed_.ok()) continue;
    busy_ = true;
    cv_.notify_all();
    lock.unlock();
    Status stored = store_->AppendStored(std::move(batch)).status();
    lock.lock();
    busy_ = false;
    if (failed_.ok()) failed_ = stored;
    cv_.notify_all();
  }
}

}  // namespace okr::api
