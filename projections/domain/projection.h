// Projection: the log folded into state, with every past state kept.
//
// Each entity keeps one revision per event that changed its fields, tagged
// with the event's seq, so the state after any seq is found by binary
// search instead of a replay (docs/DECISIONS.md, "Time travel"). Check-ins,
// corrections and comments are append-only lists in seq order.
//
// Apply() is the only way state changes; it is a pure fold: the same events
// in the same order give the same projection. Not thread-safe: the owner
// serialises Apply() against readers.
#pragma once

#include <cassert>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "eventstore/base/status.h"
#include "eventstore/event_codec.h"
#include "projections/domain/id_index.h"
#include "projections/domain/interned.h"

namespace okr {

// Who and when of one event. Texts that repeat from event to event are
// interned (projections/domain/interned.h) and the type is the event's
// union member: 32 bytes, no allocation.
struct Meta {
  uint64_t seq = 0;
  int64_t recorded_at_us = 0;
  Interned actor;
  Interned reason;
  schema::Event::Which which = schema::Event::Which::UNIT_CREATED;  // the event's type

  // "key_result.target_changed" (EventTypeName; static storage).
  std::string_view type() const { return EventTypeName(which); }
  bool operator==(const Meta&) const = default;
};

struct UnitFields {
  std::string kind;  // company, department, team, person
  std::string name;
  std::string parent;  // empty for the company
  std::string email;
  bool retired = false;

  bool operator==(const UnitFields&) const = default;
};

struct CycleFields {
  std::string name;
  std::string starts;  // YYYY-MM-DD
  std::string ends;
  std::string parent;
  bool closed = false;

  bool operator==(const CycleFields&) const = default;
};

struct ReviewFields {
  double score = 0;
  std::string outcome;  // achieved, partially, missed
  std::string reflection;
  std::string lessons;
  Meta meta;

  bool operator==(const ReviewFields&) const = default;
};

struct ObjectiveFields {
  std::string cycle;
  std::string owner;
  std::string title;
  std::string description;
  std::vector<std::string> parents;
  bool archived = false;
  std::optional<ReviewFields> review;

  bool operator==(const ObjectiveFields&) const = default;
};

struct KeyResultFields {
  std::string objective;
  std::string title;
  std::string owner;   // empty: the objective's owner
  std::string metric;  // number, percent, currency, boolean
  double start = 0;
  double target = 1;
  std::string unit;
  double weight = 1;
  bool removed = false;

  bool operator==(const KeyResultFields&) const = default;
};

template <typename Fields>
struct Revision {
  Meta meta;
  Fields fields;
  bool operator==(const Revision&) const = default;
};

// An entity's life: its field revisions and the seqs of all its events.
template <typename Fields>
struct Entity {
  std::string id;
  std::vector<Revision<Fields>> revisions;  // seq order; [0] is the creation
  std::vector<uint64_t> event_seqs;         // every event of the entity, seq order

  // The revision in force after `seq`, or nullptr when not yet created.
  const Revision<Fields>* At(uint64_t seq) const;
  const Fields* FieldsAt(uint64_t seq) const {
    const auto* r = At(seq);
    return r ? &r->fields : nullptr;
  }
  uint64_t VersionAt(uint64_t seq) const;
  const Fields& current() const { return revisions.back().fields; }
  bool operator==(const Entity&) const = default;
};

// Most events of a big log are check-ins: 72 bytes each, every text
// interned, so a check-in owns no heap memory and copies cheaply.
struct CheckIn {
  Meta meta;
  double value = 0;
  double confidence = 0;
  int64_t measured_at_us = 0;
  Interned id;
  Interned status;  // on_track, at_risk, off_track, or empty
  Interned note;
  bool has_confidence = false;

  bool operator==(const CheckIn&) const = default;
};

// Every check-in of one projection, in the order folded (seq order for a
// log; key result by key result after a snapshot is decoded), in fixed
// chunks that never move. Folding a check-in appends to this one array
// instead of to one vector among thousands spread over the heap, and a key
// result names its check-ins by 4-byte positions here (docs/DECISIONS.md,
// "An arena for check-ins"). Not thread-safe, like its projection.
class CheckInArena {
 public:
  CheckInArena() = default;
  CheckInArena(const CheckInArena& other);  // copies every chunk
  CheckInArena& operator=(const CheckInArena&) = delete;

  // Stores `ci`; returns its position.
  uint32_t Append(const CheckIn& ci);
  const CheckIn& operator[](uint32_t position) const {
    assert(position < size_);
    return *std::launder(At(position));
  }
  size_t size() const { return size_; }

 private:
  static constexpr unsigned kChunkBits = 14;  // 16,384 check-ins, 1.1 MiB a chunk
  static constexpr size_t kChunkSize = size_t{1} << kChunkBits;
  static constexpr uint32_t kChunkMask = kChunkSize - 1;

