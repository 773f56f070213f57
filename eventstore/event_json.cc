#include "eventstore/event_json.h"

#include "eventstore/enum_names.h"
#include "eventstore/sealing.h"

#include <capnp/dynamic.h>
#include <capnp/schema.h>

#include <cctype>
#include <ctime>

namespace okr {

std::string SnakeCase(std::string_view camel) {
  std::string out;
  for (char c : camel) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      out.push_back('_');
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

namespace {

bool IsTimeField(kj::StringPtr name) { return name.endsWith("At"); }

nlohmann::json ToJson(capnp::DynamicValue::Reader v, kj::StringPtr field_name);

nlohmann::json StructToJson(capnp::DynamicStruct::Reader s) {
  nlohmann::json out = nlohmann::json::object();
  auto add = [&](capnp::StructSchema::Field f) {
    auto name = f.getProto().getName();
    out[SnakeCase(name.cStr())] = ToJson(s.get(f), name);
  };
  for (auto f : s.getSchema().getNonUnionFields()) add(f);
  KJ_IF_MAYBE (member, s.which()) {
    add(*member);
  }
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
    case capnp::DynamicValue::DATA: {  // bytes in a payload: a key (log.signing_key)
      auto d = v.as<capnp::Data>();
      return Base64Encode(std::string_view(reinterpret_cast<const char*>(d.begin()), d.size()));
    }
    case capnp::DynamicValue::LIST: {
      nlohmann::json arr = nlohmann::json::array();
      for (auto item : v.as<capnp::DynamicList>()) arr.push_back(ToJson(item, ""));
      return arr;
    }
    case capnp::DynamicValue::ENUM: {
      auto e = v.as<capnp::DynamicEnum>();
      KJ_IF_MAYBE (en, e.getEnumerant()) {
        return SnakeCase(en->getProto().getName().cStr());
      }
      return e.getRaw();
    }
    case capnp::DynamicValue::STRUCT:
      return StructToJson(v.as<capnp::DynamicStruct>());
    default:
      return nullptr;
  }
}

// The sealed fields (eventstore/sealing.h) where the body would have had
// them, revealed now: the text, or null with "erased": true or "damaged":
// true on the event. Never the ciphertext.
void ShowSealed(schema::Event::Reader event, nlohmann::json* out) {
  if (!event.hasSealed()) return;
  bool erased = false, damaged = false;
  for (auto s : event.getSealed()) {
    Revealed r = Reveal(SealedToken(event.getSeq(), s));
    erased = erased || r.erased();
    damaged = damaged || r.damaged();
    nlohmann::json value = r.readable() ? nlohmann::json(std::move(r.text)) : nullptr;
    if (s.getField() == schema::PersonalField::REASON) {
      (*out)["reason"] = std::move(value);
    } else if ((*out)["data"].is_object()) {
      (*out)["data"][std::string(PersonalFieldName(s.getField()))] = std::move(value);
    }
  }
  if (erased) (*out)["erased"] = true;
  if (damaged) (*out)["damaged"] = true;
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
  KJ_IF_MAYBE (member, dyn.which()) {
    data = ToJson(dyn.get(*member), member->getProto().getName());
  }
  out["data"] = std::move(data);
  ShowSealed(event, &out);
  auto prev = event.getPrevHash();
  Hash h{};
  if (prev.size() == h.size()) std::copy(prev.begin(), prev.end(), h.begin());
  out["prev_hash"] = ToHex(h);
  return out;
}

void AddStoredBytes(std::string_view bytes, nlohmann::json* event) {
  (*event)["raw"] = Base64Encode(bytes);
  (*event)["hash"] = ToHex(Sha256(bytes));
}

nlohmann::json AuditEventJson(schema::Event::Reader event) {
  nlohmann::json out = EventToJson(event);
  std::string key = out["idempotency_key"].get<std::string>();
  if (auto nl = key.find('\n'); nl != std::string::npos)
    out["idempotency_key"] = key.substr(nl + 1);
  return out;
}

namespace {
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                 (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back(kBase64Alphabet[v & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    if (pad == 1 && text[i + 2] == '=') return std::nullopt;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      int d = k >= 4 - pad ? 0 : value(text[i + k]);
      if (d < 0) return std::nullopt;
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<char>((v >> 16) & 0xff));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

}  // namespace okr
