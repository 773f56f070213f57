#include "eventstore/event_codec.h"

#include <capnp/any.h>
#include <capnp/schema.h>
#include <kj/debug.h>
#include <kj/exception.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cassert>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include "eventstore/base/named.h"

namespace okr {

Hash Sha256(std::string_view bytes) { return Sha256Concat({bytes}); }

bool NamesAsPrev(schema::Event::Reader event, const Hash& hash) {
  const auto prev = event.getPrevHash();
  return prev.size() == hash.size() && std::memcmp(prev.begin(), hash.data(), hash.size()) == 0;
}

Hash Sha256Concat(std::initializer_list<std::string_view> parts) {
  // OpenSSL 3's one-shot SHA256() looks the algorithm up on every call; a
  // fetched digest and a context per thread halve the cost per event.
  struct Context {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
  };
  thread_local Context c;
  Hash out;
  unsigned int len = 0;
  bool ok = c.md != nullptr && c.ctx != nullptr && EVP_DigestInit_ex(c.ctx, c.md, nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(c.ctx, part.data(), part.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(c.ctx, out.data(), &len) == 1 && len == out.size();
  if (!ok) {  // not expected; the one-shot call needs no state, only the joined bytes
    std::string joined;
    for (std::string_view part : parts) joined.append(part);
    SHA256(reinterpret_cast<const unsigned char*>(joined.data()), joined.size(), out.data());
  }
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

// A schema-driven check of every text, data, struct and list field that a
// message holds, without reflection at check time: the schema is read once
// into a plan (which pointer slots hold what), then each message is checked
// through AnyStruct. A malformed field throws here, inside Decode's try, and
// never later in a reader.
struct StructPlan;

struct PointerPlan {
  enum Kind : uint8_t {
    kText,
    kData,
    kStruct,
    kTextList,
    kStructList,
    kOtherList
  } kind = kOtherList;
  uint32_t index = 0;  // pointer slot
  const StructPlan* sub = nullptr;
};

struct StructPlan {
  std::vector<PointerPlan> common;
  bool has_union = false;
  uint32_t discriminant_offset = 0;  // in 16-bit units
  std::vector<bool> known;           // by discriminant value
  std::vector<std::vector<PointerPlan>> members;
};

class PlanBuilder {
 public:
  const StructPlan* For(capnp::StructSchema schema) {
    auto id = schema.getProto().getId();
    for (auto& [known_id, plan] : plans_) {
      if (known_id == id) return plan.get();
    }
    plans_.emplace_back(id, std::make_unique<StructPlan>());
    StructPlan* plan = plans_.back().second.get();
    auto node = schema.getProto().getStruct();
    plan->has_union = node.getDiscriminantCount() > 0;
    plan->discriminant_offset = node.getDiscriminantOffset();
    for (auto field : schema.getFields()) {
      auto proto = field.getProto();
      // okr.capnp uses no groups; a group would need a plan of its own.
      KJ_ASSERT(proto.isSlot(), "the event schema gained a group: extend the plan");
      PointerPlan p;
      p.index = proto.getSlot().getOffset();
      auto type = field.getType();
      if (type.isText()) {
        p.kind = PointerPlan::kText;
      } else if (type.isData()) {
        p.kind = PointerPlan::kData;
      } else if (type.isStruct()) {
        p.kind = PointerPlan::kStruct;
        p.sub = For(type.asStruct());
      } else if (type.isList()) {
        auto element = type.asList().getElementType();
        KJ_ASSERT(!(element.isList() || element.isData()),
                  "the event schema gained a list of lists: extend the plan");
        if (element.isStruct()) {  // the sealed fields
          p.kind = PointerPlan::kStructList;
          p.sub = For(element.asStruct());
        } else {
          p.kind = element.isText() ? PointerPlan::kTextList : PointerPlan::kOtherList;
        }
      } else if (type.isAnyPointer() || type.isInterface()) {
        p.kind = PointerPlan::kOtherList;
      } else {
        continue;  // in the data section: nothing to check
      }
      uint16_t d = proto.getDiscriminantValue();
      if (d == capnp::schema::Field::NO_DISCRIMINANT) {
        plan->common.push_back(p);
      } else {
        if (plan->members.size() <= d) plan->members.resize(d + 1);
        plan->members[d].push_back(p);
      }
    }
    for (auto field : schema.getUnionFields()) {
      uint16_t d = field.getProto().getDiscriminantValue();
      if (plan->known.size() <= d) plan->known.resize(d + 1, false);
      if (plan->members.size() <= d) plan->members.resize(d + 1);
      plan->known[d] = true;
    }
    return plan;
  }

 private:
  std::vector<std::pair<uint64_t, std::unique_ptr<StructPlan>>> plans_;
};

const StructPlan& EventPlan() {
  static PlanBuilder builder;
  static const StructPlan* plan = builder.For(capnp::Schema::from<schema::Event>());
  return *plan;
}

void CheckPointers(const std::vector<PointerPlan>& fields,
                   capnp::List<capnp::AnyPointer>::Reader ptrs, int depth);

void CheckStruct(const StructPlan& plan, capnp::AnyStruct::Reader s, int depth) {
  KJ_REQUIRE(depth < 16, "event nested too deeply");
  auto ptrs = s.getPointerSection();
  CheckPointers(plan.common, ptrs, depth);
  if (plan.has_union) {
    auto data = s.getDataSection();
    uint16_t d = 0;
    size_t at = plan.discriminant_offset * 2;
    if (at + 2 <= data.size()) d = static_cast<uint16_t>(data[at] | data[at + 1] << 8);
    KJ_REQUIRE(d < plan.known.size() && plan.known[d], "unknown union member");
    CheckPointers(plan.members[d], ptrs, depth);
  }
}

void CheckPointers(const std::vector<PointerPlan>& fields,
                   capnp::List<capnp::AnyPointer>::Reader ptrs, int depth) {
  for (const auto& f : fields) {
    if (f.index >= ptrs.size()) continue;  // an older writer: the default
    auto p = ptrs[f.index];
    if (p.isNull()) continue;
    switch (f.kind) {
      case PointerPlan::kText:
        p.getAs<capnp::Text>();
        break;
      case PointerPlan::kData:
        p.getAs<capnp::Data>();
        break;
      case PointerPlan::kStruct:
        CheckStruct(*f.sub, p.getAs<capnp::AnyStruct>(), depth + 1);
        break;
      case PointerPlan::kTextList:
        for (auto t : p.getAs<capnp::List<capnp::Text>>()) (void)t;
        break;
      case PointerPlan::kStructList: {
        // The typed reader takes only a list of structs: any other
        // element size would throw in a reader, so it throws here.
        auto list = p.getAs<capnp::AnyList>();
        KJ_REQUIRE(list.getElementSize() == capnp::ElementSize::INLINE_COMPOSITE,
                   "a list of structs holds another kind of element");
        for (auto s : list.as<capnp::List<capnp::AnyStruct>>()) CheckStruct(*f.sub, s, depth + 1);
        break;
      }
      case PointerPlan::kOtherList:
        p.targetSize();
        break;
    }
  }
}

}  // namespace

namespace {

Status CheckSize(std::string_view bytes) {
  if (bytes.size() > format::kMaxEventBytes) {
    return Status::Corruption("event value of " + std::to_string(bytes.size()) +
                              " bytes exceeds the limit");
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::Corruption("event value of " + std::to_string(bytes.size()) +
                              " bytes is not a whole number of words");
  }
  return Status::Ok();
}

// Bounds the work a hostile message can cause: no more words traversed than
// it holds (plus slack for empty structs), no deep nesting.
capnp::ReaderOptions BoundedOptions(size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words * 2 + 64;
  options.nestingLimit = 16;
  return options;
}

// The root of a framed message, after the checks `check` asks for. Throws
// kj::Exception on anything malformed: call inside a try.
schema::Event::Reader CheckedRoot(capnp::FlatArrayMessageReader& reader, const capnp::word* end,
                                  DecodeCheck check) {
  KJ_REQUIRE(reader.getEnd() == end, "event value has trailing bytes");
  auto root = reader.getRoot<schema::Event>();
  if (check == DecodeCheck::kFull) CheckEventFields(root);
  return root;
}

Status Undecodable(const kj::Exception& e) {
  return Status::Corruption(std::string("undecodable event: ") + e.getDescription().cStr());
}

}  // namespace

void CheckEventFields(schema::Event::Reader event) {
  CheckStruct(EventPlan(), capnp::AnyStruct::Reader(event), 0);
}

Result<std::shared_ptr<const DecodedEvent>> DecodedEvent::Decode(std::string_view bytes) {
  OKR_RETURN_IF_ERROR(CheckSize(bytes));
  assert(!bytes.empty() && bytes.size() % sizeof(capnp::word) == 0);
  std::shared_ptr<DecodedEvent> decoded(new DecodedEvent());
  decoded->words_ = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(decoded->words_.begin(), bytes.data(), bytes.size());
  try {
    // The full check spends the reader's traversal budget as one walk of
    // the event does, and the reader is handed out: its budget covers the
    // check and two more walks (render it and fold it) without Cap'n Proto
    // throwing mid-way.
    capnp::ReaderOptions options = BoundedOptions(decoded->words_.size());
    options.traversalLimitInWords *= 3;
    decoded->reader_ =
        std::make_unique<capnp::FlatArrayMessageReader>(decoded->words_.asPtr(), options);
    decoded->root_ = CheckedRoot(*decoded->reader_, decoded->words_.end(), DecodeCheck::kFull);
  } catch (const kj::Exception& e) {
    return Undecodable(e);
  }
  return std::shared_ptr<const DecodedEvent>(std::move(decoded));
}

Result<schema::Event::Reader> EventScratch::Read(std::string_view bytes, DecodeCheck check) {
  OKR_RETURN_IF_ERROR(CheckSize(bytes));
  size_t words = bytes.size() / sizeof(capnp::word);
  reader_.reset();  // it points into words_
  if (words_.size() < words)
    words_ = kj::heapArray<capnp::word>(std::max(words, words_.size() * 2));
  assert(words > 0 && words_.size() >= words && "CheckSize admits only whole, non-empty words");
  std::memcpy(words_.begin(), bytes.data(), bytes.size());
  auto view = words_.slice(0, words);
  try {
    reader_.emplace(view, BoundedOptions(words));
    return CheckedRoot(*reader_, view.end(), check);
  } catch (const kj::Exception& e) {
    reader_.reset();
    return Undecodable(e);
  }
}

std::string EncodeMessage(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asChars();
  return std::string(bytes.begin(), bytes.size());
}

namespace {

using W = schema::Event::Which;

// Every union member of schema::Event and its type name as the log and the
// API write it (docs/FORMAT.md); grouped by entity, not by ordinal.
constexpr Named<W> kEventTypeNames[] = {
    {W::UNIT_CREATED, "unit.created"},
    {W::UNIT_RENAMED, "unit.renamed"},
    {W::UNIT_MOVED, "unit.moved"},
    {W::UNIT_RETIRED, "unit.retired"},
    {W::UNIT_EMAIL_CHANGED, "unit.email_changed"},
    {W::CYCLE_CREATED, "cycle.created"},
    {W::CYCLE_CHANGED, "cycle.changed"},
    {W::CYCLE_CLOSED, "cycle.closed"},
    {W::CYCLE_REOPENED, "cycle.reopened"},
    {W::OBJECTIVE_CREATED, "objective.created"},
    {W::OBJECTIVE_RETITLED, "objective.retitled"},
    {W::OBJECTIVE_DESCRIBED, "objective.described"},
    {W::OBJECTIVE_OWNER_CHANGED, "objective.owner_changed"},
    {W::OBJECTIVE_ALIGNMENT_SET, "objective.alignment_set"},
    {W::OBJECTIVE_ARCHIVED, "objective.archived"},
    {W::OBJECTIVE_RESTORED, "objective.restored"},
    {W::KEY_RESULT_ADDED, "key_result.added"},
    {W::KEY_RESULT_TITLE_CHANGED, "key_result.title_changed"},
    {W::KEY_RESULT_START_CHANGED, "key_result.start_changed"},
    {W::KEY_RESULT_TARGET_CHANGED, "key_result.target_changed"},
    {W::KEY_RESULT_UNIT_CHANGED, "key_result.unit_changed"},
    {W::KEY_RESULT_WEIGHT_CHANGED, "key_result.weight_changed"},
    {W::KEY_RESULT_OWNER_CHANGED, "key_result.owner_changed"},
    {W::KEY_RESULT_METRIC_CHANGED, "key_result.metric_changed"},
    {W::KEY_RESULT_REMOVED, "key_result.removed"},
    {W::CHECK_IN_RECORDED, "check_in.recorded"},
    {W::CHECK_IN_CORRECTED, "check_in.corrected"},
    {W::COMMENT_ADDED, "comment.added"},
    {W::OBJECTIVE_REVIEWED, "objective.reviewed"},
    {W::LOG_SIGNING_KEY, "log.signing_key"},
    {W::WEBHOOK_REGISTERED, "webhook.registered"},
    {W::WEBHOOK_REMOVED, "webhook.removed"},
    {W::WEBHOOK_DISABLED, "webhook.disabled"},
    {W::SUBJECT_ERASED, "subject.erased"},
};

// A row for every discriminant from 0 to subjectErased, the last today;
// a new union member must extend kLast and this table together.
constexpr bool NamesEveryEventType() {
  constexpr auto kLast = static_cast<uint16_t>(W::SUBJECT_ERASED);
  if (std::size(kEventTypeNames) != kLast + 1u) return false;
  for (uint16_t w = 0; w <= kLast; ++w) {
    if (NameIn(kEventTypeNames, static_cast<W>(w), nullptr) == nullptr) return false;
  }
  return true;
}
static_assert(NamesEveryEventType());

}  // namespace

std::optional<schema::Event::Which> EventTypeNamed(std::string_view name) {
  const Named<schema::Event::Which>* row = RowNamed(kEventTypeNames, name);
  if (row == nullptr) return std::nullopt;
  return row->value;
}

std::string_view CreatedId(schema::Event::Reader event) {
  using W = schema::Event::Which;
  auto view = [](capnp::Text::Reader t) { return std::string_view(t.begin(), t.size()); };
  switch (event.which()) {
    case W::UNIT_CREATED:
    case W::CYCLE_CREATED:
    case W::OBJECTIVE_CREATED:
    case W::KEY_RESULT_ADDED:
      return view(event.getEntity());
    case W::CHECK_IN_RECORDED:
      return view(event.getCheckInRecorded().getCheckIn());
    default:
      return {};
  }
}

const char* EventTypeName(schema::Event::Which which) {
  return NameIn(kEventTypeNames, which, "unknown");
}

}  // namespace okr