  // A check-in's room: a chunk is not initialised when allocated (the
  // fold would write every byte of it twice), only each check-in as it is
  // appended. CheckIn is trivially copyable and destructible.
  struct Room {
    alignas(CheckIn) std::byte bytes[sizeof(CheckIn)];
  };
  static_assert(std::is_trivially_copyable_v<CheckIn> && std::is_trivially_destructible_v<CheckIn>);
  // Where the check-in at `position` is, or goes.
  CheckIn* At(uint32_t position) const {
    return reinterpret_cast<CheckIn*>(&chunks_[position >> kChunkBits][position & kChunkMask]);
  }

  std::vector<std::unique_ptr<Room[]>> chunks_;
  uint32_t size_ = 0;
};

// One key result's check-ins in seq order, read like a vector of CheckIn:
// positions in its projection's arena, each with the index of the latest
// by (measured_at, seq) among the check-ins up to it, so the value as of
// any seq needs no scan. Copies read the same arena until Rebind.
class CheckIns {
  struct Entry {
    uint32_t position;  // in the arena
    uint32_t latest;    // index here of the latest among [0, this one]
  };

 public:
  class Iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = CheckIn;
    using difference_type = std::ptrdiff_t;
    using pointer = const CheckIn*;
    using reference = const CheckIn&;
    Iterator() = default;
    Iterator(const CheckInArena* arena, const Entry* entry) : arena_(arena), entry_(entry) {}
    reference operator*() const { return (*arena_)[entry_->position]; }
    pointer operator->() const { return &**this; }
    reference operator[](difference_type n) const { return *(*this + n); }
    Iterator& operator++() { return *this += 1; }
    Iterator operator++(int) { return std::exchange(*this, *this + 1); }
    Iterator& operator--() { return *this += -1; }
    Iterator operator--(int) { return std::exchange(*this, *this + -1); }
    Iterator& operator+=(difference_type n) {
      entry_ += n;
      return *this;
    }
    Iterator& operator-=(difference_type n) { return *this += -n; }
    friend Iterator operator+(Iterator i, difference_type n) { return i += n; }
    friend Iterator operator+(difference_type n, Iterator i) { return i += n; }
    friend Iterator operator-(Iterator i, difference_type n) { return i += -n; }
    friend difference_type operator-(Iterator a, Iterator b) { return a.entry_ - b.entry_; }
    friend bool operator==(Iterator a, Iterator b) { return a.entry_ == b.entry_; }
    friend auto operator<=>(Iterator a, Iterator b) { return a.entry_ <=> b.entry_; }

   private:
    const CheckInArena* arena_ = nullptr;
    const Entry* entry_ = nullptr;
  };

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const CheckIn& operator[](size_t i) const {
    assert(i < entries_.size());
    return (*arena_)[entries_[i].position];
  }
  const CheckIn& back() const { return (*this)[size() - 1]; }
  Iterator begin() const { return Iterator(arena_, entries_.data()); }
  Iterator end() const { return Iterator(arena_, entries_.data() + entries_.size()); }
  // The index of the latest by (measured_at, seq) among [0, i].
  size_t LatestUpTo(size_t i) const {
    assert(i < entries_.size() && entries_[i].latest <= i);
    return entries_[i].latest;
  }

  // Stores `ci`, newer by seq than every check-in here, in `arena` (the
  // one the others are in) and appends it.
  void Append(CheckInArena* arena, const CheckIn& ci);
  // Reads from `arena` from now on: a copy of the arena the positions are in.
  void Rebind(const CheckInArena* arena) { arena_ = arena; }

  // The newest check-in's seq, and the latest's index, measured_at and
  // value (meaningful when not empty): the value at the head, read
  // without the arena.
  uint64_t newest_seq() const { return newest_seq_; }
  size_t latest() const { return latest_; }
  int64_t latest_measured_at_us() const { return latest_measured_at_us_; }
  double latest_value() const { return latest_value_; }

  // The same check-ins (by content, wherever they are stored) and the
  // same latest ones.
  bool operator==(const CheckIns& other) const;

 private:
  const CheckInArena* arena_ = nullptr;
  std::vector<Entry> entries_;
  // The latest's measured_at (a fold compares the newcomer with it without
  // reading the arena far behind its end) and the rest of the head.
  int64_t latest_measured_at_us_ = 0;
  uint64_t newest_seq_ = 0;
  double latest_value_ = 0;
  uint32_t latest_ = 0;
};

struct Correction {
  Meta meta;
  Interned check_in;
  double before = 0;
  double value = 0;
  Interned note;

  bool operator==(const Correction&) const = default;
};

struct Comment {
  Meta meta;  // meta.actor is the author
  std::string text;

  bool operator==(const Comment&) const = default;
};

