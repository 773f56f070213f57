// Readable JSON of stored events, for `okrctl dump` and the audit API.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "eventstore/event_codec.h"

namespace okr {

// RFC 3339 UTC with microseconds: "2026-07-01T09:30:00.000000Z".
std::string FormatTimeUs(int64_t us);

// {seq, recorded_at, actor, type, entity, version, idempotency_key, reason,
//  data, prev_hash}: `data` is the union member with snake_case field names,
// enums as snake_case names and *At fields as RFC 3339 times.
nlohmann::json EventToJson(schema::Event::Reader event);

}  // namespace okr
