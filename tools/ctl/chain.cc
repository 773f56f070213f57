#include "tools/ctl/chain.h"

#include <cstring>

#include "eventstore/event_json.h"

namespace okr::ctl {

bool ChainChecker::Fail(uint64_t seq, std::string problem) {
  report_.ok = false;
  report_.first_bad_seq = seq;
  report_.problem = std::move(problem);
  return false;
}

bool ChainChecker::Add(uint64_t seq, std::string_view bytes) {
  if (!report_.ok) return false;
  uint64_t expected = report_.events + 1;
  if (seq != expected) {
    return Fail(expected, seq > expected
                              ? "event missing (the next one served is seq " + std::to_string(seq) + ")"
                              : "seq out of order");
  }
  auto decoded = DecodedEvent::Decode(bytes);
  if (!decoded.ok()) return Fail(seq, decoded.status().message());
  auto ev = (*decoded)->event();
  if (ev.getSeq() != seq) {
    return Fail(seq, "served as seq " + std::to_string(seq) + " but says seq " +
                         std::to_string(ev.getSeq()));
  }
  auto prev_field = ev.getPrevHash();
  if (prev_field.size() != prev_.size() ||
      std::memcmp(prev_field.begin(), prev_.data(), prev_.size()) != 0) {
    return Fail(seq, "prevHash does not match the previous event");
  }
  if (ev.getRecordedAt() < last_time_) return Fail(seq, "recordedAt goes back in time");
  auto entity = ev.getEntity();
  uint64_t& version = versions_[std::string(entity.begin(), entity.size())];
  if (ev.getVersion() != version + 1) {
    return Fail(seq, "entity version " + std::to_string(ev.getVersion()) + " follows " +
                         std::to_string(version));
  }
  version = ev.getVersion();
  last_time_ = ev.getRecordedAt();
  prev_ = Sha256(bytes);
  report_.events = seq;
  report_.head_hash = prev_;
  return true;
}

Status FetchRawEvents(Client& client, uint64_t up_to,
                      const std::function<bool(uint64_t, const std::string&)>& fn,
                      const std::function<void(uint64_t)>& progress) {
  uint64_t after = 0;
  while (after < up_to) {
    size_t limit = static_cast<size_t>(std::min<uint64_t>(kEventsPageSize, up_to - after));
    HttpAnswer a = client.Get("/v1/events?raw=true&after=" + std::to_string(after) +
                              "&limit=" + std::to_string(limit));
    if (!a.ok()) return Status::IOError("GET /v1/events: " + a.Describe());
    if (!a.json.is_object() || !a.json["items"].is_array()) {
      return Status::IOError("GET /v1/events answered no items");
    }
    const auto& items = a.json["items"];
    if (items.empty()) break;
    for (const auto& item : items) {
      if (!item.contains("raw") || !item["raw"].is_string() || !item.contains("seq") ||
          !item["seq"].is_number_unsigned()) {
        return Status::IOError(
            "GET /v1/events?raw=true answered an event without its stored bytes: this okrd is "
            "older than the raw parameter");
      }
      uint64_t seq = item["seq"].get<uint64_t>();
      auto bytes = Base64Decode(item["raw"].get<std::string>());
      if (!bytes) return Status::Corruption("seq " + std::to_string(seq) + ": raw is not base64");
      if (seq > up_to) return Status::Ok();
      if (!fn(seq, *bytes)) return Status::Ok();
      after = seq;
    }
    if (progress) progress(after);
    if (a.json["next"].is_null()) break;
  }
  return Status::Ok();
}

}  // namespace okr::ctl