struct Unit : Entity<UnitFields> {
  bool operator==(const Unit&) const = default;
};
struct Cycle : Entity<CycleFields> {
  bool operator==(const Cycle&) const = default;
};
struct KeyResult;
// The entities an objective's key_results name, in the same order, so a
// roll-up reads them without a lookup by id. Derived: set as key results
// are added and again by Projection::RebuildIndex (a copy's entities are
// new), so it takes no part in equality.
struct KeyResultLinks {
  std::vector<const KeyResult*> of;
  bool operator==(const KeyResultLinks&) const { return true; }
};
struct Objective : Entity<ObjectiveFields> {
  std::vector<std::string> key_results;  // in creation order
  std::vector<Comment> comments;
  KeyResultLinks key_result_links;
  bool operator==(const Objective&) const = default;
};
struct KeyResult : Entity<KeyResultFields> {
  CheckIns check_ins;                   // seq order, in the projection's arena
  std::vector<Correction> corrections;  // seq order
  std::vector<Comment> comments;
  // How many check-ins are known at `as_of`.
  size_t CheckInsKnownAt(uint64_t as_of) const;
  bool operator==(const KeyResult&) const = default;
};

class Projection {
 public:
  Projection() = default;
  // Copies rebuild the index, which points into the entity maps.
  Projection(const Projection& other);
  Projection& operator=(const Projection& other);
  Projection(Projection&&) = default;  // map nodes move with their maps
  Projection& operator=(Projection&&) = default;

  // Folds one event in. Events must come in seq order, each exactly once;
  // an event the projection cannot apply (unknown entity, wrong kind) is a
  // corruption of the log and leaves the projection unchanged. Reading a
  // malformed field of an event decoded with DecodeCheck::kFramingOnly
  // throws kj::Exception, after which the projection must be discarded.
  Status Apply(schema::Event::Reader event);

  uint64_t seq() const { return seq_; }
  int64_t recorded_at_us() const { return recorded_at_us_; }
  // The seq of the last event recorded at or before `us` (0 when none).
  uint64_t SeqAtTime(int64_t us) const;
  // When the event at `seq` was recorded (0 for seq 0 or beyond the head).
  int64_t TimeOfSeq(uint64_t seq) const;

  const std::map<std::string, Unit>& units() const { return units_; }
  const std::map<std::string, Cycle>& cycles() const { return cycles_; }
  const std::map<std::string, Objective>& objectives() const { return objectives_; }
  const std::map<std::string, KeyResult>& key_results() const { return key_results_; }

  // One probe of the id index each, not a walk down the entity map: a big
  // answer looks up an entity per row.
  const Unit* unit(const std::string& id) const;
  const Cycle* cycle(const std::string& id) const;
  const Objective* objective(const std::string& id) const;
  const KeyResult* key_result(const std::string& id) const;
  // What kind of entity `id` names (ids are unique across kinds), as of now.
  std::optional<EntityKind> KindOf(std::string_view id) const;
  // The key result a check-in belongs to.
  const KeyResult* KeyResultOfCheckIn(std::string_view check_in) const;
  // Every objective that listed `parent` among its parents in any revision,
  // in no set order: a superset of its aligned children at any seq, so a
  // view of one objective never walks the whole organisation.
  const std::vector<const Objective*>& ObjectivesEverAlignedTo(std::string_view parent) const;
  // Every objective of cycle `cycle`, in no set order (an objective's cycle
  // is set when it is created and never changes): a read of one cycle
  // walks its objectives, not those of every cycle the log has held.
  const std::vector<const Objective*>& ObjectivesOfCycle(std::string_view cycle) const;
  // Every objective `owner` (a unit) owned in any revision, in no set order
  // and possibly more than once (owned, given away and taken back): a
  // superset of the objectives it owns at any seq.
  const std::vector<const Objective*>& ObjectivesEverOwnedBy(std::string_view owner) const;
  // The entity's current version (0 when unknown).
  uint64_t Version(std::string_view id) const;
  // The seqs of every event of a unit, cycle, objective or key result, in
  // order (its version at seq s is how many are <= s); nullptr otherwise.
  const std::vector<uint64_t>* EventSeqs(std::string_view id) const;

  // Deep equality, for determinism tests. The id index is derived from
  // the entity maps (its pointers differ between equal projections).
  bool operator==(const Projection& other) const {
    return seq_ == other.seq_ && recorded_at_us_ == other.recorded_at_us_ &&
           time_index_ == other.time_index_ && units_ == other.units_ && cycles_ == other.cycles_ &&
           objectives_ == other.objectives_ && key_results_ == other.key_results_ &&
           index_.size() == other.index_.size() &&
           check_in_index_.size() == other.check_in_index_.size();
  }

