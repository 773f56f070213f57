#include "projections/read/views.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <variant>
#include <sstream>

#include "eventstore/event_json.h"
#include "projections/read/spreadsheet.h"
#include "eventstore/base/time.h"

namespace okr {

using nlohmann::json;

namespace {

json NullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

constexpr int64_t kStaleAfterUs = 14 * kMicrosPerDay;
constexpr size_t kLintMaxObjectives = 5;
constexpr size_t kLintMaxKeyResults = 5;
constexpr int kMaxAlignmentDepth = 64;  // alignment is acyclic; this only bounds a bug

bool IsGoalpostChange(const Meta& m) {
  return m.type == "key_result.target_changed" || m.type == "key_result.start_changed";
}

}  // namespace

int64_t CycleStartUs(const CycleFields& c) { return ParseDate(c.starts).value_or(0); }
int64_t CycleEndUs(const CycleFields& c) {
  return ParseDate(c.ends).value_or(0) + kMicrosPerDay;
}

View::View(const Projection& projection, uint64_t as_of, int64_t at_us, int64_t now_us)
    : p_(projection), as_of_(as_of), at_us_(at_us), now_us_(now_us) {}

const UnitFields* View::UnitAt(const std::string& id) const {
  const Unit* u = p_.unit(id);
  return u ? u->FieldsAt(as_of_) : nullptr;
}
const CycleFields* View::CycleAt(const std::string& id) const {
  const Cycle* c = p_.cycle(id);
  return c ? c->FieldsAt(as_of_) : nullptr;
}
const ObjectiveFields* View::ObjectiveAt(const std::string& id) const {
  const Objective* o = p_.objective(id);
  return o ? o->FieldsAt(as_of_) : nullptr;
}
const KeyResultFields* View::KeyResultAt(const std::string& id) const {
  const KeyResult* k = p_.key_result(id);
  return k ? k->FieldsAt(as_of_) : nullptr;
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

json RenderUnit(const UnitRow& row) {
  const UnitFields& f = row.fields;
  json out = {{"id", row.id},          {"kind", f.kind},
              {"name", f.name},        {"parent", NullIfEmpty(f.parent)},
              {"state", f.retired ? "retired" : "active"},
              {"version", row.version}};
  if (f.kind == "person") out["email"] = NullIfEmpty(f.email);
  return out;
}

json RenderCycle(const CycleRow& row) {
  const CycleFields& f = row.fields;
  return {{"id", row.id},            {"name", f.name},
          {"starts", f.starts},      {"ends", f.ends},
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
  const KeyResultFields& f = *kr.FieldsAt(as_of_);
  CurrentValue current = ValueOf(kr, f, as_of_, at_us_);
  KeyResultRow row{kr.id, f, EffectiveOwner(f), current.value, KeyResultProgress(kr),
                   kr.CheckInsKnownAt(as_of_), std::nullopt, kr.VersionAt(as_of_)};
  if (current.check_in) {
    row.last_check_in = *current.check_in;
    row.last_check_in->value = current.value;  // as corrected
  }
  return row;
}

json View::KeyResultJson(const KeyResult& kr) { return RenderKeyResult(KeyResultRowOf(kr)); }

json RenderKeyResult(const KeyResultRow& row) {
  const KeyResultFields& f = row.fields;
  return {{"id", row.id},
          {"objective", f.objective},
          {"title", f.title},
          {"owner", row.owner},
          {"metric", f.metric},
          {"start", f.start},
          {"target", f.target},
          {"unit", f.unit},
          {"weight", f.weight},
          {"current", row.current},
          {"progress", row.progress},
          {"state", f.removed ? "removed" : "active"},
          {"check_in_count", row.check_in_count},
          {"last_check_in", row.last_check_in ? RenderCheckIn(*row.last_check_in) : json(nullptr)},
          {"version", row.version}};
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
  objective_progress_[objective.id] = progress;
  return progress;
}

ObjectiveRow View::ObjectiveRowOf(const Objective& objective) {
  ObjectiveRow row{objective.id, *objective.FieldsAt(as_of_), ObjectiveProgress(objective), {},
                   objective.VersionAt(as_of_)};
  for (const KeyResult* kr : KeyResultsOf(objective)) row.key_results.push_back(KeyResultRowOf(*kr));
  return row;
}

json View::ObjectiveJson(const Objective& objective) { return RenderObjective(ObjectiveRowOf(objective)); }

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
  return {{"id", row.id},
          {"cycle", f.cycle},
          {"owner", f.owner},
          {"title", f.title},
          {"description", f.description},
          {"parents", f.parents},
          {"state", f.archived ? "archived" : "active"},
          {"progress", row.progress},
          {"key_results", std::move(krs)},
          {"review", std::move(review)},
          {"version", row.version}};
}

std::vector<const Objective*> View::Objectives(const ObjectiveFilter& filter) const {
  std::vector<const Objective*> out;
  for (const auto& [id, o] : p_.objectives()) {
    const ObjectiveFields* f = o.FieldsAt(as_of_);
    if (!f) continue;
    if (f->archived && !filter.include_archived) continue;
    if (!filter.cycle.empty() && f->cycle != filter.cycle) continue;
    if (!filter.owner.empty() && f->owner != filter.owner) continue;
    out.push_back(&o);
  }
  return out;
}

Result<std::vector<CascadeNode>> View::CascadeNodes(const std::string& cycle,
                                                   const std::string& root) {
  if (!cycle.empty() && !CycleAt(cycle)) return Status::NotFound("no cycle " + cycle, "cycle");
  if (!root.empty() && !UnitAt(root)) return Status::NotFound("no unit " + root, "root");
  std::map<std::string, std::vector<const Unit*>> children;
  std::vector<const Unit*> roots;
  for (const auto& [id, u] : p_.units()) {
    const UnitFields* f = u.FieldsAt(as_of_);
    if (!f || f->retired) continue;
    if (root.empty() ? f->parent.empty() : id == root) roots.push_back(&u);
    if (!f->parent.empty()) children[f->parent].push_back(&u);
  }
  std::map<std::string, std::vector<const Objective*>> owned;
  for (const Objective* o : Objectives({cycle, "", false})) {
    owned[o->FieldsAt(as_of_)->owner].push_back(o);
  }
  // Builds a node; *sum and *count accumulate the subtree's objective progress.
  std::function<CascadeNode(const Unit&, double*, size_t*, int)> build =
      [&](const Unit& u, double* sum, size_t* count, int depth) -> CascadeNode {
    double my_sum = 0;
    size_t my_count = 0;
    CascadeNode node{UnitRowOf(u), {}, {}, 0, std::nullopt};
    for (const Objective* o : owned[u.id]) {
      node.objectives.push_back(ObjectiveRowOf(*o));
      my_sum += node.objectives.back().progress;
      ++my_count;
    }
    if (depth < static_cast<int>(p_.units().size())) {
      for (const Unit* child : children[u.id]) {
        node.children.push_back(build(*child, &my_sum, &my_count, depth + 1));
      }
    }
    *sum += my_sum;
    *count += my_count;
    node.objective_count = my_count;
    if (my_count) node.progress = my_sum / static_cast<double>(my_count);
    return node;
  };
  std::vector<CascadeNode> nodes;
  for (const Unit* r : roots) {
    double sum = 0;
    size_t count = 0;
    nodes.push_back(build(*r, &sum, &count, 0));
  }
  return nodes;
}

Result<json> View::Cascade(const std::string& cycle, const std::string& root) {
  auto nodes = CascadeNodes(cycle, root);
  if (!nodes.ok()) return nodes.status();
  return RenderCascade(*nodes);
}

namespace {

json RenderCascadeNode(const CascadeNode& node) {
  json objectives = json::array(), kids = json::array();
  for (const ObjectiveRow& o : node.objectives) objectives.push_back(RenderObjective(o));
  for (const CascadeNode& child : node.children) kids.push_back(RenderCascadeNode(child));
  return {{"unit", RenderUnit(node.unit)},
          {"objectives", std::move(objectives)},
          {"children", std::move(kids)},
          {"objective_count", node.objective_count},
          {"progress", node.progress ? json(*node.progress) : json(nullptr)}};
}

}  // namespace

json RenderCascade(const std::vector<CascadeNode>& nodes) {
  json out = json::array();
  for (const CascadeNode& node : nodes) out.push_back(RenderCascadeNode(node));
  return {{"nodes", std::move(out)}};
}

json View::Lint(const std::string& cycle) {
  json findings = json::array();
  auto add = [&](const char* rule, const std::string& entity, std::string message) {
    findings.push_back({{"rule", rule}, {"entity", entity}, {"message", std::move(message)}});
  };
  std::map<std::pair<std::string, std::string>, size_t> per_owner;
  for (const Objective* o : Objectives({cycle, "", false})) {
    const ObjectiveFields& f = *o->FieldsAt(as_of_);
    per_owner[{f.cycle, f.owner}]++;
    const CycleFields* cy = CycleAt(f.cycle);
    const UnitFields* owner = UnitAt(f.owner);
    auto krs = KeyResultsOf(*o);
    if (krs.size() > kLintMaxKeyResults) {
      add("too_many_key_results", o->id,
          "objective has " + std::to_string(krs.size()) + " key results; keep it to " +
              std::to_string(kLintMaxKeyResults) + " or fewer");
    }
    if (owner && owner->kind != "company" && f.parents.empty()) {
      add("unaligned", o->id, "objective of " + f.owner + " aligns to no other objective");
    }
    if (!cy) continue;
    int64_t cycle_start = CycleStartUs(*cy);
    for (const KeyResult* kr : krs) {
      if (!cy->closed) {
        // Staleness runs from the newest measurement, or from the key
        // result's creation while it has none.
        int64_t last = INT64_MIN;
        for (const CheckIn& ci : kr->check_ins) {
          if (ci.meta.seq > as_of_) break;
          last = std::max(last, ci.measured_at_us);
        }
        if (last == INT64_MIN) last = kr->revisions.front().meta.recorded_at_us;
        // Nothing is due before the cycle starts: its days count from then.
        last = std::max(last, cycle_start);
        if (now_us_ - last > kStaleAfterUs) {
          add("stale", kr->id,
              "no check-in since " + FormatDate(last) + " (more than 14 days)");
        }
      }
      for (const auto& rev : kr->revisions) {
        if (rev.meta.seq > as_of_) break;
        if (IsGoalpostChange(rev.meta) && rev.meta.recorded_at_us >= cycle_start) {
          add("moved_goalposts", kr->id,
              (rev.meta.type == "key_result.target_changed" ? "target" : "start") +
                  std::string(" changed on ") + FormatDate(rev.meta.recorded_at_us) + " by " +
                  rev.meta.actor + ", after the cycle started" +
                  (rev.meta.reason.empty() ? "" : " (" + rev.meta.reason + ")"));
        }
      }
    }
  }
  for (const auto& [key, count] : per_owner) {
    if (count > kLintMaxObjectives) {
      add("too_many_objectives", key.second,
          key.second + " has " + std::to_string(count) + " active objectives in " + key.first +
              "; keep it to " + std::to_string(kLintMaxObjectives) + " or fewer");
    }
  }
  return {{"findings", std::move(findings)}};
}

// --- Diff ---

namespace {

DiffReview ReviewValue(const std::optional<ReviewFields>& r) {
  if (!r) return {};
  return {true, r->score, r->outcome, r->reflection, r->lessons};
}

// The rows of one event, in the fixed order a diff lists them.
class DiffRows {
 public:
  DiffRows(const Meta& meta, const std::string& entity, std::vector<DiffRow>* rows)
      : meta_(meta), entity_(entity), rows_(rows) {}

  void Row(DiffRow::List list, std::string label, DiffValue before = {}, DiffValue after = {}) {
    DiffRow row;
    row.list = list;
    row.meta = meta_;
    row.entity = entity_;
    row.label = std::move(label);
    row.before = std::move(before);
    row.after = std::move(after);
    rows_->push_back(std::move(row));
  }
  void Change(const char* field, DiffValue before, DiffValue after) {
    if (before != after) Row(DiffRow::List::kChanged, field, std::move(before), std::move(after));
  }
  void Archived(const char* kind, bool before, bool after) {
    if (!before && after) Row(DiffRow::List::kArchived, kind);
  }
  DiffRow& last() { return rows_->back(); }

  void Compare(const UnitFields& a, const UnitFields& b) {
    Change("name", a.name, b.name);
    Change("parent", a.parent, b.parent);
    Change("email", a.email, b.email);
    Archived("unit", a.retired, b.retired);
  }
  void Compare(const CycleFields& a, const CycleFields& b) {
    Change("name", a.name, b.name);
    Change("starts", a.starts, b.starts);
    Change("ends", a.ends, b.ends);
    Change("parent", a.parent, b.parent);
    Change("state", std::string(a.closed ? "closed" : "open"), std::string(b.closed ? "closed" : "open"));
  }
  void Compare(const ObjectiveFields& a, const ObjectiveFields& b) {
    Change("title", a.title, b.title);
    Change("description", a.description, b.description);
    Change("owner", a.owner, b.owner);
    Change("parents", a.parents, b.parents);
    Change("state", std::string(a.archived ? "archived" : "active"),
           std::string(b.archived ? "archived" : "active"));
    Change("review", ReviewValue(a.review), ReviewValue(b.review));
    Archived("objective", a.archived, b.archived);
  }
  void Compare(const KeyResultFields& a, const KeyResultFields& b) {
    Change("title", a.title, b.title);
    Change("owner", a.owner, b.owner);
    Change("metric", a.metric, b.metric);
    Change("start", a.start, b.start);
    Change("target", a.target, b.target);
    Change("unit", a.unit, b.unit);
    Change("weight", a.weight, b.weight);
    Change("state", std::string(a.removed ? "removed" : "active"),
           std::string(b.removed ? "removed" : "active"));
    Archived("key_result", a.removed, b.removed);
  }

 private:
  const Meta& meta_;
  const std::string& entity_;
  std::vector<DiffRow>* rows_;
};

// The element of a seq-ordered list whose meta.seq is `seq`, or nullptr.
template <typename T>
const T* AtSeq(const std::vector<T>& list, uint64_t seq) {
  auto it = std::lower_bound(list.begin(), list.end(), seq,
                             [](const T& item, uint64_t s) { return item.meta.seq < s; });
  return it != list.end() && it->meta.seq == seq ? &*it : nullptr;
}

// Rows of a revision of `e` made at `seq`; false when no revision was.
template <typename E>
bool RevisionRows(const E& e, uint64_t seq, const char* kind, std::vector<DiffRow>* rows) {
  const auto* rev = AtSeq(e.revisions, seq);
  if (rev == nullptr) return false;
  DiffRows d(rev->meta, e.id, rows);
  if (rev == &e.revisions.front()) {
    d.Row(DiffRow::List::kCreated, kind);
  } else {
    d.Compare((rev - 1)->fields, rev->fields);
  }
  return true;
}

void CommentRows(const std::vector<Comment>& comments, const std::string& entity, uint64_t seq,
                 std::vector<DiffRow>* rows) {
  if (const Comment* c = AtSeq(comments, seq)) {
    DiffRows d(c->meta, entity, rows);
    d.Row(DiffRow::List::kComments, "");
    d.last().text = c->text;
  }
}

void KeyResultRows(const KeyResult& kr, uint64_t seq, std::vector<DiffRow>* rows) {
  if (RevisionRows(kr, seq, "key_result", rows)) return;
  if (const CheckIn* ci = AtSeq(kr.check_ins, seq)) {
    DiffRows d(ci->meta, kr.id, rows);
    d.Row(DiffRow::List::kCheckIns, ci->id, {}, ci->value);
    d.last().measured_at_us = ci->measured_at_us;
  } else if (const Correction* c = AtSeq(kr.corrections, seq)) {
    DiffRows(c->meta, kr.id, rows).Row(DiffRow::List::kCorrections, c->check_in, c->before, c->value);
  } else {
    CommentRows(kr.comments, kr.id, seq, rows);
  }
}

json MetaJson(const Meta& m) {
  return {{"seq", m.seq},
          {"actor", m.actor},
          {"recorded_at", FormatTimeUs(m.recorded_at_us)},
          {"reason", m.reason}};
}

json ValueJson(const DiffReview& r) {
  if (!r.present) return nullptr;
  return {{"score", r.score}, {"outcome", r.outcome}, {"reflection", r.reflection},
          {"lessons", r.lessons}};
}
json ValueJson(const std::string& v) { return v; }
json ValueJson(double v) { return v; }
json ValueJson(const std::vector<std::string>& v) { return v; }
json ValueJson(const DiffValue& v) {
  return std::visit([](const auto& x) { return ValueJson(x); }, v);
}

json RowJson(const DiffRow& row) {
  json j = MetaJson(row.meta);
  switch (row.list) {
    case DiffRow::List::kCreated:
    case DiffRow::List::kArchived:
      j["entity"] = row.entity;
      j["kind"] = row.label;
      break;
    case DiffRow::List::kChanged:
      j["entity"] = row.entity;
      j["field"] = row.label;
      j["before"] = ValueJson(row.before);
      j["after"] = ValueJson(row.after);
      break;
    case DiffRow::List::kCheckIns:
      j["key_result"] = row.entity;
      j["check_in"] = row.label;
      j["value"] = ValueJson(row.after);
      j["measured_at"] = FormatTimeUs(row.measured_at_us);
      break;
    case DiffRow::List::kCorrections:
      j["key_result"] = row.entity;
      j["check_in"] = row.label;
      j["before"] = ValueJson(row.before);
      j["after"] = ValueJson(row.after);
      break;
    case DiffRow::List::kComments:
      j["entity"] = row.entity;
      j["text"] = row.text;
      break;
  }
  return j;
}

}  // namespace

void AppendDiffRows(const Projection& p, uint64_t seq, const std::string& entity,
                    const std::string& cycle, std::vector<DiffRow>* rows) {
  auto kind = p.KindOf(entity);
  if (!kind) return;
  auto objective_in_cycle = [&](const std::string& id) {
    const Objective* o = p.objective(id);
    return o && o->current().cycle == cycle;
  };
  switch (*kind) {
    case EntityKind::kUnit:
      if (cycle.empty()) RevisionRows(*p.unit(entity), seq, "unit", rows);
      return;
    case EntityKind::kCycle:
      if (cycle.empty() || entity == cycle) RevisionRows(*p.cycle(entity), seq, "cycle", rows);
      return;
    case EntityKind::kObjective: {
      if (!cycle.empty() && !objective_in_cycle(entity)) return;
      const Objective& o = *p.objective(entity);
      if (!RevisionRows(o, seq, "objective", rows)) CommentRows(o.comments, entity, seq, rows);
      return;
    }
    case EntityKind::kKeyResult: {
      const KeyResult& kr = *p.key_result(entity);
      if (!cycle.empty() && !objective_in_cycle(kr.current().objective)) return;
      KeyResultRows(kr, seq, rows);
      return;
    }
    case EntityKind::kCheckIn:
      return;  // check-ins are events of their key result
  }
}

json RenderDiff(uint64_t from, uint64_t to, const std::vector<DiffRow>& rows) {
  json lists[6] = {json::array(), json::array(), json::array(),
                   json::array(), json::array(), json::array()};
  for (const DiffRow& row : rows) lists[static_cast<int>(row.list)].push_back(RowJson(row));
  return {{"from", from},
          {"to", to},
          {"created", std::move(lists[0])},
          {"changed", std::move(lists[1])},
          {"archived", std::move(lists[2])},
          {"check_ins", std::move(lists[3])},
          {"corrections", std::move(lists[4])},
          {"comments", std::move(lists[5])}};
}

json Diff(const Projection& p, uint64_t from, uint64_t to, const std::string& cycle) {
  std::vector<std::pair<uint64_t, const std::string*>> events;
  auto collect = [&](const auto& map) {
    for (const auto& [id, e] : map) {
      auto it = std::upper_bound(e.event_seqs.begin(), e.event_seqs.end(), from);
      for (; it != e.event_seqs.end() && *it <= to; ++it) events.emplace_back(*it, &id);
    }
  };
  collect(p.units());
  collect(p.cycles());
  collect(p.objectives());
  collect(p.key_results());
  std::sort(events.begin(), events.end());
  std::vector<DiffRow> rows;
  for (const auto& [seq, id] : events) AppendDiffRows(p, seq, *id, cycle, &rows);
  return RenderDiff(from, to, rows);
}

// --- Review ---

Result<json> Review(const Projection& p, const std::string& cycle_id, uint64_t as_of) {
  const Cycle* cycle = p.cycle(cycle_id);
  const CycleFields* cf = cycle ? cycle->FieldsAt(as_of) : nullptr;
  if (!cf) return Status::NotFound("no cycle " + cycle_id, "cycle");
  int64_t start_us = CycleStartUs(*cf);
  int64_t end_us = CycleEndUs(*cf);
  uint64_t seq_at_start = std::min(as_of, p.SeqAtTime(start_us - 1));
  // Scores at the cycle's end: values measured before it ends, as known at as_of.
  View at_end(p, as_of, end_us - 1, end_us);
  json objectives = json::array(), goalposts = json::array(), archived = json::array();
  json achieved = json::array(), partially = json::array(), missed = json::array(),
       unreviewed = json::array();
  size_t total_check_ins = 0;
  for (const Objective* o : at_end.Objectives({cycle_id, "", true})) {
    const ObjectiveFields& f = *o->FieldsAt(as_of);
    // Every target or start moved after the cycle started, also of key
    // results removed since and of objectives archived since.
    for (const std::string& kr_id : o->key_results) {
      const KeyResult* kr = p.key_result(kr_id);
      if (kr == nullptr) continue;
      for (const auto& rev : kr->revisions) {
        if (rev.meta.seq > as_of) break;
        if (!IsGoalpostChange(rev.meta) || rev.meta.recorded_at_us < start_us) continue;
        const KeyResultFields* before = kr->FieldsAt(rev.meta.seq - 1);
        bool target = rev.meta.type == "key_result.target_changed";
        goalposts.push_back({{"key_result", kr->id},
                             {"objective", o->id},
                             {"field", target ? "target" : "start"},
                             {"before", before ? (target ? before->target : before->start) : 0.0},
                             {"after", target ? rev.fields.target : rev.fields.start},
                             {"actor", rev.meta.actor},
                             {"recorded_at", FormatTimeUs(rev.meta.recorded_at_us)},
                             {"reason", rev.meta.reason},
                             {"seq", rev.meta.seq}});
      }
    }
    if (f.archived) {
      archived.push_back({{"id", o->id}, {"title", f.title}, {"owner", f.owner}});
      continue;
    }
    json krs = json::array();
    for (const KeyResult* kr : at_end.KeyResultsOf(*o)) {
      const KeyResultFields& kf = *kr->FieldsAt(as_of);
      const KeyResultFields* at_start = kr->FieldsAt(seq_at_start);
      double original_target = at_start ? at_start->target : kr->revisions.front().fields.target;
      CurrentValue final_value = ValueOf(*kr, kf, as_of, end_us - 1);
      size_t count = 0;
      const CheckIn* last = nullptr;
      for (const CheckIn& ci : kr->check_ins) {
        if (ci.meta.seq > as_of) break;
        if (ci.measured_at_us >= end_us) continue;
        ++count;
        if (!last || ci.measured_at_us >= last->measured_at_us) last = &ci;
      }
      total_check_ins += count;
      krs.push_back({{"id", kr->id},
                     {"title", kf.title},
                     {"owner", at_end.EffectiveOwner(kf)},
                     {"metric", kf.metric},
                     {"unit", kf.unit},
                     {"weight", kf.weight},
                     {"start", kf.start},
                     {"original_target", original_target},
                     {"target", kf.target},
                     {"final", final_value.value},
                     {"progress", at_end.KeyResultProgress(*kr)},
                     {"check_ins", count},
                     {"last_check_in", last ? json(FormatTimeUs(last->measured_at_us)) : json(nullptr)}});
    }
    json entry = {{"id", o->id},
                  {"title", f.title},
                  {"owner", f.owner},
                  {"parents", f.parents},
                  {"computed_score", at_end.ObjectiveProgress(*o)},
                  {"score", f.review ? json(f.review->score) : json(nullptr)},
                  {"outcome", f.review ? json(f.review->outcome) : json(nullptr)},
                  {"reflection", f.review ? json(f.review->reflection) : json(nullptr)},
                  {"lessons", f.review ? json(f.review->lessons) : json(nullptr)},
                  {"reviewed_by", f.review ? json(f.review->meta.actor) : json(nullptr)},
                  {"key_results", std::move(krs)}};
    if (!f.review) {
      unreviewed.push_back(o->id);
    } else if (f.review->outcome == "achieved") {
      achieved.push_back(o->id);
    } else if (f.review->outcome == "partially") {
      partially.push_back(o->id);
    } else {
      missed.push_back(o->id);
    }
    objectives.push_back(std::move(entry));
  }
  return json{{"cycle", at_end.CycleJson(*cycle)},
              {"objectives", std::move(objectives)},
              {"moved_goalposts", std::move(goalposts)},
              {"achieved", std::move(achieved)},
              {"partially", std::move(partially)},
              {"missed", std::move(missed)},
              {"unreviewed", std::move(unreviewed)},
              {"archived", std::move(archived)},
              {"check_ins", total_check_ins}};
}

namespace {

std::string Num(const json& v) {
  if (v.is_null()) return "";
  if (v.is_number()) {
    // Every digit the JSON has (a stream's default 6 would turn 1234567
    // into 1.23457e+06), and whole numbers without an exponent.
    const double d = v.get<double>();
    char buf[64];
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1e15) {
      std::snprintf(buf, sizeof buf, "%.0f", d);
      return buf;
    }
    auto end = std::to_chars(buf, buf + sizeof buf, d).ptr;
    return std::string(buf, end);
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string Percent(const json& v) {
  if (!v.is_number()) return "–";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(0);
  os << v.get<double>() * 100 << "%";
  return os.str();
}

std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

// User text inside Markdown, on one line: a pipe would end a table cell
// and a line break would start a new block, so neither gets through as
// itself; a backslash is escaped too, or "\\|" would unescape the pipe.
std::string Cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string ReviewMarkdown(const json& r) {
  std::ostringstream md;
  const json& c = r["cycle"];
  md << "# Review of " << Cell(Str(c["name"])) << " (" << Str(c["id"]) << ", " << Str(c["starts"])
     << " to " << Str(c["ends"]) << ", " << Str(c["state"]) << ")\n\n";
  md << "Achieved: " << r["achieved"].size() << " · partially: " << r["partially"].size()
     << " · missed: " << r["missed"].size() << " · not reviewed: " << r["unreviewed"].size()
     << " · check-ins: " << r["check_ins"].get<size_t>() << "\n";
  for (const json& o : r["objectives"]) {
    md << "\n## " << Cell(Str(o["title"])) << " (" << Str(o["id"]) << ")\n\n";
    md << "Owner: " << Str(o["owner"]) << " · computed score " << Percent(o["computed_score"])
       << " · reviewed score " << Percent(o["score"]) << " · outcome "
       << (o["outcome"].is_null() ? "not reviewed" : Str(o["outcome"])) << "\n\n";
    if (!Str(o["reflection"]).empty()) md << "Reflection: " << Cell(Str(o["reflection"])) << "\n\n";
    if (!Str(o["lessons"]).empty()) md << "Lessons: " << Cell(Str(o["lessons"])) << "\n\n";
    if (o["key_results"].empty()) {
      md << "No key results of its own: its score rolls up from the objectives aligned to it.\n";
      continue;
    }
    md << "| key result | start | original target | target | final | progress | check-ins |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const json& k : o["key_results"]) {
      md << "| " << Cell(Str(k["title"])) << " | " << Num(k["start"]) << " | "
         << Num(k["original_target"]) << " | " << Num(k["target"]) << " | " << Num(k["final"])
         << " " << Cell(Str(k["unit"])) << " | " << Percent(k["progress"]) << " | "
         << k["check_ins"].get<size_t>() << " |\n";
    }
  }
  md << "\n## Moved goalposts\n\n";
  if (r["moved_goalposts"].empty()) {
    md << "None.\n";
  } else {
    md << "| key result | field | before | after | by | when | reason |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const json& g : r["moved_goalposts"]) {
      md << "| " << Str(g["key_result"]) << " | " << Str(g["field"]) << " | " << Num(g["before"])
         << " | " << Num(g["after"]) << " | " << Cell(Str(g["actor"])) << " | "
         << Str(g["recorded_at"]) << " | " << Cell(Str(g["reason"])) << " |\n";
    }
  }
  return md.str();
}

std::string ReviewCsv(const json& r) {
  std::ostringstream csv;
  csv << "cycle,objective,objective_title,owner,computed_score,score,outcome,key_result,"
         "key_result_title,start,original_target,target,final,progress,check_ins\r\n";
  std::string cycle = Str(r["cycle"]["id"]);
  for (const json& o : r["objectives"]) {
    for (const json& k : o["key_results"]) {
      csv << CsvText(cycle) << ',' << CsvText(Str(o["id"])) << ',' << CsvText(Str(o["title"]))
          << ',' << CsvText(Str(o["owner"])) << ',' << Num(o["computed_score"]) << ','
          << Num(o["score"]) << ',' << CsvText(Str(o["outcome"])) << ','
          << CsvText(Str(k["id"])) << ',' << CsvText(Str(k["title"])) << ',' << Num(k["start"])
          << ',' << Num(k["original_target"]) << ',' << Num(k["target"]) << ','
          << Num(k["final"]) << ',' << Num(k["progress"]) << ',' << Num(k["check_ins"]) << "\r\n";
    }
  }
  return csv.str();
}

}  // namespace okr
