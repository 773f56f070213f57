// The View: the projection as the API shows it, as of any seq — rows of
// units, cycles, objectives and key results, their progress, the cascade
// (cascade.cc) and lint (lint.cc).
//
// A View answers every state read for one point of the log (`as_of`) and,
// for key-result values, one valid time (`at`). It memoises progress, so
// one View serves one request; it borrows the Projection, which must not
// change while the View lives.
#pragma once

#include <nlohmann/json.hpp>

#include <cassert>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "projections/domain/projection.h"
#include "projections/read/json_out.h"
#include "projections/read/pace.h"

namespace okr {

// --- Rows: what an answer shows of one entity at a point ---
//
// A row either copies what it shows out of the projection (Hold::kCopied),
// so a handler fills rows under the projection's lock, releases it, and
// renders JSON (the Write* and Render* functions) without it; or borrows
// the projection's fields and texts (Hold::kBorrowed), for a row written
// at once while the lock is held — the cascade writes each row before it
// may pause (CascadePlan::Write), so nothing borrowed outlives the lock.
// Both are built by the same View function and written by the same Write*.
enum class Hold { kCopied, kBorrowed };
template <typename T, Hold H>
using Held = std::conditional_t<H == Hold::kCopied, T, const T&>;
template <Hold H>
using HeldText = std::conditional_t<H == Hold::kCopied, std::string, std::string_view>;

template <Hold H = Hold::kCopied>
struct BasicUnitRow {
  HeldText<H> id;
  Held<UnitFields, H> fields;
  uint64_t version = 0;
};
template <Hold H = Hold::kCopied>
struct BasicCycleRow {
  HeldText<H> id;
  Held<CycleFields, H> fields;
  uint64_t version = 0;
};
template <Hold H = Hold::kCopied>
struct BasicKeyResultRow {
  HeldText<H> id;
  Held<KeyResultFields, H> fields;
  HeldText<H> owner;  // effective: the objective's when the key result has none
  double current = 0;
  double progress = 0;
  size_t check_in_count = 0;
  std::optional<CheckIn> last_check_in;  // value as corrected (its texts are interned)
  uint64_t version = 0;
  Pace pace;  // of `progress` in its objective's cycle, at View::PaceAtUs()
};
template <Hold H = Hold::kCopied>
struct BasicObjectiveRow {
  HeldText<H> id;
  Held<ObjectiveFields, H> fields;
  double progress = 0;
  std::vector<BasicKeyResultRow<H>> key_results;  // active ones, creation order
  uint64_t version = 0;
  Pace pace;  // of `progress` in its cycle, at View::PaceAtUs()
};
using UnitRow = BasicUnitRow<>;
using CycleRow = BasicCycleRow<>;
using KeyResultRow = BasicKeyResultRow<>;
using ObjectiveRow = BasicObjectiveRow<>;

// Each row as the API answers it (GET /v1/units/{id} and so on), written
// to a JsonOut; Render* gives the same as a document. Pure: they read only
// the row, so a copied row is written without the projection's lock.
template <Hold H>
void WriteUnit(JsonOut& out, const BasicUnitRow<H>& row);
template <Hold H>
void WriteCycle(JsonOut& out, const BasicCycleRow<H>& row);
void WriteCheckIn(JsonOut& out, const CheckIn& check_in);
// {"expected": <0..1>, "status": "on_track"|"at_risk"|"off_track"|"none"}.
void WritePace(JsonOut& out, const Pace& pace);
// What a write's answer adds to the key result it wrote (POST
// /v1/key-results/{id}/check-ins and the other writes of key results):
// the check-in recorded, if it recorded one, and the write's seq.
struct KeyResultWrite {
  std::optional<CheckIn> check_in;
  uint64_t seq = 0;
};
template <Hold H>
void WriteKeyResult(JsonOut& out, const BasicKeyResultRow<H>& row,
                    const KeyResultWrite* write = nullptr);
template <Hold H>
void WriteObjective(JsonOut& out, const BasicObjectiveRow<H>& row);
nlohmann::json RenderUnit(const UnitRow& row);
nlohmann::json RenderCycle(const CycleRow& row);
nlohmann::json RenderCheckIn(const CheckIn& check_in);
nlohmann::json RenderPace(const Pace& pace);
nlohmann::json RenderKeyResult(const KeyResultRow& row);
nlohmann::json RenderObjective(const ObjectiveRow& row);

struct ObjectiveFilter {
  std::string cycle;  // empty: every cycle
  std::string owner;  // empty: every owner
  bool include_archived = false;
  // True for an objective with fields `f` that the filter lets through.
  bool Keeps(const ObjectiveFields& f) const {
    return (include_archived || !f.archived) && (cycle.empty() || f.cycle == cycle) &&
           (owner.empty() || f.owner == owner);
  }
};

// The objectives `filter` can keep, found through the projection's list
// of its cycle's objectives or of those its owner ever owned (the shorter),
// in id order, each once; nullopt when that list holds a sixteenth or more
// of all objectives, where walking every objective (kept in id order)
// costs less than sorting it. A superset at any seq: the caller still
// checks each one's fields at its seq.
std::optional<std::vector<const Objective*>> ListedObjectives(const Projection& p,
                                                              const ObjectiveFilter& filter);

// A table keyed by an entity's address, for what a View or a plan works
// out per request about thousands of entities: open addressing in one
// array (no allocation per entry; at most half full, so a lookup is
// mostly one probe), where std::unordered_map allocated a node for each.
// A pointer returned stays valid until the next TryEmplace.
template <typename V>
class ByAddress {
 public:
  // The value kept for `key` (not null), and true when it was added now
  // (value-initialised).
  std::pair<V*, bool> TryEmplace(const void* key) {
    assert(key != nullptr);
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    Slot& s = slots_[Probe(key)];
    if (s.key == key) return {&s.value, false};
    s.key = key;
    ++size_;
    return {&s.value, true};
  }
  // Room for `n` keys without growing.
  void Reserve(size_t n) {
    while (n * 2 > slots_.size()) Grow();
  }
  // The value kept for `key`; nullptr when none is.
  const V* Find(const void* key) const {
    assert(key != nullptr);  // a free slot's key
    if (slots_.empty()) return nullptr;
    const Slot& s = slots_[Probe(key)];
    return s.key == key ? &s.value : nullptr;
  }

