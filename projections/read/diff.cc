// Diff: the rows each event gives, and their JSON.
#include "projections/read/diff.h"

#include <algorithm>
#include <cassert>
#include <iterator>

#include "eventstore/base/time.h"
#include "projections/read/shown.h"

namespace okr {

using nlohmann::json;

namespace {

DiffReview ReviewValue(const std::optional<ReviewFields>& r) {
  if (!r) return {};
  return {true, r->score, r->outcome, r->reflection, r->lessons, r->meta.seq};
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
  // The "state" field, named `set` while the entity's flag is up and `unset` otherwise.
  void State(bool before, bool after, const char* set, const char* unset) {
    assert(set != nullptr && unset != nullptr);
    Change("state", std::string(before ? set : unset), std::string(after ? set : unset));
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
    State(a.closed, b.closed, "closed", "open");
  }
  void Compare(const ObjectiveFields& a, const ObjectiveFields& b) {
    Change("title", a.title, b.title);
    Change("description", a.description, b.description);
    Change("owner", a.owner, b.owner);
    Change("parents", a.parents, b.parents);
    State(a.archived, b.archived, "archived", "active");
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
    State(a.removed, b.removed, "removed", "active");
    Archived("key_result", a.removed, b.removed);
  }

 private:
  const Meta& meta_;
  const std::string& entity_;
  std::vector<DiffRow>* rows_;
};

// The element of a seq-ordered list whose meta.seq is `seq`, or nullptr.
template <typename List>
const auto* AtSeq(const List& list, uint64_t seq) {
  auto it = std::lower_bound(list.begin(), list.end(), seq,
                             [](const auto& item, uint64_t s) { return item.meta.seq < s; });
  return it != list.end() && it->meta.seq == seq ? &*it : nullptr;
}

// Rows of a revision of `e` made at `seq`; false when no revision was.
template <typename E>
bool RevisionRows(const E& e, uint64_t seq, const char* kind, std::vector<DiffRow>* rows) {
  const auto* rev = AtSeq(e.revisions, seq);
  if (rev == nullptr) return false;
  assert(rev->meta.seq == seq && rev >= &e.revisions.front());
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
    d.Row(DiffRow::List::kCheckIns, ci->id.str(), {}, ci->value);
    d.last().measured_at_us = ci->measured_at_us;
  } else if (const Correction* c = AtSeq(kr.corrections, seq)) {
    DiffRows(c->meta, kr.id, rows)
        .Row(DiffRow::List::kCorrections, c->check_in.str(), c->before, c->value);
  } else {
    CommentRows(kr.comments, kr.id, seq, rows);
  }
}

// Texts that may be personal (a reason, a person's name, a review's
// words) are shown through ShownJson, noting in `flags` what was not.
json MetaJson(const Meta& m, ShownFlags* flags) {
  return {{"seq", m.seq},
          {"actor", m.actor},
          {"recorded_at", FormatTimeUs(m.recorded_at_us)},
          {"reason", ShownJson({m.reason, m.seq, PersonalField::REASON}, flags)}};
}

json ValueJson(const DiffReview& r, ShownFlags* flags) {
  if (!r.present) return nullptr;
  return {{"score", r.score},
          {"outcome", r.outcome},
          {"reflection", ShownJson({r.reflection, r.seq, PersonalField::REFLECTION}, flags)},
          {"lessons", ShownJson({r.lessons, r.seq, PersonalField::LESSONS}, flags)}};
}
// A unit's name or email (a sealed token), or another field's plain text.
json ValueJson(const std::string& v, ShownFlags* flags) { return ShownJson({v}, flags); }
json ValueJson(double v, ShownFlags*) { return v; }
json ValueJson(const std::vector<std::string>& v, ShownFlags*) { return v; }
json ValueJson(const DiffValue& v, ShownFlags* flags) {
  return std::visit([flags](const auto& x) { return ValueJson(x, flags); }, v);
}

// Rows about a key result's check-ins name it "key_result"; the rest "entity".
json RowJson(const DiffRow& row) {
  ShownFlags flags;
  json j = MetaJson(row.meta, &flags);
  const bool of_check_in =
      row.list == DiffRow::List::kCheckIns || row.list == DiffRow::List::kCorrections;
  j[of_check_in ? "key_result" : "entity"] = row.entity;
  switch (row.list) {
    case DiffRow::List::kCreated:
    case DiffRow::List::kArchived:
      j["kind"] = row.label;
      break;
    case DiffRow::List::kChanged:
    case DiffRow::List::kCorrections:
      j[of_check_in ? "check_in" : "field"] = row.label;
      j["before"] = ValueJson(row.before, &flags);
      j["after"] = ValueJson(row.after, &flags);
      break;
    case DiffRow::List::kCheckIns:
      j["check_in"] = row.label;
      j["value"] = ValueJson(row.after, &flags);
      j["measured_at"] = FormatTimeUs(row.measured_at_us);
      break;
    case DiffRow::List::kComments:
      j["text"] = ShownJson({row.text, row.meta.seq, PersonalField::TEXT}, &flags);
      break;
  }
  flags.AddTo(&j);
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
  for (const DiffRow& row : rows) {
    const auto list = static_cast<size_t>(row.list);
    assert(list < std::size(lists));
    lists[list].push_back(RowJson(row));
  }
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
  // Each event extends one entity's stream: no seq comes twice.
  assert(std::adjacent_find(events.begin(), events.end(), [](const auto& a, const auto& b) {
           return a.first == b.first;
         }) == events.end());
  std::vector<DiffRow> rows;
  for (const auto& [seq, id] : events) AppendDiffRows(p, seq, *id, cycle, &rows);
  return RenderDiff(from, to, rows);
}

}  // namespace okr
