#include "projections/domain/projection.h"

#include "eventstore/enum_names.h"
#include "eventstore/sealing.h"

#include <algorithm>
#include <cassert>
#include <string_view>

namespace okr {

template <typename Fields>
const Revision<Fields>* Entity<Fields>::At(uint64_t seq) const {
  // Most reads are of the current state: no search for them.
  if (!revisions.empty() && seq >= revisions.back().meta.seq) return &revisions.back();
  auto it = std::upper_bound(revisions.begin(), revisions.end(), seq,
                             [](uint64_t s, const Revision<Fields>& r) { return s < r.meta.seq; });
  if (it == revisions.begin()) return nullptr;
  return &*(it - 1);
}

template <typename Fields>
uint64_t Entity<Fields>::VersionAt(uint64_t seq) const {
  if (!event_seqs.empty() && seq >= event_seqs.back()) return event_seqs.size();
  return static_cast<uint64_t>(std::upper_bound(event_seqs.begin(), event_seqs.end(), seq) -
                               event_seqs.begin());
}

template struct Entity<UnitFields>;
template struct Entity<CycleFields>;
template struct Entity<ObjectiveFields>;
template struct Entity<KeyResultFields>;

namespace {

std::string Str(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }
std::string_view View(capnp::Text::Reader t) { return std::string_view(t.begin(), t.size()); }
Interned Intern(capnp::Text::Reader t) { return Interned::Of(View(t)); }

// A personal field as the projection keeps it (eventstore/sealing.h):
// `plain`, the body's text, unless the event sealed it. Then a text of the
// event is kept as the mark kSealedHere (its object knows the seq), and a
// unit's name or email (UnitPersonal) as its sealed token. Events with
// nothing sealed take the first test only.
using PF = schema::PersonalField;
std::string Personal(schema::Event::Reader ev, PF field, capnp::Text::Reader plain) {
  return ev.hasSealed() && IsSealed(ev, field) ? std::string(kSealedHere) : Str(plain);
}
Interned InternPersonal(schema::Event::Reader ev, PF field, capnp::Text::Reader plain) {
  static const Interned sealed_here = Interned::Of(kSealedHere);
  return ev.hasSealed() && IsSealed(ev, field) ? sealed_here : Intern(plain);
}
std::string UnitPersonal(schema::Event::Reader ev, PF field, capnp::Text::Reader plain) {
  return ev.hasSealed() ? StoredText(ev, field) : Str(plain);
}

std::string Name(auto e) { return std::string(EnumName(e)); }

// Unset optional enums read as "" (no status, not reviewed).
std::string OptionalName(auto e) { return e == decltype(e)::UNSET ? std::string() : Name(e); }
// A check-in's status, interned once per value rather than once per check-in.
Interned StatusName(schema::CheckInStatus status) {
  using S = schema::CheckInStatus;
  static const Interned kNames[] = {Interned(), Interned::Of(EnumName(S::ON_TRACK)),
                                    Interned::Of(EnumName(S::AT_RISK)),
                                    Interned::Of(EnumName(S::OFF_TRACK))};
  static_assert(static_cast<size_t>(S::OFF_TRACK) + 1 == std::size(kNames));
  const auto i = static_cast<size_t>(status);
  return i < std::size(kNames) ? kNames[i] : Interned::Of(EnumName(status));
}

std::vector<std::string> Strs(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  for (auto t : list) out.push_back(Str(t));
  return out;
}

// Starts a new revision of `e` from its current fields and returns them
// for the event to change.
template <typename E>
auto* Revise(E* e, const Meta& meta) {
  // Every entity is created with a revision (Decode checks snapshots for
  // it), and the log is folded in seq order: a new event is newer than all
  // the entity has.
  assert(!e->revisions.empty());
  assert(e->event_seqs.empty() || e->event_seqs.back() < meta.seq);
  auto rev = e->revisions.back();
  rev.meta = meta;
  e->revisions.push_back(std::move(rev));
  e->event_seqs.push_back(meta.seq);
  return &e->revisions.back().fields;
}

// An event on an entity that is not there (or not of the kind the event is for).
Status Missing(const Meta& meta, std::string_view id, const char* what) {
  return Status::Corruption("seq " + std::to_string(meta.seq) + ": " + std::string(meta.type()) +
                            " on " + what + " " + std::string(id) + " that does not exist");
}

// A cycle's shape, as created and as changed (both events carry all four).
template <typename Reader>
void SetCycleShape(CycleFields* f, Reader b) {
  f->name = Str(b.getName());
  f->starts = Str(b.getStarts());
  f->ends = Str(b.getEnds());
  f->parent = Str(b.getParent());
}

UnitFields CreatedUnit(schema::Event::Reader ev) {
  auto b = ev.getUnitCreated();
  UnitFields f;
  f.kind = Name(b.getKind());
  f.name = UnitPersonal(ev, PF::NAME, b.getName());
  f.parent = Str(b.getParent());
  f.email = UnitPersonal(ev, PF::EMAIL, b.getEmail());
  return f;
}

ObjectiveFields CreatedObjective(schema::ObjectiveCreated::Reader b) {
  ObjectiveFields f;
  f.cycle = Str(b.getCycle());
  f.owner = Str(b.getOwner());
  f.title = Str(b.getTitle());
  f.description = Str(b.getDescription());
  f.parents = Strs(b.getParents());
  return f;
}

KeyResultFields AddedKeyResult(schema::KeyResultAdded::Reader b) {
  KeyResultFields f;
  f.objective = Str(b.getObjective());
  f.title = Str(b.getTitle());
  f.owner = Str(b.getOwner());
  f.metric = Name(b.getMetric());
  f.start = b.getStart();
  f.target = b.getTarget();
  f.unit = Str(b.getUnit());
  f.weight = b.getWeight();
  return f;
}

}  // namespace

template <typename E>
E* Projection::Existing(std::string_view id, EntityKind kind) const {
  const IdIndex::Slot* slot = index_.Find(id);
  if (slot == nullptr || slot->kind() != kind) return nullptr;
  return static_cast<E*>(slot->entity);
}

Status Projection::CheckNewId(const Meta& meta, Interned id) const {
  if (index_.Find(id) != nullptr || check_in_index_.Find(id) != nullptr) {
    return Status::Corruption("seq " + std::to_string(meta.seq) + ": id reused");
  }
  return Status::Ok();
}

Status Projection::InternNewId(const Meta& meta, std::string_view text, Interned* id) const {
  bool added = false;
  *id = Interned::Of(text, &added);
  // A text the process had never seen is no entity's and no check-in's:
  // the probes are for logs folded again (a rebuild, the snapshot's fold).
  if (added) {
    assert(CheckNewId(meta, *id).ok());
    return Status::Ok();
  }
  return CheckNewId(meta, *id);
}

template <typename E, typename F>
E& Projection::Insert(std::map<std::string, E>* entities, EntityKind kind, Interned id,
                      const Meta& meta, F fields) {
  // The end as the hint: ids created in increasing order (an import's,
  // generated ones) go in without a walk down the map; any other is
  // searched for as without a hint.
  assert(!entities->contains(id.str()));  // ids are unique across kinds, and CheckNewId passed
  auto it = entities->try_emplace(entities->end(), id.str());
  E& e = it->second;
  e.id = it->first;
  e.revisions.push_back({meta, std::move(fields)});
  e.event_seqs.push_back(meta.seq);
  index_.Insert(id, kind, &e);
  return e;
}

Status Projection::Apply(schema::Event::Reader ev) {
  if (ev.getSeq() != seq_ + 1) {
    return Status::Corruption("event seq " + std::to_string(ev.getSeq()) + " applied after " +
                              std::to_string(seq_));
  }
  Meta meta{ev.getSeq(), ev.getRecordedAt(), Intern(ev.getActor()),
            InternPersonal(ev, PF::REASON, ev.getReason()), ev.which()};
  const std::string_view id = View(ev.getEntity());
  using W = schema::Event::Which;
  switch (ev.which()) {
    case W::UNIT_CREATED:
    case W::UNIT_RENAMED:
    case W::UNIT_MOVED:
    case W::UNIT_EMAIL_CHANGED:
    case W::UNIT_RETIRED:
    case W::SUBJECT_ERASED:
      OKR_RETURN_IF_ERROR(ApplyUnit(ev, meta, id));
      break;
    case W::CYCLE_CREATED:
    case W::CYCLE_CHANGED:
    case W::CYCLE_CLOSED:
    case W::CYCLE_REOPENED:
      OKR_RETURN_IF_ERROR(ApplyCycle(ev, meta, id));
      break;
    case W::OBJECTIVE_CREATED:
    case W::OBJECTIVE_RETITLED:
    case W::OBJECTIVE_DESCRIBED:
    case W::OBJECTIVE_OWNER_CHANGED:
    case W::OBJECTIVE_ALIGNMENT_SET:
    case W::OBJECTIVE_ARCHIVED:
    case W::OBJECTIVE_RESTORED:
    case W::OBJECTIVE_REVIEWED:
      OKR_RETURN_IF_ERROR(ApplyObjective(ev, meta, id));
      break;
    case W::KEY_RESULT_ADDED:
      OKR_RETURN_IF_ERROR(ApplyKeyResultAdded(ev, meta, id));
      break;
    case W::KEY_RESULT_TITLE_CHANGED:
    case W::KEY_RESULT_START_CHANGED:
    case W::KEY_RESULT_TARGET_CHANGED:
    case W::KEY_RESULT_UNIT_CHANGED:
    case W::KEY_RESULT_WEIGHT_CHANGED:
    case W::KEY_RESULT_OWNER_CHANGED:
    case W::KEY_RESULT_METRIC_CHANGED:
    case W::KEY_RESULT_REMOVED:
      OKR_RETURN_IF_ERROR(ApplyKeyResult(ev, meta, id));
      break;
    case W::CHECK_IN_RECORDED:
    case W::CHECK_IN_CORRECTED:
      OKR_RETURN_IF_ERROR(ApplyCheckIn(ev, meta, id));
      break;
    case W::COMMENT_ADDED:
      OKR_RETURN_IF_ERROR(ApplyComment(ev, meta, id));
      break;
    case W::LOG_SIGNING_KEY:     // the log's own record: no OKR state, only the seq
    case W::WEBHOOK_REGISTERED:  // webhooks are okrd's plumbing, not OKR state
    case W::WEBHOOK_REMOVED:
    case W::WEBHOOK_DISABLED:
      break;
  }
  Advance(meta);
  return Status::Ok();
}

void Projection::Advance(const Meta& meta) {
  assert(meta.seq == seq_ + 1);  // Apply checked it; nothing since moved seq_
  seq_ = meta.seq;
  if (time_index_.empty() || meta.recorded_at_us > recorded_at_us_) {
    time_index_.emplace_back(meta.recorded_at_us, meta.seq);
  } else {
    time_index_.back().second = meta.seq;
  }
  recorded_at_us_ = meta.recorded_at_us;
  assert(time_index_.back().second == seq_);
}

Status Projection::ApplyUnit(schema::Event::Reader ev, const Meta& meta, std::string_view id) {
  using W = schema::Event::Which;
  if (ev.which() == W::UNIT_CREATED) {
    Interned new_id;
    OKR_RETURN_IF_ERROR(InternNewId(meta, id, &new_id));
    Insert(&units_, EntityKind::kUnit, new_id, meta, CreatedUnit(ev));
    return Status::Ok();
  }
  Unit* unit = Existing<Unit>(id, EntityKind::kUnit);
  if (!unit) return Missing(meta, id, "unit");
  UnitFields* f = Revise(unit, meta);
  switch (ev.which()) {
    case W::UNIT_RENAMED:
      f->name = UnitPersonal(ev, PF::AFTER, ev.getUnitRenamed().getAfter());
      break;
    case W::UNIT_MOVED:
      f->parent = Str(ev.getUnitMoved().getAfter());
      break;
    case W::UNIT_EMAIL_CHANGED:
      f->email = UnitPersonal(ev, PF::AFTER, ev.getUnitEmailChanged().getAfter());
      break;
    case W::UNIT_RETIRED:
      f->retired = true;
      break;
    case W::SUBJECT_ERASED:  // the key is gone; the fields keep their tokens, which read as erased
      break;
    default:
      assert(false && "Apply routes only unit events here");
  }
  return Status::Ok();
}

Status Projection::ApplyCycle(schema::Event::Reader ev, const Meta& meta, std::string_view id) {
  using W = schema::Event::Which;
  if (ev.which() == W::CYCLE_CREATED) {
    Interned new_id;
    OKR_RETURN_IF_ERROR(InternNewId(meta, id, &new_id));
    CycleFields fields;
    SetCycleShape(&fields, ev.getCycleCreated());
    Insert(&cycles_, EntityKind::kCycle, new_id, meta, std::move(fields));
    return Status::Ok();
  }
  Cycle* cycle = Existing<Cycle>(id, EntityKind::kCycle);
  if (!cycle) return Missing(meta, id, "cycle");
  CycleFields* f = Revise(cycle, meta);
  switch (ev.which()) {
    case W::CYCLE_CHANGED:
      SetCycleShape(f, ev.getCycleChanged());
      break;
    case W::CYCLE_CLOSED:
      f->closed = true;
      break;
    case W::CYCLE_REOPENED:
      f->closed = false;
      break;
    default:
      assert(false && "Apply routes only cycle events here");
  }
  return Status::Ok();
}

Status Projection::ApplyObjective(schema::Event::Reader ev, const Meta& meta, std::string_view id) {
  using W = schema::Event::Which;
  if (ev.which() == W::OBJECTIVE_CREATED) {
    Interned new_id;
    OKR_RETURN_IF_ERROR(InternNewId(meta, id, &new_id));
    const Objective& o = Insert(&objectives_, EntityKind::kObjective, new_id, meta,
                                CreatedObjective(ev.getObjectiveCreated()));
    NoteAlignment(o, o.current().parents, /*last_only=*/true);
    of_cycle_[Interned::Of(o.current().cycle).handle()].push_back(&o);
    NoteOwner(o, o.current().owner);
    return Status::Ok();
  }
  Objective* objective = Existing<Objective>(id, EntityKind::kObjective);
  if (!objective) return Missing(meta, id, "objective");
  ObjectiveFields* f = Revise(objective, meta);
  switch (ev.which()) {
    case W::OBJECTIVE_RETITLED:
      f->title = Str(ev.getObjectiveRetitled().getAfter());
      break;
    case W::OBJECTIVE_DESCRIBED:
      f->description = Str(ev.getObjectiveDescribed().getAfter());
      break;
    case W::OBJECTIVE_OWNER_CHANGED:
      f->owner = Str(ev.getObjectiveOwnerChanged().getAfter());
      NoteOwner(*objective, f->owner);
      break;
    case W::OBJECTIVE_ALIGNMENT_SET:
      f->parents = Strs(ev.getObjectiveAlignmentSet().getAfter());
      NoteAlignment(*objective, f->parents, /*last_only=*/false);
      break;
    case W::OBJECTIVE_ARCHIVED:
      f->archived = true;
      break;
    case W::OBJECTIVE_RESTORED:
      f->archived = false;
      break;
    case W::OBJECTIVE_REVIEWED: {
      auto b = ev.getObjectiveReviewed();
      f->review = ReviewFields{b.getScore(), OptionalName(b.getOutcome()),
                               Personal(ev, PF::REFLECTION, b.getReflection()),
                               Personal(ev, PF::LESSONS, b.getLessons()), meta};
      break;
    }
    default:
      assert(false && "Apply routes only objective events here");
  }
  return Status::Ok();
}

Status Projection::ApplyKeyResultAdded(schema::Event::Reader ev, const Meta& meta,
                                       std::string_view id) {
  Interned new_id;
  OKR_RETURN_IF_ERROR(InternNewId(meta, id, &new_id));
  KeyResultFields fields = AddedKeyResult(ev.getKeyResultAdded());
  Objective* parent = Existing<Objective>(fields.objective, EntityKind::kObjective);
  if (parent == nullptr) {
    return Status::Corruption("seq " + std::to_string(meta.seq) +
                              ": key result of unknown objective " + fields.objective);
  }
  const KeyResult& kr =
      Insert(&key_results_, EntityKind::kKeyResult, new_id, meta, std::move(fields));
  parent->key_results.emplace_back(id);
  parent->key_result_links.of.push_back(&kr);
  return Status::Ok();
}

Status Projection::ApplyKeyResult(schema::Event::Reader ev, const Meta& meta, std::string_view id) {
  using W = schema::Event::Which;
  KeyResult* kr = Existing<KeyResult>(id, EntityKind::kKeyResult);
  if (!kr) return Missing(meta, id, "key result");
  KeyResultFields* f = Revise(kr, meta);
  switch (ev.which()) {
    case W::KEY_RESULT_TITLE_CHANGED:
      f->title = Str(ev.getKeyResultTitleChanged().getAfter());
      break;
    case W::KEY_RESULT_START_CHANGED:
      f->start = ev.getKeyResultStartChanged().getAfter();
      break;
    case W::KEY_RESULT_TARGET_CHANGED:
      f->target = ev.getKeyResultTargetChanged().getAfter();
      break;
    case W::KEY_RESULT_UNIT_CHANGED:
      f->unit = Str(ev.getKeyResultUnitChanged().getAfter());
      break;
    case W::KEY_RESULT_WEIGHT_CHANGED:
      f->weight = ev.getKeyResultWeightChanged().getAfter();
      break;
    case W::KEY_RESULT_OWNER_CHANGED:
      f->owner = Str(ev.getKeyResultOwnerChanged().getAfter());
      break;
    case W::KEY_RESULT_METRIC_CHANGED:
      f->metric = Name(ev.getKeyResultMetricChanged().getAfter());
      break;
    case W::KEY_RESULT_REMOVED:
      f->removed = true;
      break;
    default:
      assert(false && "Apply routes only key result events here");
  }
  return Status::Ok();
}

// Check-ins and corrections are appended to their key result; they add no
// revision (the key result's fields are unchanged) but count as its events.
Status Projection::ApplyCheckIn(schema::Event::Reader ev, const Meta& meta, std::string_view id) {
  KeyResult* kr = Existing<KeyResult>(id, EntityKind::kKeyResult);
  if (!kr) return Missing(meta, id, "key result");
  assert(kr->event_seqs.empty() || kr->event_seqs.back() < meta.seq);
  if (ev.which() == schema::Event::Which::CHECK_IN_CORRECTED) {
    auto b = ev.getCheckInCorrected();
    kr->corrections.push_back(Correction{meta, Intern(b.getCheckIn()), b.getBefore(), b.getValue(),
                                         InternPersonal(ev, PF::NOTE, b.getNote())});
    kr->event_seqs.push_back(meta.seq);
    return Status::Ok();
  }
  assert(ev.which() == schema::Event::Which::CHECK_IN_RECORDED);
  auto b = ev.getCheckInRecorded();
  Interned ci_id;
  OKR_RETURN_IF_ERROR(InternNewId(meta, View(b.getCheckIn()), &ci_id));
  kr->check_ins.Append(check_in_arena_.get(),
                       CheckIn{.meta = meta,
                               .value = b.getValue(),
                               .confidence = b.getConfidence(),
                               .measured_at_us = b.getMeasuredAt(),
                               .id = ci_id,
                               .status = StatusName(b.getStatus()),
                               .note = InternPersonal(ev, PF::NOTE, b.getNote()),
                               .has_confidence = b.getHasConfidence()});
  kr->event_seqs.push_back(meta.seq);
  check_in_index_.Insert(ci_id, kr);
  return Status::Ok();
}

// A comment lands on an objective or a key result, whichever `id` names.
Status Projection::ApplyComment(schema::Event::Reader ev, const Meta& meta, std::string_view id) {
  Comment c{meta, Personal(ev, PF::TEXT, ev.getCommentAdded().getText())};
  auto append = [&](auto* entity) {
    assert(entity->event_seqs.empty() || entity->event_seqs.back() < meta.seq);
    entity->comments.push_back(std::move(c));
    entity->event_seqs.push_back(meta.seq);
    return Status::Ok();
  };
  if (Objective* o = Existing<Objective>(id, EntityKind::kObjective)) return append(o);
  if (KeyResult* kr = Existing<KeyResult>(id, EntityKind::kKeyResult)) return append(kr);
  return Missing(meta, id, "objective or key result");
}

uint64_t Projection::SeqAtTime(int64_t us) const {
  auto it = std::upper_bound(time_index_.begin(), time_index_.end(), us,
                             [](int64_t t, const auto& e) { return t < e.first; });
  if (it == time_index_.begin()) return 0;
  return (it - 1)->second;
}

int64_t Projection::TimeOfSeq(uint64_t seq) const {
  if (seq == 0 || seq > seq_) return 0;
  // Entries hold the last seq recorded at each time: the first entry whose
  // last seq reaches `seq` holds its time.
  auto it = std::lower_bound(time_index_.begin(), time_index_.end(), seq,
                             [](const auto& e, uint64_t s) { return e.second < s; });
  return it == time_index_.end() ? recorded_at_us_ : it->first;
}

const Unit* Projection::unit(const std::string& id) const {
  return Existing<const Unit>(id, EntityKind::kUnit);
}
const Cycle* Projection::cycle(const std::string& id) const {
  return Existing<const Cycle>(id, EntityKind::kCycle);
}
const Objective* Projection::objective(const std::string& id) const {
  return Existing<const Objective>(id, EntityKind::kObjective);
}
const KeyResult* Projection::key_result(const std::string& id) const {
  return Existing<const KeyResult>(id, EntityKind::kKeyResult);
}

Projection::Projection(const Projection& other)
    : seq_(other.seq_),
      recorded_at_us_(other.recorded_at_us_),
      time_index_(other.time_index_),
      units_(other.units_),
      cycles_(other.cycles_),
      objectives_(other.objectives_),
      key_results_(other.key_results_),
      check_in_arena_(std::make_unique<CheckInArena>(*other.check_in_arena_)) {
  RebuildIndex();
}

Projection& Projection::operator=(const Projection& other) {
  if (this != &other) *this = Projection(other);
  return *this;
}

}  // namespace okr
