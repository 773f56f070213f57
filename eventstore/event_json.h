// Readable JSON of stored events, for `okrctl dump` and the audit API.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "eventstore/base/time.h"  // FormatTimeUs, used with these everywhere
#include "eventstore/event_codec.h"

namespace okr {

// {seq, recorded_at, actor, type, entity, version, idempotency_key, reason,
//  data, prev_hash}: `data` is the union member with snake_case field names,
// enums as snake_case names, *At fields as RFC 3339 times and bytes (a
// log.signing_key's public_key) as base64.
nlohmann::json EventToJson(schema::Event::Reader event);
// EventToJson as the audit routes (/v1/events, histories), the live feeds
// and webhook deliveries show it (SPEC §3, §8): the idempotency key without
// the actor scope okrd stores it under.
nlohmann::json AuditEventJson(schema::Event::Reader event);

// Standard base64 (RFC 4648, with padding): how the audit API carries an
// event's exact stored bytes inside JSON.
std::string Base64Encode(std::string_view bytes);
// nullopt when `text` is not padded standard base64.
std::optional<std::string> Base64Decode(std::string_view text);
// What raw=true adds to an event's JSON (/v1/events, the events stream):
// `raw`, its stored bytes in base64, and `hash`, their SHA-256 in hex,
// which vouches for the newest event before a successor's prev_hash does.
void AddStoredBytes(std::string_view bytes, nlohmann::json* event);

}  // namespace okr
