// The View: rows and JSON of what existed at a seq, and progress.
#include "projections/read/view.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "eventstore/base/time.h"
#include "projections/read/shown.h"

namespace okr {

using nlohmann::json;

namespace {

constexpr int kMaxAlignmentDepth = 64;  // alignment is acyclic; this only bounds a bug

}  // namespace

int64_t CycleStartUs(const CycleFields& c) { return ParseDate(c.starts).value_or(0); }
int64_t CycleEndUs(const CycleFields& c) { return ParseDate(c.ends).value_or(0) + kMicrosPerDay; }

bool IsGoalpostChange(const Meta& m) {
  return m.which == schema::Event::Which::KEY_RESULT_TARGET_CHANGED ||
         m.which == schema::Event::Which::KEY_RESULT_START_CHANGED;
}

View::View(const Projection& projection, uint64_t as_of, int64_t at_us, int64_t now_us)
    : p_(projection), as_of_(as_of), at_us_(at_us), now_us_(now_us) {}

int64_t View::PaceAtUs() const {
  assert(as_of_ <= p_.seq());  // TimeOfSeq knows only seqs the projection folded
  // now_us_ is the wall clock at the head: judging by it would make two
  // reads of one seq differ, so an answer could not be cached by its seq.
  if (!pace_at_us_) pace_at_us_ = at_us_ != INT64_MAX ? at_us_ : p_.TimeOfSeq(as_of_);
  return *pace_at_us_;
}

Pace View::PaceIn(const std::string& cycle_id, std::optional<double> progress) const {
  if (!pace_span_ || pace_cycle_id_ != cycle_id) {
    const CycleFields* cycle = CycleAt(cycle_id);
    pace_cycle_id_ = cycle_id;
    pace_span_.emplace(cycle ? std::optional(CycleSpanOf(*cycle)) : std::nullopt);
  }
  // An objective names a cycle that existed when it was written; a log
  // that breaks this still answers, with nothing judged.
  if (!*pace_span_) return Pace{};
  const CycleSpan& span = **pace_span_;
  Pace pace = PaceOf(span.starts_us, span.ends_us_exclusive, PaceAtUs(), progress);
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

template <Hold H>
BasicUnitRow<H> View::UnitRowOf(const Unit& unit) const {
  return {unit.id, *unit.FieldsAt(as_of_), unit.VersionAt(as_of_)};
}

template <Hold H>
BasicCycleRow<H> View::CycleRowOf(const Cycle& cycle) const {
  return {cycle.id, *cycle.FieldsAt(as_of_), cycle.VersionAt(as_of_)};
}

json View::UnitJson(const Unit& unit) const { return RenderUnit(UnitRowOf(unit)); }
json View::CycleJson(const Cycle& cycle) const { return RenderCycle(CycleRowOf(cycle)); }
json View::CheckInJson(const CheckIn& ci) const { return RenderCheckIn(ci); }

void WritePace(JsonOut& out, const Pace& pace) {
  out.StartObject().Key("expected").Number(pace.expected);
  out.Key("status").String(PaceStatusName(pace.status)).EndObject();
}
json RenderPace(const Pace& pace) {
  return WriteJsonDocument([&](JsonOut& out) { WritePace(out, pace); });
}

// Every row below writes its keys in ascending order (JsonOut's contract:
// the order nlohmann::json, which rendered them before, sorts into).

template <Hold H>
void WriteUnit(JsonOut& out, const BasicUnitRow<H>& row) {
  const UnitFields& f = row.fields;
  const Shown shown{{f.name}, {f.email}};
  out.StartObject();
  shown.Damaged(out);
  if (f.kind == "person") {
    out.Key("email");
    if (shown[1].readable() && shown[1].text.empty()) {
      out.Null();
    } else {
      shown.Write(out, 1);
    }
  }
  shown.Erased(out);
  out.Key("id").String(row.id).Key("kind").String(f.kind).Key("name");
  shown.Write(out, 0);
  out.Key("parent").StringOrNull(f.parent).Key("state").String(f.retired ? "retired" : "active");
  out.Key("version").Uint(row.version).EndObject();
}
json RenderUnit(const UnitRow& row) {
  return WriteJsonDocument([&](JsonOut& out) { WriteUnit(out, row); });
}

template <Hold H>
void WriteCycle(JsonOut& out, const BasicCycleRow<H>& row) {
  const CycleFields& f = row.fields;
  out.StartObject().Key("ends").String(f.ends).Key("id").String(row.id);
  out.Key("name").String(f.name).Key("parent").StringOrNull(f.parent);
  out.Key("starts").String(f.starts).Key("state").String(f.closed ? "closed" : "open");
  out.Key("version").Uint(row.version).EndObject();
}
json RenderCycle(const CycleRow& row) {
  return WriteJsonDocument([&](JsonOut& out) { WriteCycle(out, row); });
}

void WriteCheckIn(JsonOut& out, const CheckIn& ci) {
  const Shown shown{{ci.note, ci.meta.seq, PersonalField::NOTE}};
  out.StartObject().Key("actor").String(ci.meta.actor);
  out.Key("confidence")
      .NumberOrNull(ci.has_confidence ? std::optional(ci.confidence) : std::nullopt);
  shown.Flags(out);
  out.Key("id").String(ci.id).Key("measured_at").String(FormatTimeText(ci.measured_at_us).view());
  out.Key("note");
  shown.Write(out, 0);
  out.Key("recorded_at").String(FormatTimeText(ci.meta.recorded_at_us).view());
  out.Key("seq").Uint(ci.meta.seq).Key("status").StringOrNull(ci.status);
  out.Key("value").Number(ci.value).EndObject();
}
json RenderCheckIn(const CheckIn& ci) {
  return WriteJsonDocument([&](JsonOut& out) { WriteCheckIn(out, ci); });
}

namespace {

// The key result's owner, or its objective's (`o`, null for none).
const std::string& OwnerIn(const KeyResultFields& f, const ObjectiveFields* o) {
  static const std::string kNone;
  if (!f.owner.empty()) return f.owner;
  return o ? o->owner : kNone;
}

}  // namespace

std::string View::EffectiveOwner(const KeyResultFields& f) const {
  return OwnerIn(f, f.owner.empty() ? ObjectiveAt(f.objective) : nullptr);
}

View::KeyResultValue View::KeyResultValueOf(const KeyResult& kr) {
  auto [kept, added] = kr_values_.TryEmplace(&kr);
  if (!added) return *kept;
  if (const KeyResultFields* f = kr.FieldsAt(as_of_)) {
    CurrentValue current = ValueOf(kr, *f, as_of_, at_us_);
    kept->value = current.value;
    kept->progress = okr::KeyResultProgress(*f, current.value);
    kept->check_in = current.check_in;
  }
  return *kept;
}

double View::KeyResultProgress(const KeyResult& kr) { return KeyResultValueOf(kr).progress; }

template <Hold H>
BasicKeyResultRow<H> View::KeyResultRowOf(const KeyResult& kr) {
  assert(kr.FieldsAt(as_of_) != nullptr);  // callers pass key results that exist at as_of
  return KeyResultRowIn<H>(kr, ObjectiveAt(kr.FieldsAt(as_of_)->objective));
}

template <Hold H>
BasicKeyResultRow<H> View::KeyResultRowIn(const KeyResult& kr, const ObjectiveFields* objective) {
  const KeyResultFields& f = *kr.FieldsAt(as_of_);
  const KeyResultValue current = KeyResultValueOf(kr);
  BasicKeyResultRow<H> row{kr.id,
                           f,
                           OwnerIn(f, objective),
                           current.value,
                           current.progress,
                           kr.CheckInsKnownAt(as_of_),
                           std::nullopt,
                           kr.VersionAt(as_of_),
                           {}};
  assert(row.check_in_count <= kr.check_ins.size());
  row.pace = PaceIn(objective ? objective->cycle : "", row.progress);
  if (current.check_in) {
    assert(*current.check_in < kr.check_ins.size());
    const CheckIn& check_in = kr.check_ins[*current.check_in];
    assert(check_in.meta.seq <= as_of_);  // ValueOf reads only what was known
    row.last_check_in = check_in;
    row.last_check_in->value = current.value;  // as corrected
  }
  return row;
}

json View::KeyResultJson(const KeyResult& kr) { return RenderKeyResult(KeyResultRowOf(kr)); }

template <Hold H>
void WriteKeyResult(JsonOut& out, const BasicKeyResultRow<H>& row, const KeyResultWrite* write) {
  const KeyResultFields& f = row.fields;
  out.StartObject();
  if (write && write->check_in) {
    out.Key("check_in");
    WriteCheckIn(out, *write->check_in);
  }
  out.Key("check_in_count").Uint(row.check_in_count);
  out.Key("current").Number(row.current).Key("id").String(row.id).Key("last_check_in");
  if (row.last_check_in) {
    WriteCheckIn(out, *row.last_check_in);
  } else {
    out.Null();
  }
  out.Key("metric").String(f.metric).Key("objective").String(f.objective);
  out.Key("owner").String(row.owner).Key("pace");
  WritePace(out, row.pace);
  out.Key("progress").Number(row.progress);
  if (write) out.Key("seq").Uint(write->seq);
  out.Key("start").Number(f.start);
  out.Key("state").String(f.removed ? "removed" : "active").Key("target").Number(f.target);
  out.Key("title").String(f.title).Key("unit").String(f.unit);
  out.Key("version").Uint(row.version).Key("weight").Number(f.weight).EndObject();
}
json RenderKeyResult(const KeyResultRow& row) {
  return WriteJsonDocument([&](JsonOut& out) { WriteKeyResult(out, row); });
}

std::vector<const KeyResult*> View::KeyResultsOf(const Objective& objective) const {
  std::vector<const KeyResult*> out;
  assert(objective.key_result_links.of.size() == objective.key_results.size());
  for (const KeyResult* kr : objective.key_result_links.of) {
    const KeyResultFields* f = kr->FieldsAt(as_of_);
    if (f && !f->removed) out.push_back(kr);
  }
  return out;
}

std::vector<const Objective*> View::AlignedChildren(const Objective& objective) const {
  std::vector<const Objective*> out;
  for (const Objective* child : p_.ObjectivesEverAlignedTo(objective.id)) {
    const ObjectiveFields* f = child->FieldsAt(as_of_);
    if (!f || f->archived) continue;
    for (const auto& parent : f->parents) {
      if (parent == objective.id) out.push_back(child);
    }
  }
  // In id order, as the objectives are kept: the mean sums in one order.
  std::sort(out.begin(), out.end(),
            [](const Objective* a, const Objective* b) { return a->id < b->id; });
  return out;
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
  if (const double* kept = objective_progress_.Find(&objective)) return *kept;
  double progress = 0;
  auto krs = KeyResultsOf(objective);
  if (!krs.empty()) {
    progress = WeightedMean(krs, [&](const KeyResult* kr) {
      return std::pair(kr->FieldsAt(as_of_)->weight, KeyResultProgress(*kr));
    });
  } else if (depth < kMaxAlignmentDepth) {
    const auto children = AlignedChildren(objective);
    if (!children.empty()) {
      double sum = 0;
      for (const Objective* child : children) sum += ObjectiveProgressGuarded(*child, depth + 1);
      progress = sum / static_cast<double>(children.size());
    }
  }
  assert(std::isfinite(progress));  // WeightedMean and the clamp keep it finite
  *objective_progress_.TryEmplace(&objective).first = progress;
  return progress;
}

template <Hold H>
BasicObjectiveRow<H> View::ObjectiveRowOf(const Objective& objective) {
  assert(objective.FieldsAt(as_of_) != nullptr);  // callers pass objectives that exist at as_of
  BasicObjectiveRow<H> row{objective.id, *objective.FieldsAt(as_of_), ObjectiveProgress(objective),
                           {},           objective.VersionAt(as_of_), {}};
  row.pace = PaceIn(row.fields.cycle, row.progress);
  for (const KeyResult* kr : KeyResultsOf(objective)) {
    // Its objective is this one, already at hand, unless the log says otherwise.
    row.key_results.push_back(kr->FieldsAt(as_of_)->objective == objective.id
                                  ? KeyResultRowIn<H>(*kr, &row.fields)
                                  : KeyResultRowOf<H>(*kr));
  }
  return row;
}

json View::ObjectiveJson(const Objective& objective) {
  return RenderObjective(ObjectiveRowOf(objective));
}

namespace {

void WriteReview(JsonOut& out, const std::optional<ReviewFields>& review) {
  if (!review) {
    out.Null();
    return;
  }
  const uint64_t seq = review->meta.seq;
  const Shown shown{{review->reflection, seq, PersonalField::REFLECTION},
                    {review->lessons, seq, PersonalField::LESSONS}};
  out.StartObject().Key("actor").String(review->meta.actor);
  shown.Flags(out);
  out.Key("lessons");
  shown.Write(out, 1);
  out.Key("outcome").String(review->outcome);
  out.Key("recorded_at").String(FormatTimeText(review->meta.recorded_at_us).view());
  out.Key("reflection");
  shown.Write(out, 0);
  out.Key("score").Number(review->score);
  out.EndObject();
}

}  // namespace

template <Hold H>
void WriteObjective(JsonOut& out, const BasicObjectiveRow<H>& row) {
  const ObjectiveFields& f = row.fields;
  out.StartObject().Key("cycle").String(f.cycle).Key("description").String(f.description);
  out.Key("id").String(row.id).Key("key_results").StartArray();
  for (const BasicKeyResultRow<H>& kr : row.key_results) WriteKeyResult(out, kr);
  out.EndArray().Key("owner").String(f.owner).Key("pace");
  WritePace(out, row.pace);
  out.Key("parents").StartArray();
  for (const std::string& parent : f.parents) out.String(parent);
  out.EndArray().Key("progress").Number(row.progress).Key("review");
  WriteReview(out, f.review);
  out.Key("state").String(f.archived ? "archived" : "active").Key("title").String(f.title);
  out.Key("version").Uint(row.version).EndObject();
}
json RenderObjective(const ObjectiveRow& row) {
  return WriteJsonDocument([&](JsonOut& out) { WriteObjective(out, row); });
}

std::optional<std::vector<const Objective*>> ListedObjectives(const Projection& p,
                                                              const ObjectiveFilter& filter) {
  const std::vector<const Objective*>* listed = nullptr;
  auto consider = [&](const std::vector<const Objective*>& list) {
    if (!listed || list.size() < listed->size()) listed = &list;
  };
  if (!filter.cycle.empty()) consider(p.ObjectivesOfCycle(filter.cycle));
  if (!filter.owner.empty()) consider(p.ObjectivesEverOwnedBy(filter.owner));
  constexpr size_t kSortCostFactor = 16;
  if (!listed || listed->size() * kSortCostFactor >= p.objectives().size()) return std::nullopt;
  std::vector<const Objective*> out = *listed;
  auto by_id = [](const Objective* a, const Objective* b) { return a->id < b->id; };
  std::sort(out.begin(), out.end(), by_id);
  out.erase(std::unique(out.begin(), out.end()), out.end());  // owned, given away, taken back
  return out;
}

std::vector<const Objective*> View::Objectives(const ObjectiveFilter& filter) const {
  std::vector<const Objective*> out;
  auto keep = [&](const Objective& o) {
    const ObjectiveFields* f = o.FieldsAt(as_of_);
    if (f && filter.Keeps(*f)) out.push_back(&o);
  };
  if (auto listed = ListedObjectives(p_, filter)) {
    for (const Objective* o : *listed) keep(*o);
    return out;
  }
  for (const auto& [id, o] : p_.objectives()) keep(o);
  assert(out.size() <= p_.objectives().size());
  return out;
}

// Rows of both holds: copied for pages and single entities, borrowed for
// the cascade.
template BasicUnitRow<Hold::kCopied> View::UnitRowOf(const Unit&) const;
template BasicUnitRow<Hold::kBorrowed> View::UnitRowOf(const Unit&) const;
template BasicCycleRow<Hold::kCopied> View::CycleRowOf(const Cycle&) const;
template BasicObjectiveRow<Hold::kCopied> View::ObjectiveRowOf(const Objective&);
template BasicObjectiveRow<Hold::kBorrowed> View::ObjectiveRowOf(const Objective&);
template BasicKeyResultRow<Hold::kCopied> View::KeyResultRowOf(const KeyResult&);
template void WriteUnit(JsonOut&, const BasicUnitRow<Hold::kCopied>&);
template void WriteUnit(JsonOut&, const BasicUnitRow<Hold::kBorrowed>&);
template void WriteCycle(JsonOut&, const BasicCycleRow<Hold::kCopied>&);
template void WriteKeyResult(JsonOut&, const BasicKeyResultRow<Hold::kCopied>&,
                             const KeyResultWrite*);
template void WriteObjective(JsonOut&, const BasicObjectiveRow<Hold::kCopied>&);
template void WriteObjective(JsonOut&, const BasicObjectiveRow<Hold::kBorrowed>&);

}  // namespace okr
