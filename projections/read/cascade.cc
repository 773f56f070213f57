// The cascade: the unit tree with the objectives each unit owns and the
// mean progress of every subtree, each judged against the cycle's pace,
// written from the projection as it is walked.
#include <cassert>
#include <climits>

#include "eventstore/base/time.h"
#include "projections/read/view.h"

namespace okr {

using nlohmann::json;

Result<CascadePlan> CascadePlan::Make(const View& v, const std::string& cycle,
                                      const std::string& root, std::optional<int> depth) {
  assert(!depth || *depth >= 0);
  const Projection& p = v.projection();
  CascadePlan plan;
  plan.cycle_ = cycle.empty() ? nullptr : p.cycle(cycle);
  if (!cycle.empty() && !v.CycleAt(cycle)) return Status::NotFound("no cycle " + cycle, "cycle");
  if (!root.empty() && !v.UnitAt(root)) return Status::NotFound("no unit " + root, "root");
  plan.depth_ = depth.value_or(INT_MAX);
  plan.unit_count_ = p.units().size();
  // Every unit active at as_of gets a node (in id order, so children are
  // too); the walks then follow indices, with no lookup per unit.
  ByAddress<uint32_t> node_of;
  node_of.Reserve(p.units().size());
  plan.nodes_.reserve(p.units().size());
  for (const auto& [id, u] : p.units()) {
    const UnitFields* f = u.FieldsAt(v.as_of());
    if (!f || f->retired) continue;
    const auto n = static_cast<uint32_t>(plan.nodes_.size());
    if (root.empty() ? f->parent.empty() : id == root) plan.roots_.push_back(n);
    *node_of.TryEmplace(&u).first = n;
    plan.nodes_.push_back(Node{&u, {}, {}});
  }
  auto node = [&](const std::string& unit) -> Node* {
    const Unit* u = p.unit(unit);
    const uint32_t* n = u ? node_of.Find(u) : nullptr;
    return n ? &plan.nodes_[*n] : nullptr;
  };
  for (size_t n = 0; n < plan.nodes_.size(); ++n) {
    const std::string& parent = plan.nodes_[n].unit->FieldsAt(v.as_of())->parent;
    if (Node* up = parent.empty() ? nullptr : node(parent)) {
      up->children.push_back(static_cast<uint32_t>(n));
    }
  }
  for (const Objective* o : v.Objectives({cycle, "", false})) {
    if (Node* owner = node(o->FieldsAt(v.as_of())->owner)) owner->owned.push_back(o);
  }
  for (uint32_t r : plan.roots_) plan.shown_ += plan.ShownUnder(r, 0, plan.depth_);
  assert(root.empty() || plan.roots_.size() == 1);  // the root is an active unit at as_of
  return plan;
}

const std::vector<uint32_t>* CascadePlan::ChildrenOf(uint32_t n, int depth) const {
  // `depth` bounds a walk through a unit loop the log should not hold.
  if (depth >= static_cast<int>(unit_count_)) return nullptr;
  return nodes_[n].children.empty() ? nullptr : &nodes_[n].children;
}

size_t CascadePlan::ShownUnder(uint32_t n, int depth, int shown) const {
  size_t count = nodes_[n].owned.size();
  const auto* kids = ChildrenOf(n, depth);
  if (kids && shown > 0) {
    for (uint32_t child : *kids) count += ShownUnder(child, depth + 1, shown - 1);
  }
  return count;
}

CascadePlan::Counted CascadePlan::Count(View& v, uint32_t n, int depth) const {
  // Own objectives first, then each child's subtree: the order Write sums
  // in, so a node's mean is the same double whether it is shown or not.
  Counted c;
  for (const Objective* o : nodes_[n].owned) c.sum += v.ObjectiveProgress(*o);
  c.objectives = nodes_[n].owned.size();
  if (const auto* kids = ChildrenOf(n, depth)) {
    for (uint32_t child : *kids) {
      Counted k = Count(v, child, depth + 1);
      c.sum += k.sum;
      c.objectives += k.objectives;
    }
  }
  return c;
}

// Keys in ascending order (JsonOut): the children come first, so a node's
// subtree is written before its own rows.
CascadePlan::Counted CascadePlan::WriteNode(View& v, JsonOut& out, uint32_t n, int depth, int shown,
                                            const std::function<void()>& pause) const {
  const Node& node = nodes_[n];
  assert(node.unit->FieldsAt(v.as_of()) != nullptr);  // only units that exist at as_of are planned
  Counted c;
  for (const Objective* o : node.owned) c.sum += v.ObjectiveProgress(*o);
  c.objectives = node.owned.size();
  out.StartObject().Key("children");
  // Below the depth asked for, a unit's subtree only counts in the
  // roll-up and its `children` is null; a unit without any shows [].
  const auto* kids = ChildrenOf(n, depth);
  const bool expanded = !kids || shown > 0;
  if (expanded) {
    out.StartArray();
  } else {
    out.Null();
  }
  for (size_t i = 0; kids && i < kids->size(); ++i) {
    const uint32_t child = (*kids)[i];
    Counted k = expanded ? WriteNode(v, out, child, depth + 1, shown - 1, pause)
                         : Count(v, child, depth + 1);
    c.sum += k.sum;
    c.objectives += k.objectives;
  }
  if (expanded) out.EndArray();
  out.Key("objective_count").Uint(c.objectives).Key("objectives").StartArray();
  for (const Objective* o : node.owned) {
    // Borrowed: the row is written before the pause lets the lock go.
    WriteObjective(out, v.ObjectiveRowOf<Hold::kBorrowed>(*o));
    if (pause) pause();
  }
  out.EndArray().Key("pace");
  std::optional<double> progress;
  if (c.objectives) progress = c.sum / static_cast<double>(c.objectives);
  if (cycle_ && cycle_->FieldsAt(v.as_of())) {
    WritePace(out, v.PaceIn(cycle_->id, progress));
  } else {
    out.Null();
  }
  out.Key("progress").NumberOrNull(progress).Key("unit");
  WriteUnit(out, v.UnitRowOf<Hold::kBorrowed>(*node.unit));
  out.EndObject();
  if (pause) pause();
  return c;
}

void CascadePlan::Write(View& v, JsonOut& out, std::optional<uint64_t> as_of_seq,
                        const std::function<void()>& pause) const {
  out.StartObject();
  if (as_of_seq) out.Key("as_of_seq").Uint(*as_of_seq);
  out.Key("nodes").StartArray();
  for (uint32_t r : roots_) WriteNode(v, out, r, 0, depth_, pause);
  const int64_t at_us = v.PaceAtUs();
  const CycleFields* cycle = cycle_ ? cycle_->FieldsAt(v.as_of()) : nullptr;
  std::optional<double> expected;
  if (cycle) expected = PaceOf(*cycle, at_us, 0).expected;
  out.EndArray().Key("pace").StartObject().Key("at").String(FormatTimeText(at_us).view());
  out.Key("expected").NumberOrNull(expected).EndObject().EndObject();
}

Result<json> View::Cascade(const std::string& cycle, const std::string& root) {
  OKR_ASSIGN_OR_RETURN(CascadePlan plan, CascadePlan::Make(*this, cycle, root, std::nullopt));
  return WriteJsonDocument([&](JsonOut& out) { plan.Write(*this, out, std::nullopt); });
}

}  // namespace okr
