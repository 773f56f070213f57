#include "projections/domain/projection.h"

#include "eventstore/enum_names.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string_view>

namespace okr {

template <typename Fields>
const Revision<Fields>* Entity<Fields>::At(uint64_t seq) const {
  auto it = std::upper_bound(revisions.begin(), revisions.end(), seq,
                             [](uint64_t s, const Revision<Fields>& r) { return s < r.meta.seq; });
  if (it == revisions.begin()) return nullptr;
  return &*(it - 1);
}

template <typename Fields>
uint64_t Entity<Fields>::VersionAt(uint64_t seq) const {
  return static_cast<uint64_t>(std::upper_bound(event_seqs.begin(), event_seqs.end(), seq) -
                               event_seqs.begin());
}

template struct Entity<UnitFields>;
template struct Entity<CycleFields>;
template struct Entity<ObjectiveFields>;
template struct Entity<KeyResultFields>;

namespace {

std::string Str(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }

std::string Name(auto e) { return std::string(EnumName(e)); }

// Unset optional enums read as "" (no status, not reviewed).
std::string OptionalName(auto e) { return e == decltype(e)::UNSET ? std::string() : Name(e); }

std::vector<std::string> Strs(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  for (auto t : list) out.push_back(Str(t));
  return out;
}





// Starts a new revision of `e` from its current fields; nullptr (and a
// corruption) when the entity does not exist.
template <typename E>
auto* Revise(E* e, const Meta& meta) {
  auto rev = e->revisions.back();
  rev.meta = meta;
  e->revisions.push_back(std::move(rev));
  e->event_seqs.push_back(meta.seq);
  return &e->revisions.back().fields;
}

template <typename E>
E& Create(std::map<std::string, E>& m, const std::string& id, const Meta& meta) {
  E& e = m[id];
  e.id = id;
  e.revisions.push_back({meta, {}});
  e.event_seqs.push_back(meta.seq);
  return e;
}

}  // namespace

Status Projection::Apply(schema::Event::Reader ev) {
  if (ev.getSeq() != seq_ + 1) {
    return Status::Corruption("event seq " + std::to_string(ev.getSeq()) + " applied after " +
                              std::to_string(seq_));
  }
  Meta meta{ev.getSeq(), ev.getRecordedAt(), Str(ev.getActor()), Str(ev.getReason()),
            EventTypeName(ev.which())};
  const std::string id = Str(ev.getEntity());
  auto missing = [&](const char* what) {
    return Status::Corruption("seq " + std::to_string(meta.seq) + ": " + std::string(meta.type) + " on " +
                              what + " " + id + " that does not exist");
  };
  using W = schema::Event::Which;
  Unit* unit = nullptr;
  Cycle* cycle = nullptr;
  Objective* objective = nullptr;
  KeyResult* kr = nullptr;
  if (auto it = index_.find(id); it != index_.end()) {
    switch (it->second.kind) {
      case EntityKind::kUnit: unit = static_cast<Unit*>(it->second.entity); break;
      case EntityKind::kCycle: cycle = static_cast<Cycle*>(it->second.entity); break;
      case EntityKind::kObjective: objective = static_cast<Objective*>(it->second.entity); break;
      case EntityKind::kKeyResult: kr = static_cast<KeyResult*>(it->second.entity); break;
      case EntityKind::kCheckIn: break;
    }
  }
  auto created = [&](EntityKind kind, void* entity) {
    index_.emplace(id, IndexEntry{kind, entity});
  };

  switch (ev.which()) {
    case W::UNIT_CREATED: {
      if (KindOf(id)) return Status::Corruption("seq " + std::to_string(meta.seq) + ": id reused");
      auto b = ev.getUnitCreated();
      Unit& e = Create(units_, id, meta);
      created(EntityKind::kUnit, &e);
      auto& f = e.revisions.back().fields;
      f.kind = Name(b.getKind());
      f.name = Str(b.getName());
      f.parent = Str(b.getParent());
      f.email = Str(b.getEmail());
      break;
    }
    case W::UNIT_RENAMED:
      if (!unit) return missing("unit");
      Revise(unit, meta)->name = Str(ev.getUnitRenamed().getAfter());
      break;
    case W::UNIT_MOVED:
      if (!unit) return missing("unit");
      Revise(unit, meta)->parent = Str(ev.getUnitMoved().getAfter());
      break;
    case W::UNIT_EMAIL_CHANGED:
      if (!unit) return missing("unit");
      Revise(unit, meta)->email = Str(ev.getUnitEmailChanged().getAfter());
      break;
    case W::UNIT_RETIRED:
      if (!unit) return missing("unit");
      Revise(unit, meta)->retired = true;
      break;

    case W::CYCLE_CREATED: {
      if (KindOf(id)) return Status::Corruption("seq " + std::to_string(meta.seq) + ": id reused");
      auto b = ev.getCycleCreated();
      Cycle& e = Create(cycles_, id, meta);
      created(EntityKind::kCycle, &e);
      auto& f = e.revisions.back().fields;
      f.name = Str(b.getName());
      f.starts = Str(b.getStarts());
      f.ends = Str(b.getEnds());
      f.parent = Str(b.getParent());
      break;
    }
    case W::CYCLE_CHANGED: {
      if (!cycle) return missing("cycle");
      auto b = ev.getCycleChanged();
      auto* f = Revise(cycle, meta);
      f->name = Str(b.getName());
      f->starts = Str(b.getStarts());
      f->ends = Str(b.getEnds());
      f->parent = Str(b.getParent());
      break;
    }
    case W::CYCLE_CLOSED:
      if (!cycle) return missing("cycle");
      Revise(cycle, meta)->closed = true;
      break;
    case W::CYCLE_REOPENED:
      if (!cycle) return missing("cycle");
      Revise(cycle, meta)->closed = false;
      break;

    case W::OBJECTIVE_CREATED: {
      if (KindOf(id)) return Status::Corruption("seq " + std::to_string(meta.seq) + ": id reused");
      auto b = ev.getObjectiveCreated();
      Objective& e = Create(objectives_, id, meta);
      created(EntityKind::kObjective, &e);
      auto& f = e.revisions.back().fields;
      f.cycle = Str(b.getCycle());
      f.owner = Str(b.getOwner());
      f.title = Str(b.getTitle());
      f.description = Str(b.getDescription());
      f.parents = Strs(b.getParents());
      break;
    }
    case W::OBJECTIVE_RETITLED:
      if (!objective) return missing("objective");
      Revise(objective, meta)->title = Str(ev.getObjectiveRetitled().getAfter());
      break;
    case W::OBJECTIVE_DESCRIBED:
      if (!objective) return missing("objective");
      Revise(objective, meta)->description = Str(ev.getObjectiveDescribed().getAfter());
      break;
    case W::OBJECTIVE_OWNER_CHANGED:
      if (!objective) return missing("objective");
      Revise(objective, meta)->owner = Str(ev.getObjectiveOwnerChanged().getAfter());
      break;
    case W::OBJECTIVE_ALIGNMENT_SET:
      if (!objective) return missing("objective");
      Revise(objective, meta)->parents = Strs(ev.getObjectiveAlignmentSet().getAfter());
      break;
    case W::OBJECTIVE_ARCHIVED:
      if (!objective) return missing("objective");
      Revise(objective, meta)->archived = true;
      break;
    case W::OBJECTIVE_RESTORED:
      if (!objective) return missing("objective");
      Revise(objective, meta)->archived = false;
      break;
    case W::OBJECTIVE_REVIEWED: {
      if (!objective) return missing("objective");
      auto b = ev.getObjectiveReviewed();
      Revise(objective, meta)->review =
          ReviewFields{b.getScore(), OptionalName(b.getOutcome()), Str(b.getReflection()),
                       Str(b.getLessons()), meta};
      break;
    }

    case W::KEY_RESULT_ADDED: {
      if (KindOf(id)) return Status::Corruption("seq " + std::to_string(meta.seq) + ": id reused");
      auto b = ev.getKeyResultAdded();
      std::string parent = Str(b.getObjective());
      auto pit = objectives_.find(parent);
      if (pit == objectives_.end()) {
        return Status::Corruption("seq " + std::to_string(meta.seq) +
                                  ": key result of unknown objective " + parent);
      }
      KeyResult& e = Create(key_results_, id, meta);
      created(EntityKind::kKeyResult, &e);
      auto& f = e.revisions.back().fields;
      f.objective = parent;
      f.title = Str(b.getTitle());
      f.owner = Str(b.getOwner());
      f.metric = Name(b.getMetric());
      f.start = b.getStart();
      f.target = b.getTarget();
      f.unit = Str(b.getUnit());
      f.weight = b.getWeight();
      pit->second.key_results.push_back(id);
      break;
    }
    case W::KEY_RESULT_TITLE_CHANGED:
      if (!kr) return missing("key result");
      Revise(kr, meta)->title = Str(ev.getKeyResultTitleChanged().getAfter());
      break;
    case W::KEY_RESULT_START_CHANGED:
      if (!kr) return missing("key result");
      Revise(kr, meta)->start = ev.getKeyResultStartChanged().getAfter();
      break;
    case W::KEY_RESULT_TARGET_CHANGED:
      if (!kr) return missing("key result");
      Revise(kr, meta)->target = ev.getKeyResultTargetChanged().getAfter();
      break;
    case W::KEY_RESULT_UNIT_CHANGED:
      if (!kr) return missing("key result");
      Revise(kr, meta)->unit = Str(ev.getKeyResultUnitChanged().getAfter());
      break;
    case W::KEY_RESULT_WEIGHT_CHANGED:
      if (!kr) return missing("key result");
      Revise(kr, meta)->weight = ev.getKeyResultWeightChanged().getAfter();
      break;
    case W::KEY_RESULT_OWNER_CHANGED:
      if (!kr) return missing("key result");
      Revise(kr, meta)->owner = Str(ev.getKeyResultOwnerChanged().getAfter());
      break;
    case W::KEY_RESULT_METRIC_CHANGED:
      if (!kr) return missing("key result");
      Revise(kr, meta)->metric = Name(ev.getKeyResultMetricChanged().getAfter());
      break;
    case W::KEY_RESULT_REMOVED:
      if (!kr) return missing("key result");
      Revise(kr, meta)->removed = true;
      break;

    case W::CHECK_IN_RECORDED: {
      if (!kr) return missing("key result");
      auto b = ev.getCheckInRecorded();
      std::string ci = Str(b.getCheckIn());
      if (KindOf(ci)) return Status::Corruption("seq " + std::to_string(meta.seq) + ": id reused");
      kr->check_ins.push_back(CheckIn{ci, meta, b.getValue(), b.getHasConfidence(),
                                      b.getConfidence(), OptionalName(b.getStatus()),
                                      Str(b.getNote()), b.getMeasuredAt()});
      kr->AddToIndex();
      kr->event_seqs.push_back(meta.seq);
      index_.emplace(ci, IndexEntry{EntityKind::kCheckIn, kr});
      break;
    }
    case W::CHECK_IN_CORRECTED: {
      if (!kr) return missing("key result");
      auto b = ev.getCheckInCorrected();
      kr->corrections.push_back(Correction{meta, Str(b.getCheckIn()), b.getBefore(),
                                           b.getValue(), Str(b.getNote())});
      kr->event_seqs.push_back(meta.seq);
      break;
    }
    case W::COMMENT_ADDED: {
      Comment c{meta, Str(ev.getCommentAdded().getText())};
      if (objective) {
        objective->comments.push_back(std::move(c));
        objective->event_seqs.push_back(meta.seq);
      } else if (kr) {
        kr->comments.push_back(std::move(c));
        kr->event_seqs.push_back(meta.seq);
      } else {
        return missing("objective or key result");
      }
      break;
    }
  }
  seq_ = meta.seq;
  if (time_index_.empty() || meta.recorded_at_us > recorded_at_us_) {
    time_index_.emplace_back(meta.recorded_at_us, meta.seq);
  } else {
    time_index_.back().second = meta.seq;
  }
  recorded_at_us_ = meta.recorded_at_us;
  return Status::Ok();
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

std::optional<EntityKind> Projection::KindOf(const std::string& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second.kind;
}

const KeyResult* Projection::KeyResultOfCheckIn(const std::string& check_in) const {
  auto it = index_.find(check_in);
  if (it == index_.end() || it->second.kind != EntityKind::kCheckIn) return nullptr;
  return static_cast<const KeyResult*>(it->second.entity);
}

Projection::Projection(const Projection& other)
    : seq_(other.seq_),
      recorded_at_us_(other.recorded_at_us_),
      time_index_(other.time_index_),
      units_(other.units_),
      cycles_(other.cycles_),
      objectives_(other.objectives_),
      key_results_(other.key_results_) {
  RebuildIndex();
}

Projection& Projection::operator=(const Projection& other) {
  if (this != &other) *this = Projection(other);
  return *this;
}

void Projection::RebuildIndex() {
  index_.clear();
  for (auto& [id, e] : units_) index_.emplace(id, IndexEntry{EntityKind::kUnit, &e});
  for (auto& [id, e] : cycles_) index_.emplace(id, IndexEntry{EntityKind::kCycle, &e});
  for (auto& [id, e] : objectives_) index_.emplace(id, IndexEntry{EntityKind::kObjective, &e});
  for (auto& [id, kr] : key_results_) {
    index_.emplace(id, IndexEntry{EntityKind::kKeyResult, &kr});
    for (const CheckIn& ci : kr.check_ins) {
      index_.emplace(ci.id, IndexEntry{EntityKind::kCheckIn, &kr});
    }
  }
}

const std::vector<uint64_t>* Projection::EventSeqs(const std::string& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return nullptr;
  switch (it->second.kind) {
    case EntityKind::kUnit: return &static_cast<const Unit*>(it->second.entity)->event_seqs;
    case EntityKind::kCycle: return &static_cast<const Cycle*>(it->second.entity)->event_seqs;
    case EntityKind::kObjective: return &static_cast<const Objective*>(it->second.entity)->event_seqs;
    case EntityKind::kKeyResult: return &static_cast<const KeyResult*>(it->second.entity)->event_seqs;
    case EntityKind::kCheckIn: return nullptr;  // check-ins are events of their key result
  }
  return nullptr;
}

uint64_t Projection::Version(const std::string& id) const {
  const auto* seqs = EventSeqs(id);
  return seqs ? seqs->size() : 0;
}

void KeyResult::AddToIndex() {
  uint32_t newest = static_cast<uint32_t>(check_ins.size() - 1);
  // Seqs only grow, so on a tie in measured_at the newcomer wins.
  if (!latest_prefix.empty() &&
      check_ins[newest].measured_at_us < check_ins[latest_prefix.back()].measured_at_us) {
    newest = latest_prefix.back();
  }
  latest_prefix.push_back(newest);
}

void KeyResult::Reindex() {
  std::vector<CheckIn> all = std::move(check_ins);
  check_ins.clear();
  latest_prefix.clear();
  for (auto& ci : all) {
    check_ins.push_back(std::move(ci));
    AddToIndex();
  }
}

size_t KeyResult::CheckInsKnownAt(uint64_t as_of) const {
  return static_cast<size_t>(
      std::upper_bound(check_ins.begin(), check_ins.end(), as_of,
                       [](uint64_t s, const CheckIn& ci) { return s < ci.meta.seq; }) -
      check_ins.begin());
}

// --- Progress ---

CurrentValue ValueOf(const KeyResult& kr, const KeyResultFields& fields, uint64_t as_of,
                     int64_t at_us) {
  CurrentValue out{fields.start, nullptr};
  size_t known = kr.CheckInsKnownAt(as_of);
  if (known > 0 && at_us >= kr.check_ins[kr.latest_prefix[known - 1]].measured_at_us) {
    // The latest known check-in was measured by `at`: it is the answer.
    out.check_in = &kr.check_ins[kr.latest_prefix[known - 1]];
  } else if (known > 0) {
    for (const CheckIn& ci : kr.check_ins) {
      if (ci.meta.seq > as_of) break;  // seq order: nothing later is known
      if (ci.measured_at_us > at_us) continue;
      if (out.check_in == nullptr || ci.measured_at_us > out.check_in->measured_at_us ||
          (ci.measured_at_us == out.check_in->measured_at_us &&
           ci.meta.seq > out.check_in->meta.seq)) {
        out.check_in = &ci;
      }
    }
  }
  if (out.check_in != nullptr) {
    out.value = out.check_in->value;
    for (const Correction& c : kr.corrections) {
      if (c.meta.seq > as_of) break;
      if (c.check_in == out.check_in->id) out.value = c.value;
    }
  }
  return out;
}

double KeyResultProgress(const KeyResultFields& f, double current) {
  double span = f.target - f.start;
  if (span == 0 || !std::isfinite(span)) return 0;
  double p = (current - f.start) / span;
  if (std::isnan(p)) return 0;
  return std::clamp(p, 0.0, 1.0);  // ±inf (a tiny span) clamps to 1 or 0
}

std::vector<SeriesPoint> CheckInOrder(const KeyResult& kr, uint64_t as_of) {
  const size_t known = kr.CheckInsKnownAt(as_of);
  std::vector<SeriesPoint> out(known);
  // One pass over the corrections, each found by id: O(check-ins +
  // corrections), not their product. Corrections come in seq order, so
  // the last one known for a check-in is the value it ends with.
  std::unordered_map<std::string_view, size_t> position;
  position.reserve(known);
  for (size_t i = 0; i < known; ++i) {
    out[i] = {i, kr.check_ins[i].value};
    position.emplace(kr.check_ins[i].id, i);
  }
  for (const Correction& c : kr.corrections) {
    if (c.meta.seq > as_of) break;
    auto it = position.find(c.check_in);
    if (it != position.end()) out[it->second].value = c.value;
  }
  assert(position.size() == known);  // check-in ids are unique
  // check_ins is in seq order, so a stable sort by measured_at breaks ties by seq.
  std::stable_sort(out.begin(), out.end(), [&](const SeriesPoint& a, const SeriesPoint& b) {
    return kr.check_ins[a.index].measured_at_us < kr.check_ins[b.index].measured_at_us;
  });
  return out;
}

std::vector<CheckIn> CheckInSeries(const KeyResult& kr, uint64_t as_of) {
  std::vector<CheckIn> out;
  for (const SeriesPoint& point : CheckInOrder(kr, as_of)) {
    out.push_back(kr.check_ins[point.index]);
    out.back().value = point.value;
  }
  return out;
}

}  // namespace okr