 private:
  struct Slot {
    const void* key = nullptr;  // nullptr: free
    V value{};
  };
  // The slot holding `key`, or the free one where it would go.
  size_t Probe(const void* key) const {
    const size_t mask = slots_.size() - 1;
    // Entities are at least 16 bytes apart: the low bits say little.
    size_t i = (reinterpret_cast<uintptr_t>(key) >> 4) * 0x9E3779B97F4A7C15ULL >> 20 & mask;
    while (slots_[i].key != nullptr && slots_[i].key != key) i = (i + 1) & mask;
    return i;
  }
  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    for (Slot& s : old) {
      if (s.key != nullptr) slots_[Probe(s.key)] = std::move(s);
    }
  }

  std::vector<Slot> slots_;  // a power of two long
  size_t size_ = 0;
};

class View {
 public:
  // `now_us` is the clock lint judges staleness by. Every entity passed to
  // the View's functions must be one of `projection`'s (progress is
  // memoised by its address).
  View(const Projection& projection, uint64_t as_of, int64_t at_us, int64_t now_us);

  uint64_t as_of() const { return as_of_; }
  const Projection& projection() const { return p_; }
  // The instant pace is judged at: `at_us` when the read gave one
  // (INT64_MAX means it did not), else the recorded time of the as_of
  // seq. Never the wall clock: a state read must be a function of its
  // path, parameters and seq alone (the response cache relies on it).
  int64_t PaceAtUs() const;

