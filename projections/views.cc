#include "projections/views.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "eventstore/event_json.h"
#include "projections/spreadsheet.h"
#include "projections/time_util.h"

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

json View::UnitJson(const Unit& unit) const {
  const UnitFields& f = *unit.FieldsAt(as_of_);
  json out = {{"id", unit.id},         {"kind", f.kind},
              {"name", f.name},        {"parent", NullIfEmpty(f.parent)},
              {"state", f.retired ? "retired" : "active"},
              {"version", unit.VersionAt(as_of_)}};
  if (f.kind == "person") out["email"] = NullIfEmpty(f.email);
  return out;
}

json View::CycleJson(const Cycle& cycle) const {
  const CycleFields& f = *cycle.FieldsAt(as_of_);
  return {{"id", cycle.id},          {"name", f.name},
          {"starts", f.starts},      {"ends", f.ends},
          {"parent", NullIfEmpty(f.parent)},
          {"state", f.closed ? "closed" : "open"},
          {"version", cycle.VersionAt(as_of_)}};
}

json View::CheckInJson(const CheckIn& ci) const {
  json out = {{"id", ci.id},
              {"value", ci.value},
              {"confidence", ci.has_confidence ? json(ci.confidence) : json(nullptr)},
              {"status", NullIfEmpty(ci.status)},
              {"note", ci.note},
              {"measured_at", FormatTimeUs(ci.measured_at_us)},
              {"recorded_at", FormatTimeUs(ci.meta.recorded_at_us)},
              {"actor", ci.meta.actor},
              {"seq", ci.meta.seq}};
  return out;
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

json View::KeyResultJson(const KeyResult& kr) {
  const KeyResultFields& f = *kr.FieldsAt(as_of_);
  CurrentValue current = ValueOf(kr, f, as_of_, at_us_);
  size_t count = kr.CheckInsKnownAt(as_of_);
  json out = {{"id", kr.id},
              {"objective", f.objective},
              {"title", f.title},
              {"owner", EffectiveOwner(f)},
              {"metric", f.metric},
              {"start", f.start},
              {"target", f.target},
              {"unit", f.unit},
              {"weight", f.weight},
              {"current", current.value},
              {"progress", KeyResultProgress(kr)},
              {"state", f.removed ? "removed" : "active"},
              {"check_in_count", count},
              {"last_check_in", current.check_in ? CheckInJson(*current.check_in) : json(nullptr)},
              {"version", kr.VersionAt(as_of_)}};
  if (current.check_in) out["last_check_in"]["value"] = current.value;  // as corrected
  return out;
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

json View::ObjectiveJson(const Objective& objective) {
  const ObjectiveFields& f = *objective.FieldsAt(as_of_);
  json krs = json::array();
  for (const KeyResult* kr : KeyResultsOf(objective)) krs.push_back(KeyResultJson(*kr));
  json review = nullptr;
  if (f.review) {
    review = {{"score", f.review->score},
              {"outcome", f.review->outcome},
              {"reflection", f.review->reflection},
              {"lessons", f.review->lessons},
              {"actor", f.review->meta.actor},
              {"recorded_at", FormatTimeUs(f.review->meta.recorded_at_us)}};
  }
  return {{"id", objective.id},
          {"cycle", f.cycle},
          {"owner", f.owner},
          {"title", f.title},
          {"description", f.description},
          {"parents", f.parents},
          {"state", f.archived ? "archived" : "active"},
          {"progress", ObjectiveProgress(objective)},
          {"key_results", std::move(krs)},
          {"review", std::move(review)},
          {"version", objective.VersionAt(as_of_)}};
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

Result<json> View::Cascade(const std::string& cycle, const std::string& root) {
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
  std::function<json(const Unit&, double*, size_t*, int)> build =
      [&](const Unit& u, double* sum, size_t* count, int depth) -> json {
    double my_sum = 0;
    size_t my_count = 0;
    json objectives = json::array();
    for (const Objective* o : owned[u.id]) {
      objectives.push_back(ObjectiveJson(*o));
      my_sum += ObjectiveProgress(*o);
      ++my_count;
    }
    json kids = json::array();
    if (depth < static_cast<int>(p_.units().size())) {
      for (const Unit* child : children[u.id]) kids.push_back(build(*child, &my_sum, &my_count, depth + 1));
    }
    *sum += my_sum;
    *count += my_count;
    return {{"unit", UnitJson(u)},
            {"objectives", std::move(objectives)},
            {"children", std::move(kids)},
            {"objective_count", my_count},
            {"progress", my_count ? json(my_sum / static_cast<double>(my_count)) : json(nullptr)}};
  };
  json nodes = json::array();
  for (const Unit* r : roots) {
    double sum = 0;
    size_t count = 0;
    nodes.push_back(build(*r, &sum, &count, 0));
  }
  return json{{"nodes", std::move(nodes)}};
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

struct DiffBuilder {
  uint64_t from, to;
  json created = json::array(), changed = json::array(), archived = json::array();
  json check_ins = json::array(), corrections = json::array(), comments = json::array();

  static json MetaJson(const Meta& m) {
    return {{"seq", m.seq},
            {"actor", m.actor},
            {"recorded_at", FormatTimeUs(m.recorded_at_us)},
            {"reason", m.reason}};
  }
  bool InRange(const Meta& m) const { return m.seq > from && m.seq <= to; }
  void Change(const std::string& entity, const char* field, json before, json after,
              const Meta& m) {
    if (before == after) return;
    json c = MetaJson(m);
    c["entity"] = entity;
    c["field"] = field;
    c["before"] = std::move(before);
    c["after"] = std::move(after);
    changed.push_back(std::move(c));
  }
  template <typename E, typename Compare>
  void Walk(const E& e, const char* kind, Compare compare) {
    for (size_t i = 0; i < e.revisions.size(); ++i) {
      const auto& rev = e.revisions[i];
      if (rev.meta.seq > to) break;
      if (!InRange(rev.meta)) continue;
      if (i == 0) {
        json c = MetaJson(rev.meta);
        c["entity"] = e.id;
        c["kind"] = kind;
        created.push_back(std::move(c));
        continue;
      }
      compare(e.id, e.revisions[i - 1].fields, rev.fields, rev.meta);
    }
  }
  void Archived(const std::string& id, const char* kind, bool before, bool after, const Meta& m) {
    if (before || !after) return;
    json c = MetaJson(m);
    c["entity"] = id;
    c["kind"] = kind;
    archived.push_back(std::move(c));
  }
};

json ReviewJson(const std::optional<ReviewFields>& r) {
  if (!r) return nullptr;
  return {{"score", r->score}, {"outcome", r->outcome}, {"reflection", r->reflection},
          {"lessons", r->lessons}};
}

}  // namespace

json Diff(const Projection& p, uint64_t from, uint64_t to, const std::string& cycle) {
  DiffBuilder d{from, to};
  auto objective_in_cycle = [&](const std::string& id) {
    const Objective* o = p.objective(id);
    return o && o->current().cycle == cycle;
  };
  if (cycle.empty()) {
    for (const auto& [id, u] : p.units()) {
      d.Walk(u, "unit", [&](const std::string& e, const UnitFields& a, const UnitFields& b, const Meta& m) {
        d.Change(e, "name", a.name, b.name, m);
        d.Change(e, "parent", a.parent, b.parent, m);
        d.Change(e, "email", a.email, b.email, m);
        d.Archived(e, "unit", a.retired, b.retired, m);
      });
    }
  }
  for (const auto& [id, c] : p.cycles()) {
    if (!cycle.empty() && id != cycle) continue;
    d.Walk(c, "cycle", [&](const std::string& e, const CycleFields& a, const CycleFields& b, const Meta& m) {
      d.Change(e, "name", a.name, b.name, m);
      d.Change(e, "starts", a.starts, b.starts, m);
      d.Change(e, "ends", a.ends, b.ends, m);
      d.Change(e, "parent", a.parent, b.parent, m);
      d.Change(e, "state", a.closed ? "closed" : "open", b.closed ? "closed" : "open", m);
    });
  }
  for (const auto& [id, o] : p.objectives()) {
    if (!cycle.empty() && !objective_in_cycle(id)) continue;
    d.Walk(o, "objective", [&](const std::string& e, const ObjectiveFields& a, const ObjectiveFields& b, const Meta& m) {
      d.Change(e, "title", a.title, b.title, m);
      d.Change(e, "description", a.description, b.description, m);
      d.Change(e, "owner", a.owner, b.owner, m);
      d.Change(e, "parents", a.parents, b.parents, m);
      d.Change(e, "state", a.archived ? "archived" : "active", b.archived ? "archived" : "active", m);
      d.Change(e, "review", ReviewJson(a.review), ReviewJson(b.review), m);
      d.Archived(e, "objective", a.archived, b.archived, m);
    });
    for (const Comment& c : o.comments) {
      if (!d.InRange(c.meta)) continue;
      json j = DiffBuilder::MetaJson(c.meta);
      j["entity"] = id;
      j["text"] = c.text;
      d.comments.push_back(std::move(j));
    }
  }
  for (const auto& [id, kr] : p.key_results()) {
    if (!cycle.empty() && !objective_in_cycle(kr.current().objective)) continue;
    d.Walk(kr, "key_result", [&](const std::string& e, const KeyResultFields& a, const KeyResultFields& b, const Meta& m) {
      d.Change(e, "title", a.title, b.title, m);
      d.Change(e, "owner", a.owner, b.owner, m);
      d.Change(e, "metric", a.metric, b.metric, m);
      d.Change(e, "start", a.start, b.start, m);
      d.Change(e, "target", a.target, b.target, m);
      d.Change(e, "unit", a.unit, b.unit, m);
      d.Change(e, "weight", a.weight, b.weight, m);
      d.Change(e, "state", a.removed ? "removed" : "active", b.removed ? "removed" : "active", m);
      d.Archived(e, "key_result", a.removed, b.removed, m);
    });
    for (const CheckIn& ci : kr.check_ins) {
      if (!d.InRange(ci.meta)) continue;
      json j = DiffBuilder::MetaJson(ci.meta);
      j["key_result"] = id;
      j["check_in"] = ci.id;
      j["value"] = ci.value;
      j["measured_at"] = FormatTimeUs(ci.measured_at_us);
      d.check_ins.push_back(std::move(j));
    }
    for (const Correction& c : kr.corrections) {
      if (!d.InRange(c.meta)) continue;
      json j = DiffBuilder::MetaJson(c.meta);
      j["key_result"] = id;
      j["check_in"] = c.check_in;
      j["before"] = c.before;
      j["after"] = c.value;
      d.corrections.push_back(std::move(j));
    }
    for (const Comment& c : kr.comments) {
      if (!d.InRange(c.meta)) continue;
      json j = DiffBuilder::MetaJson(c.meta);
      j["entity"] = id;
      j["text"] = c.text;
      d.comments.push_back(std::move(j));
    }
  }
  auto by_seq = [](json& list) {
    std::stable_sort(list.begin(), list.end(),
                     [](const json& a, const json& b) { return a["seq"] < b["seq"]; });
  };
  for (json* list : {&d.created, &d.changed, &d.archived, &d.check_ins, &d.corrections, &d.comments}) {
    by_seq(*list);
  }
  return {{"from", from},          {"to", to},
          {"created", d.created},  {"changed", d.changed},
          {"archived", d.archived}, {"check_ins", d.check_ins},
          {"corrections", d.corrections}, {"comments", d.comments}};
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
