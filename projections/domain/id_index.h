// The ids a projection knows, in two indexes (docs/DECISIONS.md, "A compact
// fold" and "Check-ins by handle"):
//  - IdIndex: units, cycles, objectives and key results, with their kind and
//    entity, in one flat open-addressing table — 16 bytes a slot, no
//    allocation per id, and small enough to stay in cache while the fold
//    looks up every event's entity;
//  - CheckInIndex: the key result of each check-in id, by the id's interned
//    handle, because a big log holds one check-in id per event and the
//    intern table already hashes it.
#pragma once

#include <cassert>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "projections/domain/interned.h"

namespace okr {

enum class EntityKind : uint8_t { kUnit, kCycle, kObjective, kKeyResult, kCheckIn };

class IdIndex {
 public:
  struct Slot {
    void* entity = nullptr;  // nullptr: a free slot
    Interned id;
    uint32_t tag_and_kind = 0;  // the hash's high 24 bits, then the kind
    EntityKind kind() const { return static_cast<EntityKind>(tag_and_kind & 0xff); }
  };

  // The slot of `id`, or nullptr when the index does not hold it.
  const Slot* Find(std::string_view id) const {
    if (slots_.empty()) return nullptr;
    const uint64_t hash = HashText(id);
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.entity == nullptr) return nullptr;
      if ((s.tag_and_kind >> 8) == Tag(hash) && s.id == id) return &s;
    }
  }

  // Adds `id`, which the index must not hold yet. `entity` is not null.
  void Insert(Interned id, EntityKind kind, void* entity) {
    assert(entity != nullptr && Find(id) == nullptr);
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
    const uint64_t hash = HashText(id);
    Place(Slot{entity, id, (Tag(hash) << 8) | static_cast<uint32_t>(kind)}, hash);
    ++size_;
  }

  size_t size() const { return size_; }
  void clear() {
    slots_.clear();
    size_ = 0;
  }

 private:
  static uint32_t Tag(uint64_t hash) { return static_cast<uint32_t>(hash >> 40); }

  void Place(const Slot& slot, uint64_t hash) {
    const size_t mask = slots_.size() - 1;
    size_t i = hash & mask;
    while (slots_[i].entity != nullptr) i = (i + 1) & mask;
    slots_[i] = slot;
  }

  // Doubles the slots (at most three quarters full).
  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    for (const Slot& s : old) {
      if (s.entity != nullptr) Place(s, HashText(s.id));
    }
  }

  std::vector<Slot> slots_;  // a power of two long
  size_t size_ = 0;
};

// CheckInIndex: a check-in id's owner (its key result), found by the id's
// interned handle: a flat array beside the process-wide intern table, which
// already found the handle by hashing the text. 8 bytes a handle, in fixed
// chunks allocated when a handle of theirs is inserted, so growing copies
// and re-hashes nothing. Handles are dense in the order texts were first
// interned, so the chunks of a projection's check-ins are mostly full.
class CheckInIndex {
 public:
  CheckInIndex() = default;
  CheckInIndex(CheckInIndex&&) = default;
  CheckInIndex& operator=(CheckInIndex&&) = default;

  // The owner of check-in `id`, or nullptr when the index does not hold it.
  void* Find(Interned id) const {
    const size_t chunk = id.handle() >> kChunkBits;
    if (chunk >= chunks_.size() || chunks_[chunk] == nullptr) return nullptr;
    return chunks_[chunk][id.handle() & kChunkMask];
  }

  // Adds check-in `id` (not empty), which the index must not hold yet.
  void Insert(Interned id, void* owner) {
    assert(!id.empty() && owner != nullptr && Find(id) == nullptr);
    const size_t chunk = id.handle() >> kChunkBits;
    if (chunk >= chunks_.size()) chunks_.resize(chunk + 1);
    if (chunks_[chunk] == nullptr) chunks_[chunk] = std::make_unique<void*[]>(kChunkSize);
    chunks_[chunk][id.handle() & kChunkMask] = owner;
    ++size_;
  }

  size_t size() const { return size_; }
  void clear() {
    chunks_.clear();
    size_ = 0;
  }

 private:
  static constexpr unsigned kChunkBits = 14;  // 128 KiB a chunk
  static constexpr size_t kChunkSize = size_t{1} << kChunkBits;
  static constexpr uint32_t kChunkMask = kChunkSize - 1;

  std::vector<std::unique_ptr<void*[]>> chunks_;  // by handle >> kChunkBits; null: none there
  size_t size_ = 0;
};

}  // namespace okr