  // Entities as they stood at as_of; nullptr when they did not exist yet.
  const UnitFields* UnitAt(const std::string& id) const;
  const CycleFields* CycleAt(const std::string& id) const;
  const ObjectiveFields* ObjectiveAt(const std::string& id) const;
  const KeyResultFields* KeyResultAt(const std::string& id) const;

  // Rows of entities that exist at as_of (FieldsAt non-null); a borrowed
  // one lives no longer than the projection's lock the caller holds.
  template <Hold H = Hold::kCopied>
  BasicUnitRow<H> UnitRowOf(const Unit& unit) const;
  template <Hold H = Hold::kCopied>
  BasicCycleRow<H> CycleRowOf(const Cycle& cycle) const;
  template <Hold H = Hold::kCopied>
  BasicObjectiveRow<H> ObjectiveRowOf(const Objective& objective);
  template <Hold H = Hold::kCopied>
  BasicKeyResultRow<H> KeyResultRowOf(const KeyResult& kr);

  // The same, rendered (Render*(…RowOf(…))).
  nlohmann::json UnitJson(const Unit& unit) const;
  nlohmann::json CycleJson(const Cycle& cycle) const;
  nlohmann::json ObjectiveJson(const Objective& objective);
  nlohmann::json KeyResultJson(const KeyResult& kr);
  nlohmann::json CheckInJson(const CheckIn& check_in) const;

  // Objectives matching `filter`, by id.
  std::vector<const Objective*> Objectives(const ObjectiveFilter& filter) const;
  // Active key results of an objective, in creation order.
  std::vector<const KeyResult*> KeyResultsOf(const Objective& objective) const;

  double KeyResultProgress(const KeyResult& kr);
  double ObjectiveProgress(const Objective& objective);
  // The pace of `progress` in cycle `cycle_id` at PaceAtUs(); no pace
  // (kNone, expected 0) when the cycle did not exist at as_of. The last
  // cycle's span is kept, so rows of one cycle parse its dates once.
  Pace PaceIn(const std::string& cycle_id, std::optional<double> progress) const;
  // The key result's owner, or its objective's when it has none.
  std::string EffectiveOwner(const KeyResultFields& f) const;

  // {"nodes":[{"unit","objectives","children","progress","pace"}],"pace"}
  // for `cycle` (empty: every cycle) from `root` (empty: every top-level
  // unit): CascadePlan's answer, as a document.
  Result<nlohmann::json> Cascade(const std::string& cycle, const std::string& root);
  // {"as_of_seq"?, "findings":[{entity, message, rule}]} for `cycle`
  // (empty: all cycles), written as the objectives are walked. Calls
  // `pause` (when given) after each objective's findings, where the caller
  // may let go of the projection as CascadePlan::Write allows.
  void WriteLint(JsonOut& out, const std::string& cycle, std::optional<uint64_t> as_of_seq,
                 const std::function<void()>& pause = nullptr);
  // The same, without as_of_seq, as a document.
  nlohmann::json Lint(const std::string& cycle);

 private:
  // The objectives aligned to `objective` at as_of (not archived), by id.
  std::vector<const Objective*> AlignedChildren(const Objective& objective) const;
  // KeyResultRowOf with the fields of the key result's objective at as_of
  // (null: it did not exist), which its owner and pace are read from.
  template <Hold H>
  BasicKeyResultRow<H> KeyResultRowIn(const KeyResult& kr, const ObjectiveFields* objective);
  double ObjectiveProgressGuarded(const Objective& objective, int depth);

  // lint.cc: the findings on one objective (not the per-owner count) and
  // on one of its key results in `cycle`.
  void LintObjective(const Objective& objective, JsonOut& findings);
  void LintKeyResult(const KeyResult& kr, const CycleFields& cycle, JsonOut& findings) const;

