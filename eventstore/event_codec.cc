#include "eventstore/event_codec.h"

#include <capnp/dynamic.h>
#include <capnp/schema.h>
#include <kj/exception.h>
#include <openssl/sha.h>

#include <cstring>

namespace okr {

Hash Sha256(std::string_view bytes) {
  Hash out;
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out.data());
  return out;
}

std::string ToHex(const Hash& hash) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(hash.size() * 2);
  for (uint8_t b : hash) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

bool FromHex(std::string_view hex, Hash* hash) {
  if (hex.size() != hash->size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < hash->size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*hash)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

namespace {

// Touches every text and data field of the active fields, recursively, so a
// malformed one throws here, inside Decode's try, and never later in a reader.
void ValidateStruct(capnp::DynamicStruct::Reader s, int depth);

void ValidateValue(capnp::DynamicValue::Reader v, int depth) {
  switch (v.getType()) {
    case capnp::DynamicValue::TEXT:
      v.as<capnp::Text>();
      break;
    case capnp::DynamicValue::DATA:
      v.as<capnp::Data>();
      break;
    case capnp::DynamicValue::LIST:
      for (auto item : v.as<capnp::DynamicList>()) ValidateValue(item, depth + 1);
      break;
    case capnp::DynamicValue::STRUCT:
      ValidateStruct(v.as<capnp::DynamicStruct>(), depth + 1);
      break;
    case capnp::DynamicValue::ENUM:
    default:
      break;
  }
}

void ValidateStruct(capnp::DynamicStruct::Reader s, int depth) {
  KJ_REQUIRE(depth < 16, "event nested too deeply");
  for (auto field : s.getSchema().getNonUnionFields()) {
    if (s.has(field)) ValidateValue(s.get(field), depth);
  }
  KJ_IF_MAYBE(member, s.which()) {
    ValidateValue(s.get(*member), depth);
  } else {
    KJ_REQUIRE(s.getSchema().getUnionFields().size() == 0, "unknown union member");
  }
}

}  // namespace

Result<std::shared_ptr<const DecodedEvent>> DecodedEvent::Decode(std::string_view bytes) {
  if (bytes.size() > format::kMaxEventBytes) {
    return Status::Corruption("event value of " + std::to_string(bytes.size()) +
                              " bytes exceeds the limit");
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::Corruption("event value of " + std::to_string(bytes.size()) +
                              " bytes is not a whole number of words");
  }
  std::shared_ptr<DecodedEvent> decoded(new DecodedEvent());
  decoded->words_ = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(decoded->words_.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  // Bounds the work a hostile message can cause: no more words traversed
  // than it holds (plus slack for empty structs), no deep nesting.
  options.traversalLimitInWords = decoded->words_.size() * 2 + 64;
  options.nestingLimit = 16;
  try {
    decoded->reader_ = std::make_unique<capnp::FlatArrayMessageReader>(
        decoded->words_.asPtr(), options);
    if (decoded->reader_->getEnd() != decoded->words_.end()) {
      return Status::Corruption("event value has trailing bytes");
    }
    auto root = decoded->reader_->getRoot<schema::Event>();
    ValidateStruct(capnp::DynamicStruct::Reader(root), 0);
    decoded->root_ = root;
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("undecodable event: ") + e.getDescription().cStr());
  }
  return std::shared_ptr<const DecodedEvent>(std::move(decoded));
}

std::string EncodeMessage(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asChars();
  return std::string(bytes.begin(), bytes.size());
}

std::string EventTypeName(schema::Event::Which which) {
  using W = schema::Event::Which;
  switch (which) {
    case W::UNIT_CREATED: return "unit.created";
    case W::UNIT_RENAMED: return "unit.renamed";
    case W::UNIT_MOVED: return "unit.moved";
    case W::UNIT_RETIRED: return "unit.retired";
    case W::UNIT_EMAIL_CHANGED: return "unit.email_changed";
    case W::CYCLE_CREATED: return "cycle.created";
    case W::CYCLE_CHANGED: return "cycle.changed";
    case W::CYCLE_CLOSED: return "cycle.closed";
    case W::CYCLE_REOPENED: return "cycle.reopened";
    case W::OBJECTIVE_CREATED: return "objective.created";
    case W::OBJECTIVE_RETITLED: return "objective.retitled";
    case W::OBJECTIVE_DESCRIBED: return "objective.described";
    case W::OBJECTIVE_OWNER_CHANGED: return "objective.owner_changed";
    case W::OBJECTIVE_ALIGNMENT_SET: return "objective.alignment_set";
    case W::OBJECTIVE_ARCHIVED: return "objective.archived";
    case W::OBJECTIVE_RESTORED: return "objective.restored";
    case W::KEY_RESULT_ADDED: return "key_result.added";
    case W::KEY_RESULT_TITLE_CHANGED: return "key_result.title_changed";
    case W::KEY_RESULT_START_CHANGED: return "key_result.start_changed";
    case W::KEY_RESULT_TARGET_CHANGED: return "key_result.target_changed";
    case W::KEY_RESULT_UNIT_CHANGED: return "key_result.unit_changed";
    case W::KEY_RESULT_WEIGHT_CHANGED: return "key_result.weight_changed";
    case W::KEY_RESULT_OWNER_CHANGED: return "key_result.owner_changed";
    case W::KEY_RESULT_METRIC_CHANGED: return "key_result.metric_changed";
    case W::KEY_RESULT_REMOVED: return "key_result.removed";
    case W::CHECK_IN_RECORDED: return "check_in.recorded";
    case W::CHECK_IN_CORRECTED: return "check_in.corrected";
    case W::COMMENT_ADDED: return "comment.added";
    case W::OBJECTIVE_REVIEWED: return "objective.reviewed";
  }
  return "unknown";
}

}  // namespace okr
