#include "api/stream_parts.h"

#include "api/errors.h"
#include "eventstore/event_json.h"

namespace okr::api::stream_parts {

void AppendFrame(uint64_t seq, const std::string& type, const std::string& data, std::string* out) {
  out->append("id: ").append(std::to_string(seq));
  out->append("\nevent: ").append(type);
  out->append("\ndata: ").append(data).append("\n\n");
}

std::string EventData(schema::Event::Reader ev, std::string_view raw_bytes, bool raw) {
  nlohmann::json j = AuditEventJson(ev);
  if (raw) AddStoredBytes(raw_bytes, &j);
  return Dump(j);
}

std::string ChangeData(uint64_t seq, const std::string& type, const std::string& entity,
                       const std::string& cycle) {
  return Dump({{"seq", seq},
               {"type", type},
               {"entity", entity},
               {"cycle", cycle.empty() ? nlohmann::json(nullptr) : nlohmann::json(cycle)}});
}

}  // namespace okr::api::stream_parts