 private:
  friend class SnapshotCodec;
  friend class SnapshotDecoder;
  uint64_t seq_ = 0;
  int64_t recorded_at_us_ = 0;
  std::vector<std::pair<int64_t, uint64_t>> time_index_;  // (recorded_at, seq) when it grows
  std::map<std::string, Unit> units_;
  std::map<std::string, Cycle> cycles_;
  std::map<std::string, Objective> objectives_;
  std::map<std::string, KeyResult> key_results_;
  void RebuildIndex();
  // The entity `id` names when it is of `kind`; nullptr otherwise.
  template <typename E>
  E* Existing(std::string_view id, EntityKind kind) const;
  // Adds entity `id` with its first revision; `id` must be new (checked
  // first with CheckNewId, so a failure leaves the projection unchanged).
  template <typename E, typename F>
  E& Insert(std::map<std::string, E>* entities, EntityKind kind, Interned id, const Meta& meta,
            F fields);
  // Ok when no entity and no check-in has `id` yet.
  Status CheckNewId(const Meta& meta, Interned id) const;
  // Interns `text` as *id and checks it is new (CheckNewId).
  Status InternNewId(const Meta& meta, std::string_view text, Interned* id) const;
  // Apply's parts, one per entity the event belongs to. Each either
  // changes nothing and fails, or folds the whole event in.
  Status ApplyUnit(schema::Event::Reader event, const Meta& meta, std::string_view id);
  Status ApplyCycle(schema::Event::Reader event, const Meta& meta, std::string_view id);
  Status ApplyObjective(schema::Event::Reader event, const Meta& meta, std::string_view id);
  Status ApplyKeyResult(schema::Event::Reader event, const Meta& meta, std::string_view id);
  Status ApplyKeyResultAdded(schema::Event::Reader event, const Meta& meta, std::string_view id);
  Status ApplyCheckIn(schema::Event::Reader event, const Meta& meta, std::string_view id);
  Status ApplyComment(schema::Event::Reader event, const Meta& meta, std::string_view id);
  // Moves seq_, recorded_at_us_ and the time index past a folded event.
  void Advance(const Meta& meta);
  // Adds `o` to aligned_to_ under each of `parents` that does not list it
  // yet. `last_only`: `o` can be in a list only as its last entry (it was
  // just created, or its revisions are walked one after another), so only
  // the end is looked at; else an alignment changed, rare enough to search.
  void NoteAlignment(const Objective& o, const std::vector<std::string>& parents, bool last_only);
  // Adds `o` to of_owner_ under `owner` unless it is that list's last entry.
  void NoteOwner(const Objective& o, const std::string& owner);
  // Every id ever used (ids are unique across kinds and never reused):
  // units, cycles, objectives and key results with their kind and entity
  // (one probe per event), check-ins with their key result.
  IdIndex index_;
  CheckInIndex check_in_index_;
  // By the parent's interned handle: ObjectivesEverAlignedTo.
  std::unordered_map<uint32_t, std::vector<const Objective*>> aligned_to_;
  // By the cycle's interned handle: ObjectivesOfCycle.
  std::unordered_map<uint32_t, std::vector<const Objective*>> of_cycle_;
  // By the owner's interned handle: ObjectivesEverOwnedBy.
  std::unordered_map<uint32_t, std::vector<const Objective*>> of_owner_;
  // Where the key results' check-ins are; on the heap, so a moved
  // projection's key results still read it.
  std::unique_ptr<CheckInArena> check_in_arena_ = std::make_unique<CheckInArena>();
};

// --- Progress (SPEC §1) ---

// The value a key result stands at: its latest check-in measured at or
// before `at_us`, known at `as_of` (ties: the later seq; corrections
// applied), or its start when there is none.
struct CurrentValue {
  double value = 0;
  std::optional<size_t> check_in;  // its index in kr.check_ins; none: value is start
};
CurrentValue ValueOf(const KeyResult& kr, const KeyResultFields& fields, uint64_t as_of,
                     int64_t at_us = INT64_MAX);
// clamp((current - start) / (target - start), 0, 1).
double KeyResultProgress(const KeyResultFields& fields, double current);
// One point of a check-in series: kr.check_ins[index], with its value as
// corrected by then.
struct SeriesPoint {
  size_t index = 0;
  double value = 0;
};
// The check-ins of `kr` known at `as_of`, ordered by measured_at (ties:
// seq), as positions in kr.check_ins with their corrected values. Costs
// O(n log n + corrections) for n known check-ins and copies no check-in,
// so a caller can copy out only the page it answers.
std::vector<SeriesPoint> CheckInOrder(const KeyResult& kr, uint64_t as_of);
// The same series as whole check-ins, value replaced by the corrected one.
std::vector<CheckIn> CheckInSeries(const KeyResult& kr, uint64_t as_of);

}  // namespace okr
