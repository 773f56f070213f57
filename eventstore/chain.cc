#include "eventstore/chain.h"

#include <cassert>
#include <cstring>

namespace okr {

ChainChecker::ChainChecker(ChainSource source, const ChainResume& resume)
    : source_(source), prev_(resume.prev_hash), last_time_(resume.recorded_at_us) {
  report_.events = resume.after_seq;
  report_.head_hash = resume.prev_hash;
  versions_.first_version = EntityVersions::kUnknown;
}

bool ChainChecker::Fail(uint64_t seq, std::string problem) {
  assert(seq > 0 && "seqs start at 1");
  if (!report_.ok) return false;  // the first problem stands
  report_.ok = false;
  report_.first_bad_seq = seq;
  report_.problem = std::move(problem);
  return false;
}

namespace {

// The id's hash folded to 32 bits, odd: never 0, which marks a free slot.
uint32_t TagOf(std::string_view entity) {
  const uint64_t hash = std::hash<std::string_view>{}(entity);
  return static_cast<uint32_t>(hash ^ (hash >> 32)) | 1;
}

}  // namespace

std::string_view ChainChecker::EntityVersions::IdOf(const Slot& s) const {
  if (s.length <= kInlineBytes) return std::string_view(s.id, s.length);
  uint64_t offset = 0;
  std::memcpy(&offset, s.id, sizeof(offset));
  return std::string_view(long_ids_).substr(offset, s.length);
}

uint32_t ChainChecker::EntityVersions::Prepare(std::string_view entity) {
  if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
  const uint32_t tag = TagOf(entity);
  __builtin_prefetch(&slots_[HomeOf(tag)]);
  return tag;
}

uint64_t& ChainChecker::EntityVersions::Of(std::string_view entity, uint32_t tag) {
  assert(tag == TagOf(entity) && (size_ + 1) * 4 <= slots_.size() * 3 && "Prepare came first");
  const size_t mask = slots_.size() - 1;
  size_t i = HomeOf(tag);
  for (; slots_[i].tag != 0; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.tag == tag && s.length == entity.size() && IdOf(s) == entity) return slots_[i].version;
  }
  Slot& s = slots_[i];
  s.version = first_version;
  s.tag = tag;
  s.length = static_cast<uint32_t>(entity.size());
  if (entity.size() <= kInlineBytes) {
    std::memcpy(s.id, entity.data(), entity.size());
  } else {
    const uint64_t offset = long_ids_.size();
    std::memcpy(s.id, &offset, sizeof(offset));
    long_ids_.append(entity);
  }
  ++size_;
  return s.version;
}

void ChainChecker::EntityVersions::Reserve(size_t entities) {
  size_t slots = 1024;
  while (slots * 3 < (entities + 1) * 4) slots *= 2;
  if (slots > slots_.size()) Rehash(slots);
}

// Places every entity again by its tag, in `slots` slots.
void ChainChecker::EntityVersions::Rehash(size_t slots) {
  assert(slots >= 1024 && (slots & (slots - 1)) == 0 && size_ * 4 <= slots * 3);
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(slots, Slot{});
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.tag == 0) continue;
    size_t i = HomeOf(s.tag);
    while (slots_[i].tag != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

bool ChainChecker::Add(uint64_t seq, std::string_view bytes) {
  if (!report_.ok) return false;
  const bool stored = source_ == ChainSource::kStored;
  const uint64_t expected = next_seq();
  if (seq != expected) {
    if (seq < expected) return Fail(expected, "seq out of order");
    return Fail(expected,
                stored ? "event missing (next stored seq is " + std::to_string(seq) + ")"
                       : "event missing (the next one served is seq " + std::to_string(seq) + ")");
  }
  auto decoded = scratch_.Read(bytes, DecodeCheck::kFull);
  if (!decoded.ok()) return Fail(seq, decoded.status().message());
  auto ev = *decoded;
  if (ev.getSeq() != seq) {
    return Fail(seq, (stored ? "stored under seq " : "served as seq ") + std::to_string(seq) +
                         " but says seq " + std::to_string(ev.getSeq()));
  }
  if (!NamesAsPrev(ev, prev_)) {
    return Fail(seq, "prevHash does not match the previous event");
  }
  if (ev.getRecordedAt() < last_time_) return Fail(seq, "recordedAt goes back in time");
  const auto entity_text = ev.getEntity();
  const std::string_view entity(entity_text.begin(), entity_text.size());
  // The entity's slot is fetched while the value is hashed.
  const uint32_t tag = versions_.Prepare(entity);
  const Hash hash = Sha256(bytes);
  uint64_t& version = versions_.Of(entity, tag);
  if (version == EntityVersions::kUnknown) {
    if (ev.getVersion() == 0) return Fail(seq, "entity version 0");
  } else if (ev.getVersion() != version + 1) {
    return Fail(seq, "entity version " + std::to_string(ev.getVersion()) + " follows " +
                         std::to_string(version));
  }
  version = ev.getVersion();
  last_time_ = ev.getRecordedAt();
  prev_ = hash;
  report_.events = seq;
  report_.head_hash = prev_;
  assert(report_.ok && next_seq() == seq + 1);
  return true;
}

}  // namespace okr
