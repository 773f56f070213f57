#include "eventstore/event_json.h"

#include <capnp/dynamic.h>
#include <capnp/schema.h>

#include <cctype>
#include <ctime>

namespace okr {

std::string FormatTimeUs(int64_t us) {
  int64_t secs = us / 1000000;
  int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

namespace {

std::string SnakeCase(kj::StringPtr name) {
  std::string out;
  for (char c : name) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      out.push_back('_');
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool IsTimeField(kj::StringPtr name) { return name.endsWith("At"); }

nlohmann::json ToJson(capnp::DynamicValue::Reader v, kj::StringPtr field_name);

nlohmann::json StructToJson(capnp::DynamicStruct::Reader s) {
  nlohmann::json out = nlohmann::json::object();
  auto add = [&](capnp::StructSchema::Field f) {
    auto name = f.getProto().getName();
    out[SnakeCase(name)] = ToJson(s.get(f), name);
  };
  for (auto f : s.getSchema().getNonUnionFields()) add(f);
  KJ_IF_MAYBE(member, s.which()) { add(*member); }
  return out;
}

nlohmann::json ToJson(capnp::DynamicValue::Reader v, kj::StringPtr field_name) {
  switch (v.getType()) {
    case capnp::DynamicValue::VOID:
      return nullptr;
    case capnp::DynamicValue::BOOL:
      return v.as<bool>();
    case capnp::DynamicValue::INT:
      if (IsTimeField(field_name)) return FormatTimeUs(v.as<int64_t>());
      return v.as<int64_t>();
    case capnp::DynamicValue::UINT:
      return v.as<uint64_t>();
    case capnp::DynamicValue::FLOAT:
      return v.as<double>();
    case capnp::DynamicValue::TEXT: {
      auto t = v.as<capnp::Text>();
      return std::string(t.begin(), t.size());
    }
    case capnp::DynamicValue::DATA: {
      auto d = v.as<capnp::Data>();
      std::string hex;
      static constexpr char kDigits[] = "0123456789abcdef";
      for (uint8_t b : d) {
        hex.push_back(kDigits[b >> 4]);
        hex.push_back(kDigits[b & 0xf]);
      }
      return hex;
    }
    case capnp::DynamicValue::LIST: {
      nlohmann::json arr = nlohmann::json::array();
      for (auto item : v.as<capnp::DynamicList>()) arr.push_back(ToJson(item, ""));
      return arr;
    }
    case capnp::DynamicValue::ENUM: {
      auto e = v.as<capnp::DynamicEnum>();
      KJ_IF_MAYBE(en, e.getEnumerant()) { return SnakeCase(en->getProto().getName()); }
      return e.getRaw();
    }
    case capnp::DynamicValue::STRUCT:
      return StructToJson(v.as<capnp::DynamicStruct>());
    default:
      return nullptr;
  }
}

}  // namespace

nlohmann::json EventToJson(schema::Event::Reader event) {
  nlohmann::json out;
  out["seq"] = event.getSeq();
  out["recorded_at"] = FormatTimeUs(event.getRecordedAt());
  out["actor"] = std::string(event.getActor().cStr());
  out["type"] = EventTypeName(event.which());
  out["entity"] = std::string(event.getEntity().cStr());
  out["version"] = event.getVersion();
  out["idempotency_key"] = std::string(event.getIdempotencyKey().cStr());
  out["reason"] = std::string(event.getReason().cStr());
  capnp::DynamicStruct::Reader dyn(event);
  nlohmann::json data = nullptr;
  KJ_IF_MAYBE(member, dyn.which()) {
    data = ToJson(dyn.get(*member), member->getProto().getName());
  }
  out["data"] = std::move(data);
  auto prev = event.getPrevHash();
  Hash h{};
  if (prev.size() == h.size()) std::copy(prev.begin(), prev.end(), h.begin());
  out["prev_hash"] = ToHex(h);
  return out;
}

}  // namespace okr
