// The View: rows and JSON of what existed at a seq, and progress.
#include "projections/read/view.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "eventstore/base/time.h"

namespace okr {

using nlohmann::json;

namespace {

json NullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

constexpr int kMaxAlignmentDepth = 64;  // alignment is acyclic; this only bounds a bug

}  // namespace

int64_t CycleStartUs(const CycleFields& c) { return ParseDate(c.starts).value_or(0); }
int64_t CycleEndUs(const CycleFields& c) { return ParseDate(c.ends).value_or(0) + kMicrosPerDay; }

bool IsGoalpostChange(const Meta& m) {
  return m.type == "key_result.target_changed" || m.type == "key_result.start_changed";
}

View::View(const Projection& projection, uint64_t as_of, int64_t at_us, int64_t now_us)
    : p_(projection), as_of_(as_of), at_us_(at_us), now_us_(now_us) {}

int64_t View::PaceAtUs() const {
  assert(as_of_ <= p_.seq());  // TimeOfSeq knows only seqs the projection folded
  // now_us_ is the wall clock at the head: judging by it would make two
  // reads of one seq differ, so an answer could not be cached by its seq.
  return at_us_ != INT64_MAX ? at_us_ : p_.TimeOfSeq(as_of_);
}

Pace View::PaceIn(const std::string& cycle_id, std::optional<double> progress) const {
  const CycleFields* cycle = CycleAt(cycle_id);
  // An objective names a cycle that existed when it was written; a log
  // that breaks this still answers, with nothing judged.
  if (!cycle) return Pace{};
  Pace pace = PaceOf(*cycle, PaceAtUs(), progress);
  assert(pace.expected >= 0 && pace.expected <= 1);
  return pace;
}

namespace {

// The fields of `entity` as they stood at `as_of`; null for no entity, or
// one that did not exist yet.
template <typename E>
auto FieldsAtOrNull(const E* entity, uint64_t as_of) -> decltype(entity->FieldsAt(as_of)) {
  return entity ? entity->FieldsAt(as_of) : nullptr;
}

}  // namespace

const UnitFields* View::UnitAt(const std::string& id) const {
  return FieldsAtOrNull(p_.unit(id), as_of_);
}
const CycleFields* View::CycleAt(const std::string& id) const {
  return FieldsAtOrNull(p_.cycle(id), as_of_);
}
const ObjectiveFields* View::ObjectiveAt(const std::string& id) const {
  return FieldsAtOrNull(p_.objective(id), as_of_);
}
const KeyResultFields* View::KeyResultAt(const std::string& id) const {
  return FieldsAtOrNull(p_.key_result(id), as_of_);
}

UnitRow View::UnitRowOf(const Unit& unit) const {
  return {unit.id, *unit.FieldsAt(as_of_), unit.VersionAt(as_of_)};
}

CycleRow View::CycleRowOf(const Cycle& cycle) const {
  return {cycle.id, *cycle.FieldsAt(as_of_), cycle.VersionAt(as_of_)};
}

json View::UnitJson(const Unit& unit) const { return RenderUnit(UnitRowOf(unit)); }
json View::CycleJson(const Cycle& cycle) const { return RenderCycle(CycleRowOf(cycle)); }
json View::CheckInJson(const CheckIn& ci) const { return RenderCheckIn(ci); }

json RenderPace(const Pace& pace) {
  return {{"expected", pace.expected}, {"status", PaceStatusName(pace.status)}};
}

namespace {

// The fields an objective and a key result answer alike, with `own` (the
// rest of the entity's fields) merged in. The keys are distinct, and
// nlohmann::json sorts them, so the order written does not matter.
json MeasuredEntity(const std::string& id, const char* state, double progress, const Pace& pace,
                    uint64_t version, json own) {
  assert(own.is_object() && !own.contains("id") && !own.contains("pace"));
  own.update({{"id", id},
              {"state", state},
              {"progress", progress},
              {"pace", RenderPace(pace)},
              {"version", version}});
  return own;
}

}  // namespace

json RenderUnit(const UnitRow& row) {
  const UnitFields& f = row.fields;
  json out = {{"id", row.id},
              {"kind", f.kind},
              {"name", f.name},
              {"parent", NullIfEmpty(f.parent)},
              {"state", f.retired ? "retired" : "active"},
              {"version", row.version}};
  if (f.kind == "person") out["email"] = NullIfEmpty(f.email);
  return out;
}

json RenderCycle(const CycleRow& row) {
  const CycleFields& f = row.fields;
  return {{"id", row.id},
          {"name", f.name},
          {"starts", f.starts},
          {"ends", f.ends},
          {"parent", NullIfEmpty(f.parent)},
          {"state", f.closed ? "closed" : "open"},
          {"version", row.version}};
}

json RenderCheckIn(const CheckIn& ci) {
  return {{"id", ci.id},
          {"value", ci.value},
          {"confidence", ci.has_confidence ? json(ci.confidence) : json(nullptr)},
          {"status", NullIfEmpty(ci.status)},
          {"note", ci.note},
          {"measured_at", FormatTimeUs(ci.measured_at_us)},
          {"recorded_at", FormatTimeUs(ci.meta.recorded_at_us)},
          {"actor", ci.meta.actor},
          {"seq", ci.meta.seq}};
}

std::string View::EffectiveOwner(const KeyResultFields& f) const {
  if (!f.owner.empty()) return f.owner;
  const ObjectiveFields* o = ObjectiveAt(f.objective);
  return o ? o->owner : "";
}

double View::KeyResultProgress(const KeyResult& kr) {
  if (auto it = kr_progress_.find(kr.id); it != kr_progress_.end()) return it->second;
  const KeyResultFields* f = kr.FieldsAt(as_of_);
  double p = f ? okr::KeyResultProgress(*f, ValueOf(kr, *f, as_of_, at_us_).value) : 0;
  kr_progress_[kr.id] = p;
  return p;
}

KeyResultRow View::KeyResultRowOf(const KeyResult& kr) {
  assert(kr.FieldsAt(as_of_) != nullptr);  // callers pass key results that exist at as_of
  const KeyResultFields& f = *kr.FieldsAt(as_of_);
  CurrentValue current = ValueOf(kr, f, as_of_, at_us_);
  KeyResultRow row{kr.id,
                   f,
                   EffectiveOwner(f),
                   current.value,
                   KeyResultProgress(kr),
                   kr.CheckInsKnownAt(as_of_),
                   std::nullopt,
                   kr.VersionAt(as_of_),
                   {}};
  assert(row.check_in_count <= kr.check_ins.size());
  const ObjectiveFields* objective = ObjectiveAt(f.objective);
  row.pace = PaceIn(objective ? objective->cycle : "", row.progress);
  if (current.check_in) {
    assert(current.check_in->meta.seq <= as_of_);  // ValueOf reads only what was known
    row.last_check_in = *current.check_in;
    row.last_check_in->value = current.value;  // as corrected
  }
  return row;
}

json View::KeyResultJson(const KeyResult& kr) { return RenderKeyResult(KeyResultRowOf(kr)); }

json RenderKeyResult(const KeyResultRow& row) {
  const KeyResultFields& f = row.fields;
  json last = row.last_check_in ? RenderCheckIn(*row.last_check_in) : json(nullptr);
  return MeasuredEntity(row.id, f.removed ? "removed" : "active", row.progress, row.pace,
                        row.version,
                        {{"objective", f.objective},
                         {"title", f.title},
                         {"owner", row.owner},
                         {"metric", f.metric},
                         {"start", f.start},
                         {"target", f.target},
                         {"unit", f.unit},
                         {"weight", f.weight},
                         {"current", row.current},
                         {"check_in_count", row.check_in_count},
                         {"last_check_in", std::move(last)}});
}

std::vector<const KeyResult*> View::KeyResultsOf(const Objective& objective) const {
  std::vector<const KeyResult*> out;
  for (const auto& id : objective.key_results) {
    const KeyResult* kr = p_.key_result(id);
    const KeyResultFields* f = kr ? kr->FieldsAt(as_of_) : nullptr;
    if (f && !f->removed) out.push_back(kr);
  }
  return out;
}

const std::vector<const Objective*>& View::AlignedChildren(const std::string& objective) {
  if (!children_) {
    children_.emplace();
    for (const auto& [id, o] : p_.objectives()) {
      const ObjectiveFields* f = o.FieldsAt(as_of_);
      if (!f || f->archived) continue;
      for (const auto& parent : f->parents) (*children_)[parent].push_back(&o);
    }
  }
  static const std::vector<const Objective*> kNone;
  auto it = children_->find(objective);
  return it == children_->end() ? kNone : it->second;
}

namespace {

// The mean of (weight, progress) pairs over `items`, always a finite number
// in [0, 1]. Weights are bounded when written (kMaxWeight), but a log from
// before the bound may hold weights whose sum overflows: the mean is then
// taken again with every weight divided by the largest.
template <typename Items, typename Pair>
double WeightedMean(const Items& items, Pair pair) {
  double weighted = 0, weights = 0, largest = 0;
  for (const auto& item : items) {
    auto [w, p] = pair(item);
    weighted += w * p;
    weights += w;
    largest = std::max(largest, w);
  }
  double mean = weights > 0 ? weighted / weights : 0;
  if (std::isfinite(mean)) return mean;
  if (!(largest > 0) || !std::isfinite(largest)) return 0;
  weighted = weights = 0;
  for (const auto& item : items) {
    auto [w, p] = pair(item);
    weighted += (w / largest) * p;
    weights += w / largest;
  }
  mean = weights > 0 ? weighted / weights : 0;
  return std::isfinite(mean) ? mean : 0;
}

}  // namespace

double View::ObjectiveProgress(const Objective& objective) {
  return ObjectiveProgressGuarded(objective, 0);
}

double View::ObjectiveProgressGuarded(const Objective& objective, int depth) {
  if (auto it = objective_progress_.find(objective.id); it != objective_progress_.end()) {
    return it->second;
  }
  double progress = 0;
  auto krs = KeyResultsOf(objective);
  if (!krs.empty()) {
    progress = WeightedMean(krs, [&](const KeyResult* kr) {
      return std::pair(kr->FieldsAt(as_of_)->weight, KeyResultProgress(*kr));
    });
  } else if (depth < kMaxAlignmentDepth) {
    const auto& children = AlignedChildren(objective.id);
    if (!children.empty()) {
      double sum = 0;
      for (const Objective* child : children) sum += ObjectiveProgressGuarded(*child, depth + 1);
      progress = sum / static_cast<double>(children.size());
    }
  }
  assert(std::isfinite(progress));  // WeightedMean and the clamp keep it finite
  objective_progress_[objective.id] = progress;
  return progress;
}

ObjectiveRow View::ObjectiveRowOf(const Objective& objective) {
  assert(objective.FieldsAt(as_of_) != nullptr);  // callers pass objectives that exist at as_of
  ObjectiveRow row{objective.id, *objective.FieldsAt(as_of_), ObjectiveProgress(objective),
                   {},           objective.VersionAt(as_of_), {}};
  row.pace = PaceIn(row.fields.cycle, row.progress);
  for (const KeyResult* kr : KeyResultsOf(objective)) {
    row.key_results.push_back(KeyResultRowOf(*kr));
  }
  return row;
}

json View::ObjectiveJson(const Objective& objective) {
  return RenderObjective(ObjectiveRowOf(objective));
}

json RenderObjective(const ObjectiveRow& row) {
  const ObjectiveFields& f = row.fields;
  json krs = json::array();
  for (const KeyResultRow& kr : row.key_results) krs.push_back(RenderKeyResult(kr));
  json review = nullptr;
  if (f.review) {
    review = {{"score", f.review->score},
              {"outcome", f.review->outcome},
              {"reflection", f.review->reflection},
              {"lessons", f.review->lessons},
              {"actor", f.review->meta.actor},
              {"recorded_at", FormatTimeUs(f.review->meta.recorded_at_us)}};
  }
  return MeasuredEntity(row.id, f.archived ? "archived" : "active", row.progress, row.pace,
                        row.version,
                        {{"cycle", f.cycle},
                         {"owner", f.owner},
                         {"title", f.title},
                         {"description", f.description},
                         {"parents", f.parents},
                         {"key_results", std::move(krs)},
                         {"review", std::move(review)}});
}

std::vector<const Objective*> View::Objectives(const ObjectiveFilter& filter) const {
  std::vector<const Objective*> out;
  for (const auto& [id, o] : p_.objectives()) {
    const ObjectiveFields* f = o.FieldsAt(as_of_);
    if (f && filter.Keeps(*f)) out.push_back(&o);
  }
  assert(out.size() <= p_.objectives().size());
  return out;
}

}  // namespace okr
