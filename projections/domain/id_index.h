// IdIndex: every id a projection knows, with its kind and entity, in one
// flat open-addressing table — 16 bytes a slot and no allocation per id,
// because a big log holds one check-in id per event (docs/DECISIONS.md,
// "A compact fold").
#pragma once

#include <cassert>
#include <cstdint>
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

}  // namespace okr
