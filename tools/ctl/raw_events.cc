#include "tools/ctl/raw_events.h"

#include <algorithm>

#include "eventstore/event_json.h"

namespace okr::ctl {

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
