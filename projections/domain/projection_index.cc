// The projection's indexes: what it finds by id, and the lists it derives
// from its entities (RebuildIndex makes them again for a copy or a load).
#include <algorithm>
#include <cassert>
#include <string_view>

#include "projections/domain/projection.h"

namespace okr {

std::optional<EntityKind> Projection::KindOf(std::string_view id) const {
  if (const IdIndex::Slot* slot = index_.Find(id)) return slot->kind();
  if (KeyResultOfCheckIn(id) != nullptr) return EntityKind::kCheckIn;
  return std::nullopt;
}

const KeyResult* Projection::KeyResultOfCheckIn(std::string_view check_in) const {
  // Find interns nothing: an id a client made up was never interned, so
  // it is no check-in's.
  const std::optional<Interned> id = Interned::Find(check_in);
  if (!id) return nullptr;
  return static_cast<const KeyResult*>(check_in_index_.Find(*id));
}

// Ids are unique across kinds (the writer refuses a reused one), so no
// Insert below finds its id already there. The key results' check-ins are
// pointed at this projection's arena (a copy's are at the original's).
void Projection::RebuildIndex() {
  index_.clear();
  check_in_index_.clear();
  for (auto& [id, e] : units_) index_.Insert(Interned::Of(id), EntityKind::kUnit, &e);
  for (auto& [id, e] : cycles_) index_.Insert(Interned::Of(id), EntityKind::kCycle, &e);
  for (auto& [id, e] : objectives_) index_.Insert(Interned::Of(id), EntityKind::kObjective, &e);
  for (auto& [id, kr] : key_results_) {
    index_.Insert(Interned::Of(id), EntityKind::kKeyResult, &kr);
    kr.check_ins.Rebind(check_in_arena_.get());
    for (const CheckIn& ci : kr.check_ins) check_in_index_.Insert(ci.id, &kr);
  }
  aligned_to_.clear();
  of_cycle_.clear();
  of_owner_.clear();
  for (auto& [id, o] : objectives_) {
    for (const auto& revision : o.revisions) {
      NoteAlignment(o, revision.fields.parents, /*last_only=*/true);
      NoteOwner(o, revision.fields.owner);
    }
    of_cycle_[Interned::Of(o.current().cycle).handle()].push_back(&o);
    o.key_result_links.of.clear();
    for (const std::string& kr : o.key_results)
      o.key_result_links.of.push_back(&key_results_.at(kr));
  }
}

void Projection::NoteAlignment(const Objective& o, const std::vector<std::string>& parents,
                               bool last_only) {
  for (const std::string& parent : parents) {
    auto& children = aligned_to_[Interned::Of(parent).handle()];
    const bool known = last_only
                           ? !children.empty() && children.back() == &o
                           : std::find(children.begin(), children.end(), &o) != children.end();
    if (!known) children.push_back(&o);
  }
}

void Projection::NoteOwner(const Objective& o, const std::string& owner) {
  auto& owned = of_owner_[Interned::Of(owner).handle()];
  if (owned.empty() || owned.back() != &o) owned.push_back(&o);
}

namespace {

// The list `lists` keeps under the interned `text`; empty when none.
const std::vector<const Objective*>& ListUnder(
    const std::unordered_map<uint32_t, std::vector<const Objective*>>& lists,
    std::string_view text) {
  static const std::vector<const Objective*> kNone;
  const auto handle = Interned::Find(text);
  auto it = handle ? lists.find(handle->handle()) : lists.end();
  return it == lists.end() ? kNone : it->second;
}

}  // namespace

const std::vector<const Objective*>& Projection::ObjectivesEverAlignedTo(
    std::string_view parent) const {
  return ListUnder(aligned_to_, parent);
}

const std::vector<const Objective*>& Projection::ObjectivesOfCycle(std::string_view cycle) const {
  return ListUnder(of_cycle_, cycle);
}

const std::vector<const Objective*>& Projection::ObjectivesEverOwnedBy(
    std::string_view owner) const {
  return ListUnder(of_owner_, owner);
}

const std::vector<uint64_t>* Projection::EventSeqs(std::string_view id) const {
  const IdIndex::Slot* slot = index_.Find(id);
  if (slot == nullptr) return nullptr;
  switch (slot->kind()) {
    case EntityKind::kUnit:
      return &static_cast<const Unit*>(slot->entity)->event_seqs;
    case EntityKind::kCycle:
      return &static_cast<const Cycle*>(slot->entity)->event_seqs;
    case EntityKind::kObjective:
      return &static_cast<const Objective*>(slot->entity)->event_seqs;
    case EntityKind::kKeyResult:
      return &static_cast<const KeyResult*>(slot->entity)->event_seqs;
    case EntityKind::kCheckIn:
      assert(false && "check-ins are in check_in_index_, not index_");
      break;
  }
  return nullptr;
}

uint64_t Projection::Version(std::string_view id) const {
  const auto* seqs = EventSeqs(id);
  return seqs ? seqs->size() : 0;
}

}  // namespace okr