  const Projection& p_;
  uint64_t as_of_;
  int64_t at_us_;
  int64_t now_us_;
  // Memoised progress, by entity: callers pass entities of p_, whose
  // addresses are stable and unique (a pointer hashes and compares in one
  // step, and keeps no copy of the id; the projection numbers no entity
  // densely, so the memo is a table by address, not a vector by number).
  // A key result's is kept with the value it came from and the check-in
  // that gave it (an index into check_ins, which only grow: it holds
  // across a pause where a pointer might not), so its row reads the value
  // once.
  struct KeyResultValue {
    double value = 0;
    double progress = 0;
    std::optional<size_t> check_in;  // none: no check-in, value is start
  };
  KeyResultValue KeyResultValueOf(const KeyResult& kr);
  ByAddress<KeyResultValue> kr_values_;
  ByAddress<double> objective_progress_;
  // PaceIn's inputs, found once: the instant (PaceAtUs) and the span of
  // the cycle last asked for (none: it did not exist at as_of). Values,
  // not pointers, so they hold across a paused reader's pauses.
  mutable std::optional<int64_t> pace_at_us_;
  mutable std::string pace_cycle_id_;
  mutable std::optional<std::optional<CycleSpan>> pace_span_;
};

// The cascade (GET /v1/cascade): which units and objectives an answer
// shows, found once, then written from the projection as it is walked —
// no row of it is kept, so a whole organisation costs what one row does.
class CascadePlan {
 public:
  // For `cycle` (empty: every cycle), from `root` (empty: every top-level
  // unit), down to `depth` levels below it (none: all). kNotFound for a
  // cycle or root that did not exist at the View's as_of.
  static Result<CascadePlan> Make(const View& v, const std::string& cycle, const std::string& root,
                                  std::optional<int> depth);
  // How many objectives the answer shows (those below `depth` only count).
  size_t shown_objectives() const { return shown_; }
  // Writes {"as_of_seq"?, "nodes": [...], "pace": {"at", "expected"}}
  // with `v`, a View at the same point as Make's. Calls `pause` (when
  // given) after each objective and each unit written: the caller may let
  // go of the projection there and take it back, provided entities keep
  // their addresses meanwhile (the plan holds pointers to them, and reads
  // their fields again each time).
  void Write(View& v, JsonOut& out, std::optional<uint64_t> as_of_seq,
             const std::function<void()>& pause = nullptr) const;

 private:
  struct Counted {
    double sum = 0;         // of the objectives' progress, own first, then each child's
    size_t objectives = 0;  // in the subtree
  };
  // A unit active at as_of, with what the walks need of it (no fields:
  // they are read again after each pause).
  struct Node {
    const Unit* unit;
    std::vector<uint32_t> children;       // its active units, indices into nodes_, by id
    std::vector<const Objective*> owned;  // the cycle's objectives it owns, by id
  };
  // The children of node `n`; nullptr for none, or past a unit loop.
  const std::vector<uint32_t>* ChildrenOf(uint32_t n, int depth) const;
  size_t ShownUnder(uint32_t n, int depth, int shown) const;
  Counted Count(View& v, uint32_t n, int depth) const;
  Counted WriteNode(View& v, JsonOut& out, uint32_t n, int depth, int shown,
                    const std::function<void()>& pause) const;

  const Cycle* cycle_ = nullptr;  // none: every cycle
  int depth_ = 0;
  size_t unit_count_ = 0;        // bounds a walk through a unit loop
  std::vector<Node> nodes_;      // the units active at as_of, by id
  std::vector<uint32_t> roots_;  // indices into nodes_
  size_t shown_ = 0;
};

// The µs instant a cycle's date range begins, and the first instant after
// its last day (cycles include their end date).
int64_t CycleStartUs(const CycleFields& cycle);
int64_t CycleEndUs(const CycleFields& cycle);

// True for an event that moved a key result's target or start (what lint
// and the review call moved goalposts once the cycle has started).
bool IsGoalpostChange(const Meta& meta);

}  // namespace okr
